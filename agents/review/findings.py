"""Building validator findings: severity levels, contract bounds, and the two tool failures.

One mapping from a tool's own level to our Severity, used by every validator:
error -> HIGH, warning -> MEDIUM, info/style -> INFO. QA fails on anything above LOW
(``Severity.failing``), so info and style never fail (docs/artifacts.md, "Validators QA runs").
"""

from __future__ import annotations

from collections.abc import Iterable

from contracts.payloads import Finding
from contracts.vocabulary import Severity

MAX_MESSAGE = 1_000  # well inside contracts.payloads.Text: a report of many findings stays small
MAX_NAME = 128  # contracts.payloads.Name

LEVELS: dict[str, Severity] = {
    "error": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "info": Severity.INFO,
    "informational": Severity.INFO,
    "style": Severity.INFO,
    "ignore": Severity.INFO,
}


def level(name: str) -> Severity:
    """Severity of a tool's level name (case-insensitive); unknown levels count as errors."""
    return LEVELS.get(name.strip().lower(), Severity.HIGH)


def finding(
    file: str,
    rule: str,
    message: str,
    *,
    severity: Severity = Severity.HIGH,
    line: int | None = None,
    tool: str | None = None,
    fix: str = "",
) -> Finding:
    """A Finding clipped to the contract's size bounds (a long tool message never breaks a report)."""
    return Finding(
        file=file or ".",
        rule=(rule or "unknown")[:MAX_NAME],
        message=_clip(message.strip() or rule),
        severity=severity,
        line=line if line is not None and line >= 0 else None,
        tool=tool[:MAX_NAME] if tool else None,
        fix=_clip(fix),
    )


def _clip(text: str) -> str:
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def tool_missing(tool: str, files: Iterable[str], *, severity: Severity = Severity.HIGH) -> list[Finding]:
    """One ``tool-missing`` finding per file the tool should have checked: nothing passes unchecked."""
    hint = "install the validators (`make install`)" if tool != "checkov" else "run `make checkov`"
    return [
        finding(
            path,
            "tool-missing",
            f"{tool} is not installed, so {path} was not validated by it",
            severity=severity,
            tool=tool,
            fix=hint,
        )
        for path in files
    ]


def tool_crashed(tool: str, files: Iterable[str], detail: str) -> list[Finding]:
    """One ``tool-crashed`` finding per file of a batch the tool failed on, naming the tool and its error."""
    first = next((line.strip() for line in detail.splitlines() if line.strip()), "no output")
    return [
        finding(path, "tool-crashed", f"{tool} failed: {first}", tool=tool, fix="rerun the tool by hand")
        for path in files
    ]


def sort_key(item: Finding) -> tuple[str, int, str, str]:
    """Deterministic order: by file, line, rule, message."""
    return (item.file, item.line or 0, item.rule, item.message)
