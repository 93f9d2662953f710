"""How status events and search hits look on a terminal."""

from __future__ import annotations

from typing import Any

import typer

from contracts import Envelope
from contracts.payloads import StatusChanged

_COLOURS = {"ready": "green", "deployed": "green", "failed": "red", "rolled_back": "red"}


def status_line(event: Envelope) -> str:
    p = event.payload
    assert isinstance(p, StatusChanged)
    when = event.occurred_at.strftime("%H:%M:%S")
    line = f"{when}  {p.state.value:<11} {p.agent:<10} {p.reason}"
    for f in p.findings[:20]:
        where = f"{f.file}:{f.line}" if f.line else f.file
        line += f"\n            - [{f.severity.value}] {where} {f.rule}: {f.message}"
    return line


def print_status(event: Envelope) -> None:
    p = event.payload
    assert isinstance(p, StatusChanged)
    typer.secho(status_line(event), fg=_COLOURS.get(p.state.value))


def hit_line(hit: dict[str, Any]) -> str:
    return f"{hit['occurred_at'][:19]}  {hit['agent']:<11} {hit['kind']:<10} {hit['text'][:160]}"
