"""What inspection may hand on: facts that fit the bus contract and carry no secret.

Detected facts travel in events (``requirement.issued``, ``artifact_set.completed``), the task
state and the artifacts. A fact that does not fit its contract field (151 environment variable
names where a task carries 128, a 300-character start-script argument) is refused with one line
naming the field, the size and by how much; a fact that holds a secret-looking value (a token in
package.json's ``scripts.start``) is refused too: masking it would ship a command that cannot run,
keeping it would put the secret on the bus, in the state bucket and in the Dockerfile.
"""

from __future__ import annotations

from pydantic import ValidationError

from agents.inspection.facts import ProjectFacts
from contracts.limits import one_line
from contracts.redaction import MASK, mask_model


def refusal(facts: ProjectFacts) -> str | None:
    """Why ``facts`` cannot go on the bus (one line), or None when they can."""
    try:
        spec = facts.to_spec()
    except ValidationError as exc:
        return (
            one_line(exc, "project facts")
            + "; pass the field explicitly (a ServiceSpec override) with what the service needs"
        )
    masked = mask_model(spec)
    for field in type(spec).model_fields:
        value = getattr(spec, field)
        if getattr(masked, field) != value or MASK in str(value):
            return (
                f"{field} holds a secret-looking value (masked: {_shown(getattr(masked, field))}); "
                f"read secrets from the environment at runtime, or pass a {field} without one"
            )
    return None


def _shown(value: object) -> str:
    text = " ".join(value) if isinstance(value, list) else str(value)
    return text if len(text) <= 200 else text[:199] + "…"
