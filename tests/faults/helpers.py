"""Polling for a condition (never a blind sleep), and reading what the stream and the store hold."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from bus.config import BusConfig
from bus.deadletter import DeadLetter
from contracts import EventType, Source, new_event
from contracts.payloads import KnowledgeNote
from contracts.subjects import DLQ_STREAM, EVENTS_STREAM
from contracts.vocabulary import NoteKind

SRC = Source(agent="faults", instance="f1")


def fast_config(url: str, **overrides: Any) -> BusConfig:
    """Delivery timings short enough for fault tests: redelivery within a second or two."""
    values: dict[str, Any] = {
        "nats_url": url,
        "ack_wait_s": 2.0,
        "max_deliver": 4,
        "nak_delays_s": (0.05, 0.1, 0.3),
        "fetch_timeout_s": 0.2,
        "publish_timeout_s": 1.0,
        "publish_attempts": 3,
    }
    values.update(overrides)
    return BusConfig(**values)


def note(task_id: str, text: str = "hello", *, source: Source = SRC) -> Any:
    return new_event(
        EventType.KNOWLEDGE_NOTE,
        KnowledgeNote(kind=NoteKind.EDIT, text=text, agent="faults"),
        task_id=task_id,
        source=source,
    )


async def until(
    predicate: Callable[[], Any], *, within: float, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll ``predicate`` (sync or async) until it returns something truthy; fail after ``within`` s."""
    deadline = time.monotonic() + within
    last: Any = None
    while True:
        last = predicate()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.1f}s waiting for {what} (last: {last!r})")
        await asyncio.sleep(interval)


async def stream_count(js: JetStreamContext, stream: str = EVENTS_STREAM, subject: str | None = None) -> int:
    """Messages in ``stream`` (optionally only on subjects matching ``subject``)."""
    if subject is None:
        return (await js.stream_info(stream)).state.messages
    info = await js.stream_info(stream, subjects_filter=subject)
    return sum((info.state.subjects or {}).values())


async def stream_ids(js: JetStreamContext, stream: str = EVENTS_STREAM) -> list[str]:
    """The Nats-Msg-Id of every message in ``stream``, in stream order (one direct get per message)."""
    msgs = await raw_messages(js, stream)
    return [(msg.headers or {}).get("Nats-Msg-Id", f"seq-{msg.seq}") for msg in msgs]


async def raw_messages(js: JetStreamContext, stream: str = EVENTS_STREAM) -> list[Any]:
    """Every message of ``stream`` as stored (subject, headers, data), by direct get."""
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return []
    if not info.state.messages:
        return []
    out = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            out.append(await js.get_msg(stream, seq))
        except NotFoundError:
            continue
    return out


async def stream_bytes(js: JetStreamContext, stream: str = EVENTS_STREAM) -> list[bytes]:
    """The raw data of every message in ``stream``."""
    out: list[bytes] = []
    for msg in await raw_messages(js, stream):
        out.append(msg.data or b"")
        out.extend(v.encode() for v in (msg.headers or {}).values())
    return out


async def dead_letters(js: JetStreamContext, consumer: str | None = None) -> list[DeadLetter]:
    """Every dead letter (of one consumer, or all)."""
    letters = []
    for msg in await raw_messages(js, DLQ_STREAM):
        letter = DeadLetter.model_validate_json(msg.data or b"")
        if consumer is None or letter.consumer == consumer:
            letters.append(letter)
    return letters


def store_rows(db: Path) -> list[tuple[str, str, str]]:
    """``(id, type, task_id)`` of every row of a knowledge SQLite file (read with the sqlite3 module)."""
    if not Path(db).exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return list(con.execute("SELECT id, type, task_id FROM events ORDER BY seq"))
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        con.close()


def store_count(db: Path) -> int:
    return len(store_rows(db))


def assert_exactly_once(stream_ids_: list[str], rows: list[tuple[str, str, str]]) -> None:
    """Invariant: every stored stream message is in the knowledge store once, and nothing else is."""
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate ids in the knowledge store"
    assert len(stream_ids_) == len(set(stream_ids_)), "duplicate Nats-Msg-Id in the stream"
    missing = set(stream_ids_) - set(ids)
    extra = set(ids) - set(stream_ids_)
    assert not missing, f"{len(missing)} acknowledged events not in the store, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} stored events the stream does not hold, e.g. {sorted(extra)[:3]}"
