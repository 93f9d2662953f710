"""Dead letters: what a consumer could not handle, kept with its reason and raw bytes."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from contracts.subjects import dlq_subject
from contracts.text import single_line

# A letter must be publishable on any server, so it fits NATS's default max_payload (1 MiB) after
# base64 (4/3) with its reason and headers. A bigger original keeps only its first bytes here (with
# its size and digest); the whole message is still in the events stream at ``stream_seq``.
MAX_LETTER_DATA = 512 * 1024
MAX_HEADER_VALUE = 1024


class DeadLetter(BaseModel):
    """One dead-lettered message. ``data_b64`` holds the original bytes exactly, unless
    ``truncated``: then its first MAX_LETTER_DATA bytes, the original being ``size`` bytes with
    SHA-256 ``sha256``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    consumer: str
    reason: str
    subject: str
    stream_seq: int
    deliveries: int
    dead_at: datetime
    headers: dict[str, str] = {}
    data_b64: str
    truncated: bool = False
    size: int | None = None
    sha256: str | None = None

    @property
    def data(self) -> bytes:
        return base64.b64decode(self.data_b64)

    def subject_out(self) -> str:
        return dlq_subject(self.consumer)


def make_dead_letter(
    *,
    consumer: str,
    reason: str,
    subject: str,
    stream_seq: int,
    deliveries: int,
    headers: dict[str, str] | None,
    data: bytes,
) -> DeadLetter:
    truncated = len(data) > MAX_LETTER_DATA
    return DeadLetter(
        # One dead letter per (consumer, stream message): a retried dead-lettering de-duplicates.
        id=f"dlq-{consumer}-{stream_seq}",
        consumer=consumer,
        # One line, whatever the handler's exception or a hostile payload's key names put in it.
        reason=single_line(reason)[:2000],
        subject=subject[:1024],
        stream_seq=stream_seq,
        deliveries=deliveries,
        dead_at=datetime.now(UTC),
        headers={k[:256]: v[:MAX_HEADER_VALUE] for k, v in list((headers or {}).items())[:64]},
        data_b64=base64.b64encode(data[:MAX_LETTER_DATA]).decode(),
        truncated=truncated,
        size=len(data) if truncated else None,
        sha256=hashlib.sha256(data).hexdigest() if truncated else None,
    )
