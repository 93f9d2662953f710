"""Secret findings in generated artifacts, on the shared detector table of :mod:`contracts.redaction`.

- ``scan(files)``: findings for secret values in artifacts (docs/artifacts.md: only references
  travel), with the strict thresholds of ``contracts.redaction.find``. The security agent reports
  them; DevOps refuses to write a file with a blocking one.
- ``scan_for_values(text, values)``: which known secret values (raw, base64 or URL-encoded) occur.
- ``jenkins_secret_literals(content)``: Jenkinsfile environment variables set to a literal secret.

The patterns, the reference / placeholder / identifier rules and the masking live in
``contracts.redaction`` (one table for the scanner, the log processor, the client library and every
agent's ingestion). Pure functions, no I/O. Messages never repeat the secret.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Iterable, Mapping

from agents.review import groovy
from contracts.payloads import Finding
from contracts.redaction import SECRET_KEY_PATTERN, find, is_literal

TOOL = "secrets-scan"


def scan(files: Mapping[str, str]) -> list[Finding]:
    """Findings for secret values in the artifacts ``{path: content}``, one per (file, line, rule)."""
    findings: dict[tuple[str, int, str], Finding] = {}
    for path in sorted(files):
        text = files[path]
        for hit in find(text):
            line = text.count("\n", 0, hit.start) + 1
            where = f" in `{hit.key}`" if hit.key else ""
            findings.setdefault(
                (path, line, hit.detector.rule),
                Finding(
                    file=path,
                    line=line,
                    rule=hit.detector.rule,
                    severity=hit.detector.severity,
                    message=f"{hit.detector.name}{where}: a literal secret value (redacted)",
                    fix=hit.detector.fix,
                    tool=TOOL,
                ),
            )
    return list(findings.values())


def scan_for_values(text: str, values: Iterable[str]) -> list[str]:
    """The ``values`` occurring in ``text`` raw, base64- or URL-encoded (in input order, once each)."""
    found: list[str] = []
    for value in values:
        if not value or value in found:
            continue
        encoded = base64.b64encode(value.encode()).decode()
        forms = {value, encoded, encoded.rstrip("="), urllib.parse.quote(value, safe="")}
        if any(form in text for form in forms):
            found.append(value)
    return found


def jenkins_secret_literals(content: str) -> list[tuple[str, int]]:
    """``(name, line)`` of each ``environment {}`` variable named like a secret whose value is a literal
    rather than ``credentials('id')`` or another reference (shared by QA and security)."""
    return [
        (name, line)
        for name, value, line in groovy.environment_assignments(content)
        if SECRET_KEY_PATTERN.search(name) and is_literal(value)
    ]
