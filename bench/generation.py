"""CPU milliseconds to generate the full artifact set (every target) of one project.

bench/generate_cpu.py, when present, owns the definition (its ``generate_cpu_ms``); otherwise this
module measures :func:`agents.devops.generate.generate` on examples/fastapi-service with every
target, secrets referenced as the credential manager would, ``time.process_time`` median of
``repeats`` runs after one warm-up (imports and template caches are not what is measured).
"""

from __future__ import annotations

import importlib
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "fastapi-service"


def _theirs() -> Callable[..., Any] | None:
    try:
        module = importlib.import_module("bench.generate_cpu")
    except ImportError:
        return None
    fn = getattr(module, "generate_cpu_ms", None)
    return fn if callable(fn) else None


def full_spec(project: Path = EXAMPLE) -> Any:
    """The AppSpec of ``project`` with every target and its secrets by reference."""
    from agents.credential_policy import issue
    from agents.devops.spec import AppSpec
    from agents.inspection.inspect import inspect_project
    from contracts.payloads import CredentialRequested
    from contracts.vocabulary import Target

    facts = inspect_project(project)
    targets = tuple(Target)
    environments = ("dev", "staging", "prod")
    creds = issue(
        CredentialRequested(
            service=facts.name,
            env_vars=list(facts.env_vars),
            targets=list(targets),
            environments=list(environments),
        )
    )
    return AppSpec(
        facts=facts,
        targets=targets,
        environments=environments,
        secrets=tuple(creds.secrets),
        config_vars=tuple(creds.config_vars),
    )


def generate_cpu_ms(repeats: int = 20) -> tuple[float, int]:
    """(median CPU ms of one full generation, number of files generated)."""
    theirs = _theirs()
    if theirs is not None:
        value = theirs()
        ms = float(value[0] if isinstance(value, tuple) else value)
        return ms, int(value[1]) if isinstance(value, tuple) else 0
    from agents.devops.generate import generate

    spec = full_spec()
    files = generate(spec)  # warm-up: imports, caches
    samples = []
    for _ in range(repeats):
        started = time.process_time()
        generate(spec)
        samples.append((time.process_time() - started) * 1000)
    return float(statistics.median(samples)), len(files)
