"""The envelope every event travels in, and the one decode/encode pair used everywhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union

from pydantic import (
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
)

from contracts.ids import new_id
from contracts.payloads import PAYLOADS, EventType, Model, Timestamp
from contracts.text import error_location, first_error, single_line

SCHEMA_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
# A little under the NATS default max_payload (1 MiB) so headers always fit.
MAX_EVENT_BYTES = 900 * 1024

# Ids and task ids appear in subjects, so they are single subject tokens: no dots, no wildcards.
Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class ContractError(ValueError):
    """Raised for bytes that are not a valid event; ``reason`` is one human line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Source(Model):
    agent: Token
    instance: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class Envelope(Model):
    """Fields common to every event; ``type`` selects the payload model."""

    id: Token
    type: EventType
    # The schema lists the versions this code reads, so a client's validator refuses the others.
    schema_version: int = Field(SCHEMA_VERSION, json_schema_extra={"enum": sorted(SUPPORTED_VERSIONS)})
    task_id: Token
    causation_id: Token | None = None
    source: Source
    occurred_at: Timestamp
    payload: Model

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value not in SUPPORTED_VERSIONS:
            raise ValueError(f"unsupported schema_version {value} (supported: {sorted(SUPPORTED_VERSIONS)})")
        return value

    def subject(self) -> str:
        from contracts.subjects import event_subject

        return event_subject(self.type, self.task_id)


def _event_class(event_type: EventType, payload: type[Model]) -> type[Envelope]:
    name = "".join(part.capitalize() for part in event_type.value.replace("_", ".").split(".")) + "Event"
    return create_model(
        name,
        __base__=Envelope,
        __doc__=f"Envelope of a `{event_type.value}` event.",
        type=(Literal[event_type.value], ...),  # type: ignore[valid-type]
        payload=(payload, ...),
    )


EVENT_CLASSES: dict[EventType, type[Envelope]] = {t: _event_class(t, p) for t, p in PAYLOADS.items()}
AnyEvent = Annotated[Union[tuple(EVENT_CLASSES.values())], Field(discriminator="type")]  # noqa: UP007
_ADAPTER: TypeAdapter[Envelope] = TypeAdapter(AnyEvent)


def new_event(
    event_type: EventType,
    payload: Model,
    *,
    task_id: str,
    source: Source,
    causation_id: str | None = None,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    """Build an event of ``event_type``. Its id is ``event_id`` when given (a follow-up's id, derived
    from the event that caused it: a redelivery re-emits the same id), else a fresh one; it is
    stamped ``occurred_at`` (an agent passes its bus clock's time), else the current UTC time. The
    one way every event is made."""
    return EVENT_CLASSES[event_type](
        id=event_id or new_id(),
        type=event_type,
        schema_version=SCHEMA_VERSION,
        task_id=task_id,
        causation_id=causation_id,
        source=source,
        occurred_at=occurred_at or datetime.now(UTC),
        payload=payload,
    )


def same_event(a: Envelope, b: Envelope) -> bool:
    """True when ``a`` and ``b`` are one event for anyone acting on it: id, type, task, causation,
    source agent and payload match. ``occurred_at`` and the source instance legitimately differ when
    a handler re-emits an event after a redelivery (another time, maybe another replica)."""
    return (a.id, a.type, a.task_id, a.causation_id, a.source.agent, a.payload) == (
        b.id,
        b.type,
        b.task_id,
        b.causation_id,
        b.source.agent,
        b.payload,
    )


def encode(event: Envelope) -> bytes:
    """Serialise an event to the bytes that go on the wire; refuses oversized events."""
    data = event.model_dump_json(exclude_none=True).encode()
    if len(data) > MAX_EVENT_BYTES:
        raise ContractError(f"event {event.type} is {len(data)} bytes, over the {MAX_EVENT_BYTES} limit")
    return data


def decode(raw: bytes) -> Envelope:
    """Validate wire bytes into a typed event or raise :class:`ContractError` saying why."""
    if len(raw) > MAX_EVENT_BYTES:
        raise ContractError(f"payload is {len(raw)} bytes, over the {MAX_EVENT_BYTES} limit")
    try:
        return _validate(raw)
    except ValidationError as exc:
        raise ContractError(_explain(exc, raw)) from None


def _validate(raw: bytes) -> Envelope:
    """Strict validation: a value must have the JSON type the schema names, nothing is coerced."""
    try:
        return _ADAPTER.validate_json(raw, strict=True)
    except ValidationError as exc:
        # JSON has one number type and JSON Schema calls 8080.0 an integer; strict pydantic
        # wants the integer spelling. Only then is the document re-read with those rewritten.
        if not any(error["type"] == "int_type" for error in exc.errors()):
            raise
        rewritten = _integral_numbers_as_integers(raw)
        if rewritten is None:
            raise
        return _ADAPTER.validate_json(rewritten, strict=True)


def _integral_numbers_as_integers(raw: bytes) -> bytes | None:
    """``raw`` with every number that has no fraction written as an integer (8080.0, 1e3),
    or None when the standard parser reads it differently (non-finite numbers, too deep)."""

    def number(text: str) -> int | float:
        value = float(text)
        return int(value) if value.is_integer() else value

    try:
        doc = json.loads(raw, parse_float=number)
        return json.dumps(doc, ensure_ascii=False, allow_nan=False).encode()
    except (ValueError, RecursionError):
        return None


def _explain(exc: ValidationError, raw: bytes) -> str:
    first, more = first_error(exc)
    if first["type"] == "json_invalid":
        return f"not valid JSON: {first['msg']}"
    version = _peek(raw, "schema_version")
    if isinstance(version, int) and version not in SUPPORTED_VERSIONS:
        return f"unsupported schema_version {version} (supported: {sorted(SUPPORTED_VERSIONS)})"
    where = error_location(first["loc"]) or "event"
    return single_line(f"invalid event at {where}: {first['msg']}{more}")


def _peek(raw: bytes, key: str) -> Any:
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc.get(key) if isinstance(doc, dict) else None
