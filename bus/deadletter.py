"""Dead letters: what a consumer could not handle, kept with its reason and raw bytes."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

from contracts.subjects import dlq_subject


class DeadLetter(BaseModel):
    """One dead-lettered message. ``data_b64`` holds the original bytes exactly."""

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
    return DeadLetter(
        # One dead letter per (consumer, stream message): a retried dead-lettering de-duplicates.
        id=f"dlq-{consumer}-{stream_seq}",
        consumer=consumer,
        reason=reason[:2000],
        subject=subject,
        stream_seq=stream_seq,
        deliveries=deliveries,
        dead_at=datetime.now(UTC),
        headers=dict(headers or {}),
        data_b64=base64.b64encode(data).decode(),
    )
