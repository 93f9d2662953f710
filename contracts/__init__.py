"""Event contracts of the orchestra: pure data, no I/O.

Everything that travels on the bus is an :class:`~contracts.envelope.Envelope`
whose ``payload`` is validated against the model registered for its ``type``.
"""

from contracts.envelope import (
    MAX_EVENT_BYTES,
    SCHEMA_VERSION,
    ContractError,
    Envelope,
    Source,
    decode,
    encode,
    new_event,
)
from contracts.ids import new_id
from contracts.payloads import PAYLOADS, EventType

__all__ = [
    "MAX_EVENT_BYTES",
    "PAYLOADS",
    "SCHEMA_VERSION",
    "ContractError",
    "Envelope",
    "EventType",
    "Source",
    "decode",
    "encode",
    "new_event",
    "new_id",
]
