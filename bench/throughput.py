"""Bus throughput against raw nats-py doing the same work.

Both sides: publish N events with a dedupe id (``Nats-Msg-Id``) and an awaited PubAck, at most
``inflight`` publishes outstanding; a durable pull consumer (same server-side settings) fetches
batches, validates each event with pydantic (:func:`contracts.decode`) and acks it. The time runs
from the first publish to the last event handled, on a fresh stream.

Ours goes through :class:`bus.runtime.Bus` as an agent runs it: ``Publisher`` + ``Consumer`` with
trace headers and trace context, the Prometheus observer and publish counter of bus/metrics.py,
the heartbeat, dead-letter and retry paths armed. Raw is the hand-written nats-py loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import nats
from nats.errors import TimeoutError as NatsTimeout

from bench.common import Rate, Stopwatch, fresh_streams, publish_all
from bus.config import BusConfig
from bus.metrics import metrics_observer
from bus.observer import NOOP
from bus.provision import consumer_config, ensure_consumer
from bus.runtime import Bus
from contracts import Envelope, decode, encode
from contracts.subjects import EVENTS_STREAM, EVENTS_SUBJECTS, event_subject

DURABLE = "bench"


def bench_config(url: str, *, batch: int) -> BusConfig:
    """The bus settings both sides use (the raw side takes its consumer settings from here too)."""
    return BusConfig(nats_url=url, fetch_batch=batch, fetch_timeout_s=1.0, publish_timeout_s=10.0)


async def run_bus(
    url: str,
    events: Sequence[Envelope],
    *,
    inflight: int,
    batch: int,
    metrics: bool = True,
) -> Rate:
    """Events through our Publisher and Consumer."""
    config = bench_config(url, batch=batch)
    bus = await Bus.connect(config, name="bench-bus", provision=True)
    try:
        await fresh_streams(bus.js, config)
        done = asyncio.Event()
        want = len(events)
        count = 0

        async def handle(event: Envelope) -> None:
            nonlocal count
            count += 1
            if count >= want:
                done.set()

        observer = metrics_observer(bus.publisher) if metrics else NOOP
        await bus.consume(
            durable=DURABLE,
            filter_subject=EVENTS_SUBJECTS,
            handler=handle,
            concurrency=batch,
            observer=observer,
        )
        watch = Stopwatch()
        watch.start()
        await publish_all(bus.publish, events, inflight=inflight)
        await done.wait()
        rate = watch.stop(want)
        await _settled(bus.js)
        return rate
    finally:
        await bus.close(timeout_s=5)


async def run_raw(url: str, events: Sequence[Envelope], *, inflight: int, batch: int) -> Rate:
    """Events through plain nats-py: js.publish + pull_subscribe fetch + decode + ack."""
    config = bench_config(url, batch=batch)
    nc = await nats.connect(url, name="bench-raw")
    js = nc.jetstream(timeout=config.publish_timeout_s)
    try:
        await fresh_streams(js, config)
        await ensure_consumer(js, consumer_config(DURABLE, EVENTS_SUBJECTS, config))
        sub = await js.pull_subscribe_bind(
            durable=DURABLE, stream=EVENTS_STREAM, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
        want = len(events)

        async def consume() -> None:
            got = 0
            while got < want:
                try:
                    msgs = await sub.fetch(batch, timeout=config.fetch_timeout_s)
                except NatsTimeout:
                    continue
                for msg in msgs:
                    decode(msg.data)
                    await msg.ack()
                    got += 1

        async def publish(event: Envelope) -> None:
            subject = event_subject(event.type, event.task_id)
            await js.publish(subject, encode(event), headers={"Nats-Msg-Id": event.id})

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0)  # let the first pull request go out, as the bus's fetch loop does
        watch = Stopwatch()
        watch.start()
        await publish_all(publish, events, inflight=inflight)
        await consumer
        rate = watch.stop(want)
        await _settled(js)
        return rate
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


async def _settled(js: nats.js.JetStreamContext, timeout_s: float = 10.0) -> None:
    """Wait until the server has every ack (outside the timing): both sides must really ack."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = await js.consumer_info(EVENTS_STREAM, DURABLE)
        if info.num_ack_pending == 0 and info.num_pending == 0:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"consumer {DURABLE} still has unacked messages after {timeout_s}s")
