"""How events, history rows and search hits look on a terminal.

Everything here that came from the bus (task texts, reasons, findings, agent names) goes through
:func:`printable`: a hostile event must not be able to move the cursor, retitle the window, hide
text behind a bidi override or forge a second line on the operator's screen.
"""

from __future__ import annotations

from typing import Any

import typer

from contracts import Envelope
from contracts.payloads import StatusChanged


def printable(text: object) -> str:
    """``text`` safe for a terminal, on one line: every character that is not printable (C0/C1
    controls such as ESC, so CSI and OSC sequences; newlines; bidi overrides and other format
    characters) is shown escaped (``\\x1b``, ``\\n``, ``\\u202e``) instead of acting."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in str(text))


def status_line(event: Envelope) -> str:
    p = event.payload
    assert isinstance(p, StatusChanged)
    when = event.occurred_at.strftime("%H:%M:%S")
    line = f"{when}  {p.state.value:<11} {printable(p.agent):<10} {printable(p.reason)}"
    for f in p.findings[:20]:
        where = f"{f.file}:{f.line}" if f.line else f.file
        what = f"{printable(f.rule)}: {printable(f.message)}"
        line += f"\n            - [{f.severity.value}] {printable(where)} {what}"
    return line


def print_status(event: Envelope) -> None:
    p = event.payload
    assert isinstance(p, StatusChanged)
    colour = ("green" if p.state.succeeded else "red") if p.state.terminal else None
    typer.secho(status_line(event), fg=colour)


def hit_line(hit: dict[str, Any]) -> str:
    return (
        f"{printable(hit['occurred_at'][:19])}  {printable(hit['agent']):<11} "
        f"{printable(hit['kind']):<10} {printable(hit['text'][:160])}"
    )


def history_line(row: dict[str, Any]) -> str:
    """One event of a task's causal chain: id, what caused it, who sent it, what it says."""
    cause = printable(row["causation_id"] or "-")
    return (
        f"{printable(row['id'])}  <- {cause:<26}  {printable(row['agent']):<11} "
        f"{printable(row['type']):<22} {printable(row['text'][:100])}"
    )
