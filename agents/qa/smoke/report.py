"""Smoke-boot findings: one rule per step, output masked, never a silent pass.

SMOKE-BUILD (the Dockerfile cannot be built: unreadable, a COPY source missing),
SMOKE-INSTALL (a RUN failed: dependency install or build), SMOKE-START (the command exited or
could not start), SMOKE-PORT (nothing listens on the port, or only on loopback),
SMOKE-HEALTH (the health check failed) are HIGH. SMOKE-PASSED (timings), SMOKE-SKIPPED (why the
boot could not run here), SMOKE-TOOLCHAIN (the machine's interpreter differs from the image's)
and SMOKE-ENGINE (the container-engine path was not taken) are INFO.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from agents.review.findings import finding
from contracts.payloads import Finding
from contracts.redaction import redact
from contracts.vocabulary import Severity

TOOL = "smoke-boot"
FILE = "Dockerfile"
_OUTPUT_BUDGET = 600  # characters of output in a message (a finding message holds 1000)
# A line that states an error: "PermissionError: ...", "Error: ...", "ERROR: Could not open ...".
_CAUSE = re.compile(r"^\s*(\[cause\]: )?([A-Za-z_][\w.]*(Error|Exception)\b|error\b|fatal\b|npm ERR!)", re.I)


def mask(text: str, dummies: Iterable[str]) -> str:
    """``text`` with every dummy value and anything secret-looking replaced."""
    for value in sorted(set(dummies), key=len, reverse=True):
        if value:
            text = text.replace(value, "[dummy]")
    return redact(text)


def failed(
    rule: str, message: str, output: str, dummies: Iterable[str], *, line: int | None = None
) -> Finding:
    """A HIGH finding for the failed step: what ran, then the last lines it printed (masked)."""
    shown = excerpt(mask(output.strip(), dummies))
    text = f"{mask(message, dummies)}" + (f"\n--- last output ---\n{shown}" if shown else "")
    fixes = {
        "SMOKE-BUILD": "make every file the Dockerfile copies part of the build context",
        "SMOKE-INSTALL": "run the failing step by hand: the files copied before it must be all it needs",
        "SMOKE-START": "the start command or a variable it needs is wrong: see the output",
        "SMOKE-PORT": "the app must listen on 0.0.0.0 on the port the artifacts name (--port)",
        "SMOKE-HEALTH": "the health path must answer 2xx without data (--health-path)",
    }
    return finding(FILE, rule, text, severity=Severity.HIGH, line=line, tool=TOOL, fix=fixes.get(rule, ""))


def excerpt(output: str, budget: int = _OUTPUT_BUDGET) -> str:
    """The part of ``output`` that explains a failure within ``budget`` characters: the last
    line stating an error (with the line before it) when it is not among the last lines
    anyway — a server's shutdown chatter often follows the cause — then the tail."""
    lines = [line[:300] for line in output.splitlines()]
    causes = [i for i, line in enumerate(lines) if _CAUSE.match(line)]
    tail: list[str] = []
    for line in reversed(lines):
        if sum(len(t) + 1 for t in tail) + len(line) > budget // 2 and tail:
            break
        tail.insert(0, line)
    if not causes or causes[-1] >= len(lines) - len(tail):
        return "\n".join(lines)[-budget:]
    cause = "\n".join(lines[max(0, causes[-1] - 1) : causes[-1] + 1])
    return (cause[: budget // 2] + "\n…\n" + "\n".join(tail))[-budget:]


def info(rule: str, message: str) -> Finding:
    """An INFO finding of the smoke boot."""
    return finding(FILE, rule, message, severity=Severity.INFO, tool=TOOL)


def skipped(reason: str) -> Finding:
    """The smoke boot did not run here: say why, clearly (INFO, never a silent pass)."""
    return info("SMOKE-SKIPPED", f"smoke boot skipped: {reason}")
