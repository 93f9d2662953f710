"""Following a stream subject live as a client may: an ordered push consumer with a name of its own.

nats-py's ordered consumer creates its consumer through ``$JS.API.CONSUMER.CREATE.<stream>``, which
takes the consumer name from the request body. A user allowed that subject can send an agent's
durable name with another filter, and the server updates the durable: the agent silently stops
receiving its events. So the client user may not send it (deploy/nats/render_auth.py). This feed
names each consumer it creates ``watch-<random>`` in the subject itself,
``$JS.API.CONSUMER.CREATE.<stream>.<name>.<filter>``: the server takes the name from the subject
(whatever the body says) and refuses a body filter that differs from the subject's, and the client
user may send that subject for any name but an agent durable's.

Like nats-py's ordered consumer it delivers every message once, in stream order: a gap in the
consumer sequence, or heartbeats that stop (a restarted server forgot the in-memory consumer),
recreate the consumer, under a fresh name, from the stream sequence after the last one delivered.
An abandoned consumer is removed by the server once nobody listens (``inactive_threshold``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.nuid import NUID

from contracts.subjects import CLIENT_CONSUMER_PREFIX

log = structlog.get_logger("bus.watch")

STATUS = "Status"
CONTROL = "100"  # idle heartbeat, or a flow-control request when it has a reply subject
LAST_CONSUMER_SEQ = "Nats-Last-Consumer"
STALLED = "Nats-Consumer-Stalled"
_nuid = NUID()


def watch_consumer_name(prefix: str = CLIENT_CONSUMER_PREFIX) -> str:
    """A fresh consumer name in the client name space, e.g. ``watch-Xk3...`` (never an agent durable)."""
    return prefix + _nuid.next().decode()


class OrderedFeed:
    """Messages of ``stream`` on ``filter_subject``, in order, from ``deliver_policy`` on.

    Use as ``async with OrderedFeed(nc, js, stream, subject) as feed: msg = await feed.next(timeout)``.
    """

    def __init__(
        self,
        nc: NATS,
        js: JetStreamContext,
        stream: str,
        filter_subject: str,
        *,
        deliver_policy: DeliverPolicy = DeliverPolicy.ALL,
        heartbeat_s: float = 5.0,
        inactive_threshold_s: float = 30.0,
    ) -> None:
        self._nc = nc
        self._js = js
        self.stream = stream
        self.filter_subject = filter_subject
        self._policy = deliver_policy
        self._heartbeat_s = heartbeat_s
        self._inactive_s = inactive_threshold_s
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._generation = 0  # messages of an older consumer are ignored
        self._expected = 1  # next consumer sequence of the current consumer
        self._last_stream_seq: int | None = None  # last stream sequence delivered (or skipped by NEW)
        self._sub: Any = None
        self._last_seen = time.monotonic()
        self._reset = asyncio.Event()
        self._watchdog: asyncio.Task[None] | None = None
        self.name: str | None = None
        self.recreated = 0

    async def __aenter__(self) -> OrderedFeed:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        await self._create()
        self._watchdog = asyncio.create_task(self._watch(), name=f"watch:{self.filter_subject}")

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        await self._unsubscribe()

    async def next(self, timeout_s: float | None = None) -> Msg:
        """The next message; :class:`TimeoutError` after ``timeout_s`` without one."""
        return await asyncio.wait_for(self._queue.get(), timeout_s)

    # -- the consumer ---------------------------------------------------------------------------

    async def _create(self) -> None:
        self._generation += 1
        self._expected = 1
        name = watch_consumer_name()
        deliver = self._nc.new_inbox()
        self._sub = await self._nc.subscribe(deliver, cb=functools.partial(self._on_msg, self._generation))
        config = ConsumerConfig(
            name=name,
            description="orchestra watch (ordered, ephemeral)",
            deliver_subject=deliver,
            filter_subject=self.filter_subject,
            ack_policy=AckPolicy.NONE,
            max_deliver=1,
            flow_control=True,
            idle_heartbeat=self._heartbeat_s,
            mem_storage=True,
            num_replicas=1,
            inactive_threshold=self._inactive_s,
        )
        if self._last_stream_seq is None:
            config.deliver_policy = self._policy
        else:
            config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = self._last_stream_seq + 1
        try:
            info = await self._js.add_consumer(self.stream, config)
        except BaseException:
            await self._unsubscribe()
            raise
        if self._last_stream_seq is None:
            # ALL: 0; NEW: the stream's last sequence, so a recreation misses nothing published since.
            self._last_stream_seq = info.delivered.stream_seq
        self.name = name
        self._last_seen = time.monotonic()

    async def _unsubscribe(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    def _recreate_soon(self, why: str) -> None:
        log.info("watch.recreate", consumer=self.name, reason=why)
        self._generation += 1  # whatever the old consumer still sends is ignored
        self._reset.set()

    async def _watch(self) -> None:
        """Recreate the consumer after a gap, or when heartbeats stop; retry while the server is away."""
        while True:
            try:
                await asyncio.wait_for(self._reset.wait(), self._heartbeat_s)
            except TimeoutError:
                if time.monotonic() - self._last_seen < 3 * self._heartbeat_s:
                    continue
                self._recreate_soon("no heartbeat")
            self._reset.clear()
            await self._unsubscribe()
            delay = 0.2
            while True:
                try:
                    await self._create()
                    self.recreated += 1
                    break
                except Exception as exc:  # server away, JetStream not ready: try again
                    log.info("watch.recreate_failed", error=str(exc) or type(exc).__name__, retry_in_s=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)

    async def _on_msg(self, generation: int, msg: Msg) -> None:
        if generation != self._generation:
            return
        self._last_seen = time.monotonic()
        headers = msg.headers or {}
        status = headers.get(STATUS)
        if status == CONTROL:
            if msg.reply:  # flow control: we keep up, say so
                await self._nc.publish(msg.reply)
                return
            if headers.get(STALLED):
                await self._nc.publish(headers[STALLED])
            last = headers.get(LAST_CONSUMER_SEQ)
            if last is not None and int(last) != self._expected - 1:
                self._recreate_soon(f"heartbeat says {last} delivered, {self._expected - 1} arrived")
            return
        if status:  # e.g. 409 consumer deleted
            self._recreate_soon(f"status {status} {headers.get('Description', '')}".strip())
            return
        try:
            sequence = msg.metadata.sequence
        except Exception:
            return  # not a JetStream delivery: someone else's message on our inbox
        if sequence.consumer != self._expected:
            self._recreate_soon(f"gap: consumer sequence {sequence.consumer}, expected {self._expected}")
            return
        self._expected += 1
        self._last_stream_seq = sequence.stream
        self._queue.put_nowait(msg)
