"""Helm chart values: the secure defaults must live in values.yaml (``helm create`` ships them empty).

SEC-HELM-001 MEDIUM  ``securityContext``/``podSecurityContext``/``resources`` present but empty (``{}``)

Templates are Go templates and are not parsed; their defaults come from these values. Pure, no I/O.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from agents.review.findings import finding
from agents.review.locate import first_mapping, node_line
from contracts.payloads import Finding
from contracts.vocabulary import Severity

TOOL = "security-rules"
SECURE_DEFAULTS = ("podSecurityContext", "securityContext", "containerSecurityContext", "resources")


def is_values(path: str) -> bool:
    """``values.yaml`` / ``values-<env>.yaml`` next to a chart's Chart.yaml (by name)."""
    name = PurePosixPath(path).name
    return name.startswith("values") and name.endswith((".yaml", ".yml"))


def check(path: str, content: str) -> list[Finding]:
    """SEC-HELM-001 for one values file."""
    parsed = first_mapping(content)
    if parsed is None:
        return []
    data, node = parsed
    return [
        finding(
            path,
            "SEC-HELM-001",
            f"`{key}: {{}}`: the chart's pods get no {key} unless every install overrides it",
            severity=Severity.MEDIUM,
            line=node_line(node, [key]),
            tool=TOOL,
            fix=f"put the secure defaults into `{key}` (runAsNonRoot, drop ALL, requests/limits...)",
        )
        for key in SECURE_DEFAULTS
        if key in data and data[key] in ({}, None)
    ]
