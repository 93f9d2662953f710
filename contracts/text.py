"""Reasons on one line: what a refusal, a dead letter or a bad setting says fits one line of output.

Text from outside (a handler's exception, pydantic's report, a hostile key name) may hold newlines;
a reason goes into logs, dead letters, status events and the CLI's one-line errors, so it is made one
line here, one way. (What the CLI prints is escaped on top of that: agents/cli/render.py.)
Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError
from pydantic_core import ErrorDetails


def single_line(text: str) -> str:
    """``text`` on one line: each run of white space, newlines included, becomes one space."""
    return " ".join(text.split())


def error_location(loc: Iterable[object]) -> str:
    """Where a pydantic error is, dotted (``service.env_vars.3``). A part that is not a printable
    string is shown by ``repr``, so a hostile key name can neither break the line nor hide in it."""
    return ".".join(part if isinstance(part, str) and part.isprintable() else repr(part) for part in loc)


def first_error(exc: ValidationError) -> tuple[ErrorDetails, str]:
    """Pydantic's first error, and `` (+N more)`` when it found more (else an empty string)."""
    errors = exc.errors(include_url=False)
    return errors[0], f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
