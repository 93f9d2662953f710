"""Contract limits that real input reaches: clip derived text to its field's bound, and say in one
line which limit an input broke and by how much (never pydantic's multi-line report).

Derived text ("task received: " + a 4,000-character task) must fit its own field, so it is clipped
with :func:`clip_to`; input that does not fit (151 environment variable names where a task carries
128) is refused with :func:`one_line`. Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from contracts.envelope import MAX_EVENT_BYTES, ContractError
from contracts.text import error_location, first_error, single_line

ELLIPSIS = "…"
T = TypeVar("T")
# What an envelope adds around its payload (ids, type, source, time): well under this.
ENVELOPE_ROOM = 1024
MAX_PAYLOAD_BYTES = MAX_EVENT_BYTES - ENVELOPE_ROOM
# The largest value of the task-state bucket (one task's deployment state, kept by DevOps).
TASK_STATE_MAX_BYTES = 256 * 1024


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, the cut marked with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: max(limit - len(ELLIPSIS), 0)] + ELLIPSIS[: max(limit, 0)]


def max_length(model: type[BaseModel], field: str) -> int | None:
    """The ``max_length`` the contract gives ``model.field`` (a string's characters or a list's
    items), also through ``| None`` (``output_dir: Path | None``), or None when it has none."""
    info = model.model_fields[field]
    metadata = list(info.metadata)
    for arg in get_args(info.annotation):  # X | None: the bound is on X's Annotated metadata
        metadata += getattr(arg, "__metadata__", ())
    found = [n for n in (getattr(m, "max_length", None) for m in metadata) if n is not None]
    return min(found) if found else None


def clip_to(model: type[BaseModel], field: str, text: str) -> str:
    """``text`` clipped to the bound of ``model.field`` (unchanged when the field has none)."""
    limit = max_length(model, field)
    return text if limit is None else clip(text, limit)


def one_line(exc: ValidationError, what: str) -> str:
    """Pydantic's report as one line: the first error, where it is and, for a size limit, the size
    found, the limit and by how much it is over; then how many more errors there are."""
    first, more = first_error(exc)
    where = error_location(first["loc"])
    at = f"{where}: " if where else ""
    return single_line(f"invalid {what}: {at}{_message(first)}{more}")


def checked(what: str, build: Callable[[], T]) -> T:
    """Build a contract model from input; a bad value raises :class:`ContractError` with one line
    naming the field (and, for a size limit, by how much), instead of pydantic's multi-line report."""
    try:
        return build()
    except ValidationError as exc:
        raise ContractError(one_line(exc, what)) from None


def check_payload_size(payload: BaseModel, what: str) -> None:
    """Refuse (one line: its size, the limit, by how much) a payload too large for one event, before
    it is emitted: ``encode`` would refuse it only at publish time, after the handler's work."""
    size = len(payload.model_dump_json(exclude_none=True).encode())
    if size > MAX_PAYLOAD_BYTES:
        over = size - MAX_PAYLOAD_BYTES
        raise ContractError(
            f"{what} is {size:,} bytes, over the limit of {MAX_PAYLOAD_BYTES:,} for one event by {over:,}"
        )


def _message(error: Any) -> str:
    ctx = error.get("ctx") or {}
    limit = ctx.get("max_length")
    if error["type"] == "too_long" and limit is not None and "actual_length" in ctx:
        found = ctx["actual_length"]
        return f"{found:,} items, over the limit of {limit:,} by {found - limit:,}"
    value = error.get("input")
    if error["type"] == "string_too_long" and limit is not None and isinstance(value, str):
        return f"{len(value):,} characters, over the limit of {limit:,} by {len(value) - limit:,}"
    return str(error["msg"])
