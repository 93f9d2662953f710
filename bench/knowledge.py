"""The knowledge subscriber against raw nats-py: events committed to SQLite before their ack, per second.

N events are published first (untimed) on a fresh stream; the clock then runs from starting the
subscriber to the last event committed (and its ack sent).

Ours: :class:`agents.knowledge.agent.Knowledge` as it runs in production: ``Bus.consume`` with a
batch handler, :class:`~agents.knowledge.store.KnowledgeStore` on aiosqlite (one transaction per
fetched batch: validation by :func:`contracts.decode`, a row built with its summary, the event
re-encoded for the ``event`` column), the Prometheus observer.

Raw: nats-py ``pull_subscribe`` + ``fetch`` of the same batch size, :func:`contracts.decode` and the
same row builder (same summary text, so FTS5 indexes the same words) into the same schema (WAL,
FTS5 trigger, indexes) with the stdlib ``sqlite3`` module in the event loop, one ``executemany``
+ ``commit`` per batch, then an ack per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import tempfile
from collections.abc import Sequence
from pathlib import Path

import nats
from nats.errors import TimeoutError as NatsTimeout

from agents.knowledge.agent import Knowledge
from agents.knowledge.store import _INSERT, SCHEMA, _row
from agents.settings import AgentSettings
from bench.common import Rate, Stopwatch, fresh_streams, publish_all
from bus.config import BusConfig
from bus.provision import consumer_config, ensure_consumer
from bus.runtime import Bus
from contracts import Envelope, decode, encode
from contracts.subjects import EVENTS_STREAM, EVENTS_SUBJECTS, ROUTES, event_subject

DURABLE = ROUTES["knowledge"].consumers()[0][0]


def bench_config(url: str, *, batch: int) -> BusConfig:
    return BusConfig(nats_url=url, fetch_batch=batch, fetch_timeout_s=1.0, publish_timeout_s=10.0)


async def _prepare(js: nats.js.JetStreamContext, config: BusConfig, events: Sequence[Envelope]) -> None:
    """A fresh stream holding ``events`` (published raw, 256 in flight: not what is measured)."""
    await fresh_streams(js, config)

    async def publish(event: Envelope) -> None:
        await js.publish(
            event_subject(event.type, event.task_id), encode(event), headers={"Nats-Msg-Id": event.id}
        )

    await publish_all(publish, events, inflight=256)


class _Counted(Knowledge):
    """The knowledge agent, telling the benchmark when ``target`` events are committed."""

    target = 0
    done: asyncio.Event

    async def persist(self, events: list[Envelope]) -> None:
        await super().persist(events)
        if self.handled >= self.target:
            self.done.set()


async def run_ours(url: str, events: Sequence[Envelope], *, batch: int) -> Rate:
    config = bench_config(url, batch=batch)
    with tempfile.TemporaryDirectory(prefix="bench-knowledge-") as tmp:
        bus = await Bus.connect(config, name="bench-knowledge", provision=True)
        worker: _Counted | None = None
        try:
            await _prepare(bus.js, config, events)
            settings = AgentSettings(workspace=Path(tmp), knowledge_db=Path(tmp) / "knowledge.sqlite3")
            worker = _Counted(bus, settings)
            worker.target, worker.done = len(events), asyncio.Event()
            watch = Stopwatch()
            watch.start()
            await worker.start()
            await worker.done.wait()
            rate = watch.stop(len(events))
            await _settled(bus.js)
            if await worker.store.count() != len(events):
                raise RuntimeError("knowledge store is missing events")
            return rate
        finally:
            for consumer in bus.consumers:
                await consumer.stop(5)
            if worker is not None:
                await worker.stop()
            await bus.close(timeout_s=5)


async def run_raw(url: str, events: Sequence[Envelope], *, batch: int) -> Rate:
    config = bench_config(url, batch=batch)
    with tempfile.TemporaryDirectory(prefix="bench-knowledge-raw-") as tmp:
        nc = await nats.connect(url, name="bench-knowledge-raw")
        js = nc.jetstream(timeout=config.publish_timeout_s)
        db: sqlite3.Connection | None = None
        try:
            await _prepare(js, config, events)
            watch = Stopwatch()
            watch.start()
            db = sqlite3.connect(Path(tmp) / "knowledge.sqlite3")
            db.executescript(SCHEMA)
            db.commit()
            await ensure_consumer(js, consumer_config(DURABLE, EVENTS_SUBJECTS, config))
            sub = await js.pull_subscribe_bind(
                durable=DURABLE, stream=EVENTS_STREAM, pending_msgs_limit=-1, pending_bytes_limit=-1
            )
            stored = 0
            while stored < len(events):
                try:
                    msgs = await sub.fetch(batch, timeout=config.fetch_timeout_s)
                except NatsTimeout:
                    continue
                db.executemany(_INSERT, [_row(decode(m.data)) for m in msgs])
                db.commit()
                for m in msgs:
                    await m.ack()
                stored += len(msgs)
            rate = watch.stop(len(events))
            await _settled(js)
            return rate
        finally:
            if db is not None:
                db.close()
            with contextlib.suppress(Exception):
                await nc.close()


async def _settled(js: nats.js.JetStreamContext, timeout_s: float = 10.0) -> None:
    """Every ack reached the server (checked outside the timing, for both sides)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        info = await js.consumer_info(EVENTS_STREAM, DURABLE)
        if info.num_ack_pending == 0 and info.num_pending == 0:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"consumer {DURABLE} still has unacked messages after {timeout_s}s")
