"""The security agent's rules: pure functions over ``{path: content}``, no I/O.

Public API (stable)::

    scan(files: Mapping[str, str]) -> list[Finding]
    passed(findings: Iterable[Finding]) -> bool

``scan`` runs every rule set on the files it applies to (paths routed as in agents.review.routes)
plus the secret scanner on every file, and returns findings sorted by file, line, rule. Each
finding has file, line, rule id, severity, a message and a concrete ``fix``. Rule ids:

- SEC-DOCKER-001..006  container rules              (agents.security.dockerfile)
- SEC-K8S-001..012     Kubernetes pod/Secret rules  (agents.security.kubernetes)
- SEC-COMPOSE-001..005 Compose rules                (agents.security.compose)
- SEC-HELM-001         empty secure defaults in chart values (agents.security.helm)
- SEC-GHA-001..006, SEC-GITLAB-001, SEC-JENKINS-001  CI rules (agents.security.ci)
- SEC-SECRET-001..010  secret values                (agents.review.secrets_scan)

A report passes when no finding is HIGH or CRITICAL (``Severity.blocking``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import PurePosixPath

from agents.review import routes, secrets_scan
from agents.review.findings import sort_key
from agents.security import ci, compose, dockerfile, helm, kubernetes
from contracts.payloads import Finding

__all__ = ["passed", "scan"]

PER_FILE: dict[str, Callable[[str, str], list[Finding]]] = {
    routes.DOCKERFILE: dockerfile.check,
    routes.COMPOSE: compose.check,
    routes.GITHUB_WORKFLOW: ci.github_workflow,
    routes.GITLAB_CI: ci.gitlab_ci,
    routes.JENKINSFILE: ci.jenkinsfile,
}


def scan(files: Mapping[str, str]) -> list[Finding]:
    """Every security finding for the artifacts ``{path: content}``, sorted by file, line, rule."""
    out: list[Finding] = []
    manifests: dict[str, str] = {}
    for validator, paths in routes.plan(files).items():
        for path in paths:
            if validator == routes.KUBERNETES:
                manifests[path] = files[path]
            elif validator in PER_FILE:
                out += PER_FILE[validator](path, files[path])
    out += kubernetes.check(manifests)
    charts = routes.chart_roots(files)
    for path in sorted(files):
        if helm.is_values(path) and PurePosixPath(path).parent.as_posix() in charts:
            out += helm.check(path, files[path])
    out += secrets_scan.scan(files)
    return sorted(out, key=sort_key)


def passed(findings: Iterable[Finding]) -> bool:
    """True when no finding blocks (HIGH or CRITICAL)."""
    return not any(f.severity.blocking for f in findings)
