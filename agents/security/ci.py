"""CI rules: GitHub Actions permissions, cloud credentials, script injection, pinning; GitLab/Jenkins secrets.

SEC-GHA-001     HIGH    no top-level ``permissions:``, or ``write-all`` anywhere
SEC-GHA-002     HIGH    stored cloud keys (AWS_ACCESS_KEY_ID..., GCP/Azure JSON keys) instead of OIDC
SEC-GHA-003     HIGH    ``${{ github.event.* }}`` / ``github.head_ref`` inside ``run:`` (script injection)
SEC-GHA-004     MEDIUM  ``${{ secrets.* }}`` inside ``run:`` (pass it through ``env:``)
SEC-GHA-005     MEDIUM  action not pinned (``@main``, ``@master``, no ref, untagged ``docker://``)
SEC-GHA-006     HIGH    ``pull_request_target`` checking out the pull request's code
SEC-GITLAB-001  HIGH    a ``variables:`` entry named like a secret holds a literal
SEC-JENKINS-001 HIGH    an ``environment {}`` variable named like a secret is not ``credentials('id')``

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from agents.review.findings import finding
from agents.review.locate import first_mapping, node_line
from agents.review.secrets_scan import jenkins_secret_literals
from contracts.payloads import Finding
from contracts.redaction import SECRET_KEY_PATTERN, is_literal
from contracts.vocabulary import Severity

TOOL = "security-rules"

_UNTRUSTED = re.compile(r"\$\{\{[^}]*\b(github\.event\.[A-Za-z0-9_.*\[\]'\"-]+|github\.head_ref)[^}]*\}\}")
_SECRET_EXPR = re.compile(r"\$\{\{\s*secrets\.([A-Za-z0-9_]+)\s*\}\}")
_CLOUD_KEYS = re.compile(
    r"(?im)(secrets\.(AWS_ACCESS_KEY_ID|AWS_SECRET_ACCESS_KEY)\b"
    r"|^\s*(aws-access-key-id|aws-secret-access-key|credentials_json|creds)\s*:\s*\$\{\{\s*secrets\.)"
)
_FLOATING_REFS = frozenset({"main", "master", "develop", "dev", "trunk", "head", "latest"})

Add = Callable[[list[str | int], str, Severity, str, str], None]


def github_workflow(path: str, content: str) -> list[Finding]:
    """GitHub Actions rules for one workflow file."""
    parsed = first_mapping(content)
    if parsed is None:
        return []
    data, node = parsed
    out: list[Finding] = []

    def add(keys: list[str | int], rule: str, severity: Severity, message: str, fix: str) -> None:
        line = node_line(node, keys)
        out.append(finding(path, rule, message, severity=severity, line=line, tool=TOOL, fix=fix))

    _permissions(data, add)
    for match in _CLOUD_KEYS.finditer(content):
        line = content.count("\n", 0, match.start()) + 1
        out.append(
            finding(
                path,
                "SEC-GHA-002",
                "long-lived cloud credentials stored as repository secrets",
                severity=Severity.HIGH,
                line=line,
                tool=TOOL,
                fix="use OIDC: `permissions: id-token: write` and aws-actions/configure-aws-credentials "
                "with `role-to-assume` (GCP: workload_identity_provider; Azure: client-id without creds)",
            )
        )
    jobs = data.get("jobs")
    for job_id, job in jobs.items() if isinstance(jobs, dict) else ():
        if isinstance(job, dict):
            _job(data, job_id, job, add)
    return out


def _permissions(data: dict[str, Any], add: Add) -> None:
    if "permissions" not in data:
        add(
            [],
            "SEC-GHA-001",
            Severity.HIGH,
            "no top-level `permissions:`: the GITHUB_TOKEN gets the repository's default (often write-all)",
            "add `permissions: {contents: read}` at the top and raise it per job where needed",
        )
    elif data["permissions"] == "write-all":
        add(
            ["permissions"],
            "SEC-GHA-001",
            Severity.HIGH,
            "`permissions: write-all`",
            "grant only what jobs need",
        )
    jobs = data.get("jobs")
    for job_id, job in jobs.items() if isinstance(jobs, dict) else ():
        if isinstance(job, dict) and job.get("permissions") == "write-all":
            message = f"job {job_id!r} has `permissions: write-all`"
            add(
                ["jobs", job_id, "permissions"],
                "SEC-GHA-001",
                Severity.HIGH,
                message,
                "grant only what it needs",
            )


def _job(data: dict[str, Any], job_id: str, job: dict[str, Any], add: Add) -> None:
    steps = job.get("steps")
    if isinstance(job.get("uses"), str):  # a reusable workflow call
        _pinned(["jobs", job_id, "uses"], job["uses"], add)
    triggers = data.get("on", data.get(True))  # PyYAML reads a bare `on:` key as True
    pr_target = "pull_request_target" in (triggers if isinstance(triggers, (dict, list)) else [triggers])
    for index, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict):
            continue
        at: list[str | int] = ["jobs", job_id, "steps", index]
        uses = step.get("uses")
        if isinstance(uses, str):
            _pinned([*at, "uses"], uses, add)
            ref = str((step.get("with") or {}).get("ref", ""))
            if pr_target and uses.startswith("actions/checkout") and "pull_request.head" in ref:
                add(
                    [*at, "with", "ref"],
                    "SEC-GHA-006",
                    Severity.HIGH,
                    "pull_request_target checks out untrusted pull request code with a privileged token",
                    "use `pull_request`, or never check out the PR head in a pull_request_target workflow",
                )
        scripts = [("run", step.get("run"))]
        if isinstance(uses, str) and uses.startswith("actions/github-script"):
            scripts.append(("with", (step.get("with") or {}).get("script")))
        for key, script in scripts:
            if isinstance(script, str):
                _script([*at, key], script, add)


def _script(at: list[str | int], script: str, add: Add) -> None:
    for match in _UNTRUSTED.finditer(script):
        add(
            at,
            "SEC-GHA-003",
            Severity.HIGH,
            f"`{match.group(1)}` is expanded into a shell script: script injection",
            f'pass it through `env:` (e.g. `TITLE: ${{{{ {match.group(1)} }}}}`) and use "$TITLE"',
        )
    for match in _SECRET_EXPR.finditer(script):
        name = match.group(1)
        add(
            at,
            "SEC-GHA-004",
            Severity.MEDIUM,
            f"secret `{name}` is expanded into the script text",
            f'map it in the step\'s `env:` (`{name}: ${{{{ secrets.{name} }}}}`) and use "${name}"',
        )


def _pinned(at: list[str | int], uses: str, add: Add) -> None:
    if uses.startswith("./"):
        return
    if uses.startswith("docker://"):
        image = uses.removeprefix("docker://")
        last = image.rsplit("/", 1)[-1]
        if "@sha256:" not in image and (":" not in last or last.endswith(":latest")):
            add(at, "SEC-GHA-005", Severity.MEDIUM, f"`{uses}` is not pinned", "pin the image tag or digest")
        return
    action, _, ref = uses.partition("@")
    if not ref or ref.lower() in _FLOATING_REFS:
        message = f"`{uses}` follows a moving branch" if ref else f"`{uses}` has no version"
        add(at, "SEC-GHA-005", Severity.MEDIUM, message, f"pin a release tag or commit SHA: `{action}@v<N>`")


# --- GitLab CI / Jenkins ------------------------------------------------------------------------


def gitlab_ci(path: str, content: str) -> list[Finding]:
    """SEC-GITLAB-001: literal secrets in global or job ``variables:``."""
    parsed = first_mapping(content)
    if parsed is None:
        return []
    data, node = parsed
    scopes: list[tuple[list[str | int], Any]] = [(["variables"], data.get("variables"))]
    scopes += [
        ([job, "variables"], body.get("variables")) for job, body in data.items() if isinstance(body, dict)
    ]
    out: list[Finding] = []
    for at, variables in scopes:
        for name, value in variables.items() if isinstance(variables, dict) else ():
            literal = value.get("value") if isinstance(value, dict) else value
            if SECRET_KEY_PATTERN.search(str(name)) and literal is not None and is_literal(str(literal)):
                out.append(
                    finding(
                        path,
                        "SEC-GITLAB-001",
                        f"variable `{name}` holds a literal secret",
                        severity=Severity.HIGH,
                        line=node_line(node, [*at, name]),
                        tool=TOOL,
                        fix="define it as a masked, protected CI/CD variable in the project settings",
                    )
                )
    return out


def jenkinsfile(path: str, content: str) -> list[Finding]:
    """SEC-JENKINS-001: environment variables named like secrets that are not ``credentials('id')``."""
    return [
        finding(
            path,
            "SEC-JENKINS-001",
            f"`{name}` holds a literal secret instead of credentials('<id>')",
            severity=Severity.HIGH,
            line=line,
            tool=TOOL,
            fix=f"store it in Jenkins credentials and use `{name} = credentials('<id>')`",
        )
        for name, line in jenkins_secret_literals(content)
    ]
