"""Rebuilding the knowledge store: replay the EVENTS stream from its first message into a new file.

The stream is the durable log and the SQLite file a projection of it, so a lost, corrupt or
suspicious file is rebuilt rather than repaired. The rebuilt file holds the same rows as a live
subscriber that saw the same messages: one row per valid event id (duplicates ignored), the bytes
that are no event, or an event on a subject not its own, skipped (the live subscriber
dead-lettered them).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from nats.aio.msg import Msg
from nats.errors import TimeoutError as FetchTimeout
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from agents.knowledge.store import KnowledgeStore
from contracts import ContractError, Envelope, decode
from contracts.subjects import EVENTS_STREAM, EVENTS_SUBJECTS


class RebuildRefused(ValueError):
    """The rebuild would overwrite something, or there is nothing to read."""


@dataclass(frozen=True)
class RebuildResult:
    """What a rebuild read and wrote: stream messages read (up to ``last_seq``), rows stored,
    messages that repeated an event already stored, and messages the live subscriber dead-letters
    (bytes that are not a valid event, another event under an id already stored)."""

    path: Path
    messages: int
    stored: int
    duplicates: int
    invalid: int
    last_seq: int


async def read_stream(
    js: JetStreamContext, stream: str, subject: str, *, batch: int = 512, fetch_timeout_s: float = 2.0
) -> AsyncIterator[list[Msg]]:
    """Every message of ``stream`` on ``subject`` from the first to the last one stored when the
    read began, in batches. Uses a short-lived ephemeral consumer (no acks, in memory), so nothing
    about the agents' durable consumers changes."""
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        raise RebuildRefused(f"stream {stream} does not exist on this server") from None
    last = info.state.last_seq
    if info.state.messages == 0:
        return
    config = ConsumerConfig(
        ack_policy=AckPolicy.NONE,
        deliver_policy=DeliverPolicy.ALL,
        mem_storage=True,
        inactive_threshold=60.0,
        description="orchestra replay (rebuild, dead-letter tools)",
    )
    sub = await js.pull_subscribe(subject, stream=stream, config=config)
    try:
        seen = 0
        while seen < last:
            try:
                msgs = await sub.fetch(batch, timeout=fetch_timeout_s)
            except FetchTimeout:
                # Nothing more arrives: the tail was deleted or the subject filter excludes it.
                if (await sub.consumer_info()).num_pending == 0:
                    return
                continue
            seen = msgs[-1].metadata.sequence.stream
            yield [m for m in msgs if m.metadata.sequence.stream <= last]
    finally:
        with contextlib.suppress(Exception):
            name = (await sub.consumer_info()).name
            await sub.unsubscribe()
            await js.delete_consumer(stream, name)


async def rebuild(js: JetStreamContext, out: Path, *, batch: int = 512) -> RebuildResult:
    """Replay the EVENTS stream into a new knowledge file at ``out`` (refused if it exists)."""
    out = Path(out)
    if out.exists():
        raise RebuildRefused(
            f"{str(out)!r} already exists; choose a new file (the live one is never touched)"
        )
    store = await KnowledgeStore.open(out)
    messages = stored = invalid = last_seq = 0
    complete = False
    try:
        async for msgs in read_stream(js, EVENTS_STREAM, EVENTS_SUBJECTS, batch=batch):
            events: list[Envelope] = []
            for msg in msgs:
                try:
                    event = decode(msg.data)
                except ContractError:
                    invalid += 1
                    continue
                if event.subject() != msg.subject:  # misrouted: the live subscriber dead-letters it
                    invalid += 1
                    continue
                events.append(event)
            messages += len(msgs)
            if msgs:
                last_seq = msgs[-1].metadata.sequence.stream
            if events:
                result = await store.add_batch(events)
                stored += result.added
                invalid += len(result.conflicts)  # the live subscriber dead-letters those too
        complete = True
    finally:
        await store.close()
        if not complete:  # no half-built file that looks like a good one
            for part in (out, out.with_name(out.name + "-wal"), out.with_name(out.name + "-shm")):
                part.unlink(missing_ok=True)
    return RebuildResult(
        path=out,
        messages=messages,
        stored=stored,
        duplicates=messages - invalid - stored,
        invalid=invalid,
        last_seq=last_seq,
    )
