"""A JetStream stream in memory: stored messages by sequence, de-duplication by ``Nats-Msg-Id``,
the publish checks the server makes (expected stream, expected last sequence per subject, message
size, bytes with discard-new) and per-subject history (what a KV bucket keeps)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nats.js.api import StreamConfig

from bus.stub.subjects import matches

MSG_ID = "Nats-Msg-Id"
EXPECTED_STREAM = "Nats-Expected-Stream"
EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"


class ApiError(Exception):
    """A JetStream API error as the server reports it (nats-py turns it into its own APIError)."""

    def __init__(self, code: int, err_code: int, description: str) -> None:
        super().__init__(description)
        self.code, self.err_code, self.description = code, err_code, description

    def response(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "err_code": self.err_code, "description": self.description}}


def stream_not_found() -> ApiError:
    return ApiError(404, 10059, "stream not found")


def iso(epoch: float) -> str:
    """An RFC 3339 UTC timestamp, as the server writes them."""
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class StoredMessage:
    seq: int
    subject: str
    data: bytes
    headers: dict[str, str] | None
    time: float  # wall clock (the broker's clock) when stored

    @property
    def size(self) -> int:
        return len(self.subject) + len(self.data) + len(json.dumps(self.headers or {}))


class Stream:
    """One stream: its configuration, messages and de-duplication window."""

    def __init__(self, config: StreamConfig, created: float) -> None:
        self.config = config
        self.created = created
        self.messages: dict[int, StoredMessage] = {}
        self.last_seq = 0
        self._ids: dict[str, tuple[int, float]] = {}  # Nats-Msg-Id -> (sequence, stored at)

    @property
    def name(self) -> str:
        return self.config.name or ""

    def holds(self, subject: str) -> bool:
        return any(matches(pattern, subject) for pattern in self.config.subjects or ())

    @property
    def bytes(self) -> int:
        return sum(m.size for m in self.messages.values())

    def store(self, subject: str, data: bytes, headers: dict[str, str] | None, now: float) -> dict[str, Any]:
        """Store a published message; returns the PubAck the server answers with. Raises ApiError
        for a refused message."""
        headers = dict(headers) if headers else None
        get = (headers or {}).get
        expected = get(EXPECTED_STREAM)
        if expected and expected != self.name:
            raise ApiError(400, 10060, "expected stream does not match")
        msg_id = get(MSG_ID)
        window = self.config.duplicate_window or 120.0
        if msg_id:
            seen = self._ids.get(msg_id)
            if seen is not None and now - seen[1] < window:
                return {"stream": self.name, "seq": seen[0], "duplicate": True}
        last = get(EXPECTED_LAST_SUBJECT_SEQUENCE)
        if last is not None and int(last) != self.last_on(subject):
            raise ApiError(400, 10071, f"wrong last sequence: {self.last_on(subject)}")
        message = StoredMessage(self.last_seq + 1, subject, data, headers, now)
        limit = self.config.max_msg_size
        if limit is not None and limit > 0 and len(data) > limit:
            raise ApiError(400, 10054, "message size exceeds maximum allowed")
        max_bytes = self.config.max_bytes
        if max_bytes is not None and max_bytes > 0 and self.bytes + message.size > max_bytes:
            raise ApiError(503, 10077, "maximum bytes exceeded")
        self.last_seq = message.seq
        self.messages[message.seq] = message
        if msg_id:
            self._ids = {k: v for k, v in self._ids.items() if now - v[1] < window}
            self._ids[msg_id] = (message.seq, now)
        self._keep_history(subject)
        return {"stream": self.name, "seq": message.seq}

    def _keep_history(self, subject: str) -> None:
        keep = self.config.max_msgs_per_subject
        if keep is None or keep < 1:
            return
        on_subject = [seq for seq, m in self.messages.items() if m.subject == subject]
        for seq in on_subject[:-keep]:
            del self.messages[seq]

    def last_on(self, subject: str) -> int:
        """The sequence of the last message stored on ``subject`` (0: none)."""
        return max((seq for seq, m in self.messages.items() if m.subject == subject), default=0)

    def get(
        self, *, seq: int | None = None, last_by: str | None = None, next_by: str | None = None
    ) -> StoredMessage:
        """A stored message: by sequence, the last on a subject, or the first from ``seq`` on a
        subject (wildcards allowed). Raises ApiError 404 when there is none."""
        found: StoredMessage | None = None
        if next_by is not None:
            found = next(
                (
                    m
                    for s, m in sorted(self.messages.items())
                    if s >= (seq or 1) and matches(next_by, m.subject)
                ),
                None,
            )
        elif last_by is not None:
            found = next(
                (m for _, m in sorted(self.messages.items(), reverse=True) if matches(last_by, m.subject)),
                None,
            )
        elif seq is not None:
            found = self.messages.get(seq)
        if found is None:
            raise ApiError(404, 10037, "no message found")
        return found

    def info(self) -> dict[str, Any]:
        """``STREAM.INFO``: the configuration and the state."""
        seqs = sorted(self.messages)
        subjects: dict[str, int] = {}
        for m in self.messages.values():
            subjects[m.subject] = subjects.get(m.subject, 0) + 1
        return {
            "config": self.config.as_dict(),
            "created": iso(self.created),
            "state": {
                "messages": len(seqs),
                "bytes": self.bytes,
                "first_seq": seqs[0] if seqs else self.last_seq + 1,
                "last_seq": self.last_seq,
                "consumer_count": 0,
                "num_subjects": len(subjects),
            },
        }


def with_defaults(config: StreamConfig) -> StreamConfig:
    """What the server fills in for settings a client leaves unset."""
    defaults: dict[str, Any] = {
        "retention": "limits",
        "storage": "file",
        "discard": "old",
        "max_consumers": -1,
        "max_msgs": -1,
        "max_bytes": -1,
        "max_msg_size": -1,
        "max_msgs_per_subject": -1,
        "num_replicas": 1,
        "duplicate_window": 120.0,
        "allow_direct": False,
    }
    unset = {k: v for k, v in defaults.items() if getattr(config, k, None) in (None, 0) and k != "max_age"}
    return config.evolve(**unset) if unset else config
