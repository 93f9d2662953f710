"""Compose rules: privileged or host-namespace services anywhere; hardening for production files.

SEC-COMPOSE-001 HIGH    ``privileged: true``
SEC-COMPOSE-002 MEDIUM  production service without ``security_opt: [no-new-privileges:true]``
SEC-COMPOSE-003 MEDIUM  production service without ``read_only: true``
SEC-COMPOSE-004 HIGH    ``network_mode``/``pid``/``ipc: host``
SEC-COMPOSE-005 HIGH    ``cap_add`` of SYS_ADMIN, NET_ADMIN... (MEDIUM for others)

A production file is one whose name contains ``prod`` (``docker-compose.prod.yml``). Pure, no I/O.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import yaml

from agents.review.findings import finding
from agents.review.locate import documents, node_line
from agents.security.kubernetes import DANGEROUS_CAPABILITIES
from contracts.payloads import Finding
from contracts.vocabulary import Severity

TOOL = "security-rules"


def check(path: str, content: str) -> list[Finding]:
    """All compose rules for one file."""
    try:
        parsed = next(documents(content), None)
    except yaml.YAMLError:
        return []
    if parsed is None or not isinstance(parsed[0], dict) or not isinstance(parsed[0].get("services"), dict):
        return []
    data, node = parsed
    production = "prod" in PurePosixPath(path).name.lower()
    out: list[Finding] = []
    for name, service in data["services"].items():
        if not isinstance(service, dict):
            continue

        def add(key: str, rule: str, severity: Severity, message: str, fix: str, name: str = name) -> None:
            line = node_line(node, ["services", name, key])
            out.append(
                finding(
                    path,
                    rule,
                    f"service {name!r}: {message}",
                    severity=severity,
                    line=line,
                    tool=TOOL,
                    fix=fix,
                )
            )

        _service(service, production, add)
    return out


def _service(service: dict[str, Any], production: bool, add: Any) -> None:
    if service.get("privileged") is True:
        add("privileged", "SEC-COMPOSE-001", Severity.HIGH, "runs privileged", "remove `privileged: true`")
    for key in ("network_mode", "pid", "ipc"):
        if str(service.get(key, "")).lower() == "host":
            add(
                key,
                "SEC-COMPOSE-004",
                Severity.HIGH,
                f"{key}: host shares the host's namespace",
                f"remove `{key}`",
            )
    for capability in service.get("cap_add") or []:
        name = str(capability).upper().removeprefix("CAP_")
        severity = Severity.HIGH if name in DANGEROUS_CAPABILITIES else Severity.MEDIUM
        add("cap_add", "SEC-COMPOSE-005", severity, f"adds capability {name}", "drop it (`cap_drop: [ALL]`)")
    if not production:
        return
    options = [str(option).replace("=", ":").replace(" ", "") for option in service.get("security_opt") or []]
    if not any(option in ("no-new-privileges", "no-new-privileges:true") for option in options):
        add(
            "security_opt",
            "SEC-COMPOSE-002",
            Severity.MEDIUM,
            "processes may gain privileges (setuid binaries)",
            'add `security_opt: ["no-new-privileges:true"]`',
        )
    if service.get("read_only") is not True:
        add(
            "read_only",
            "SEC-COMPOSE-003",
            Severity.MEDIUM,
            "the container filesystem is writable",
            "set `read_only: true` with a `tmpfs: [/tmp]`",
        )
