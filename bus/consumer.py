"""Consuming events: durable pull consumers, ack after success, nak with back-off, dead letters.

Delivery rules (docs/architecture.md, "Delivery rules"):
- ack only after the handler returned (its effects committed, its follow-up events acked);
- a handler that raises -> ``nak(delay)`` with back-off, until ``max_deliver``;
- bytes that are not a valid event, a :class:`~bus.errors.Reject`, or the last allowed
  delivery failing -> a dead letter (reason + raw bytes) and ``term()``;
- a handler that runs long keeps its message with ``in_progress()`` so it is not
  redelivered to another replica meanwhile (one heartbeat task per consumer does that for
  every message in hand, rather than a task per message);
- a handler that raises :class:`~bus.errors.Unavailable` (its disk, database or the stream is
  full or down; the message is fine) is retried in place with back-off, its message kept in
  progress: no delivery is spent and nothing is dead-lettered for it;
- a handler that raises :class:`~bus.errors.Deferred` (the message is fine but comes too early)
  frees its lane at once: the message is nak'ed with doubling delays that spread the handler's
  wait over the deliveries left, and dead-lettered if it is still too early on the last one;
- a batch handler may return ``{index: reason}`` for single events of its batch that it refuses
  (they are dead-lettered, the rest acked).

Intake (bench/throughput.py measured each of these against raw nats-py):
- pull requests are kept ahead of need on a private inbox (:class:`_Puller`): up to
  ``concurrency`` messages (two fetch batches for a batch handler) are asked for at once and
  asked again when half are used, instead of a fetch round trip (a request, a task, a timer)
  per batch, which under a steady trickle is a round trip per message;
- handlers run on ``concurrency`` long-lived lanes, each inside the trace context of its message
  (bus/tracing.py), instead of a task plus a keep-alive task per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DEFAULT_PREFIX

from bus.config import BusConfig
from bus.deadletter import make_dead_letter
from bus.errors import Deferred, PublishFailed, Reject, Unavailable
from bus.observer import NOOP, ConsumerObserver
from bus.provision import consumer_config, ensure_consumer
from bus.publisher import MSG_ID, Publisher
from bus.tracing import TRACEPARENT, close_trace, open_trace
from contracts import ContractError, Envelope, decode
from contracts.subjects import EVENTS_STREAM

log = structlog.get_logger("bus.consumer")

Handler = Callable[[Envelope], Awaitable[None]]
# Returns the events of the batch it refuses, by index, with the reason (or None: all handled).
BatchHandler = Callable[[list[Envelope]], Awaitable[Mapping[int, str] | None]]


class _Puller:
    """Pull requests kept ahead of need, answered on one private inbox.

    :meth:`ask` sends one pull request for ``n`` messages that expires after ``expires_s``; the
    server delivers them as they come to the inbox, where ``deliver`` takes each (in order) or
    refuses it (False: the consumer is stopping) and it is nak'ed. A request's end (408 expired,
    409 conflict) gives back its unfilled credits; requests lost with a connection say nothing, so
    credits are forgotten once every request must have expired.
    """

    def __init__(
        self, nc: NATS, subject: str, expires_s: float, deliver: Callable[[Msg], bool], changed: asyncio.Event
    ) -> None:
        self._nc = nc
        self._subject = subject
        self._expires_ns = max(int(expires_s * 1e9) - 100_000, 1_000_000)
        self._expires_s = expires_s
        self._deliver = deliver
        self._changed = changed  # set when credits come back
        self.inbox = nc.new_inbox()
        self.outstanding = 0  # messages asked for and not delivered yet
        self.last_reply: str | None = None  # ack subject of the last message (its pending count)
        self.pause_until = 0.0  # after a refusal (409, 503): no new request before then
        self._lapse_at = 0.0
        self._sub: Any = None

    async def open(self) -> None:
        self._sub = await self._nc.subscribe(self.inbox, cb=self._on_msg)

    async def close(self) -> None:
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def ask(self, n: int) -> None:
        body = json.dumps({"batch": n, "expires": self._expires_ns}).encode()
        await self._nc.publish(self._subject, body, reply=self.inbox)
        self.outstanding += n
        # A little past the expiry: the 408 that returns the credits is on its way by then.
        self._lapse_at = time.monotonic() + self._expires_s + 0.5

    def lapsed(self) -> bool:
        """True when every request must have ended: forget their credits (e.g. a lost connection)."""
        if self.outstanding and time.monotonic() > self._lapse_at:
            self.outstanding = 0
            return True
        return False

    def seconds_to_lapse(self) -> float:
        return max(self._lapse_at - time.monotonic(), 0.01)

    async def _on_msg(self, msg: Msg) -> None:
        headers = msg.headers
        if not msg.data and headers and "Status" in headers:
            # 408 request expired, 409 conflict (max waiting, consumer deleted, leader change), 503
            # no JetStream for it right now, 404 nothing (no_wait only), 100 heartbeat: all but the
            # heartbeat end a request; all but 408 and 404 also mean "wait before asking again".
            status = headers["Status"]
            if status != "100":
                unfilled = headers.get("Nats-Pending-Messages", "")
                self.outstanding = max(self.outstanding - int(unfilled), 0) if unfilled.isdigit() else 0
                if status not in ("408", "404"):
                    self.pause_until = time.monotonic() + 0.5
                    reason = (headers.get("Description") or "").strip().split("\n")[0]
                    log.info("consume.pull_refused", subject=self._subject, status=status, reason=reason)
                self._changed.set()
            return
        self.outstanding = max(self.outstanding - 1, 0)
        self.last_reply = msg.reply
        if not self._deliver(msg):  # stopping: back to the stream at once, for another replica
            await _quietly(msg.nak())


class Consumer:
    """One durable pull consumer: pull requests kept ahead, handler lanes or a batch loop.

    Parameters:
      js, publisher, config: the JetStream context, the publisher (for dead letters) and the
        delivery settings (ack_wait_s, max_deliver, nak_delays_s, fetch_batch, fetch_timeout_s).
      durable: consumer name, shared by every replica of an agent (each event handled once).
      filter_subject: the subjects this consumer receives.
      handler: ``async (event) -> None`` called per event, up to ``concurrency`` at once.
      batch_handler: alternative to ``handler``: ``async (events) -> None`` called once per
        fetched batch (the knowledge store commits a batch in one transaction).
      concurrency: handlers in flight at once (default 8).
      observer: metrics hooks (default none). An observer that also has
        ``fetched(consumer, count, pending)`` hears how many messages the consumer still has
        waiting in the stream, as of the last one received (bus/metrics.py makes it a gauge).
    """

    def __init__(
        self,
        js: JetStreamContext,
        publisher: Publisher,
        config: BusConfig,
        *,
        durable: str,
        filter_subject: str,
        handler: Handler | None = None,
        batch_handler: BatchHandler | None = None,
        concurrency: int = 8,
        observer: ConsumerObserver = NOOP,
        stream: str = EVENTS_STREAM,
        nc: NATS | None = None,
    ) -> None:
        if (handler is None) == (batch_handler is None):
            raise ValueError("give exactly one of handler / batch_handler")
        self._js = js
        self._publisher = publisher
        self._config = config
        self.durable = durable
        self.filter_subject = filter_subject
        self._handler = handler
        self._batch_handler = batch_handler
        self._concurrency = concurrency
        self._observer = observer
        self._on_fetched: Callable[[str, int, int], None] | None = observer.fetched
        self._stream = stream
        self._nc: NATS = nc if nc is not None else js._nc  # nats-py keeps no public handle on it
        self._puller: _Puller | None = None
        self._stopping = asyncio.Event()
        self._loop_done: asyncio.Event | None = None
        # Messages waiting for a lane, and how many are queued or being handled.
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._inflight = 0
        self._room = asyncio.Event()  # set when it is time to ask for more messages
        # Messages delivered for the batch handler and not handled yet.
        self._batch: list[Msg] = []
        self._batch_ready = asyncio.Event()
        self._handling_batch = 0
        # Messages held (queued, handled, buffered) plus asked for stay within the window; more
        # are asked for once half of it is free.
        self._window = concurrency if handler is not None else 2 * config.fetch_batch
        self._refill_at = max(self._window // 2, 1)
        self._idle = asyncio.Event()  # set when nothing is queued or being handled
        self._idle.set()
        # Messages in hand (being handled), by id (Msg is unhashable), with when they were taken.
        self._working: dict[int, tuple[Msg, float]] = {}
        self._helpers: list[asyncio.Task[None]] = []
        self._span_name = f"consume {durable}"

    async def start(self) -> None:
        """Create (or update) the durable consumer and open the inbox its messages arrive on."""
        await ensure_consumer(self._js, consumer_config(self.durable, self.filter_subject, self._config))
        prefix = getattr(self._js, "_prefix", DEFAULT_PREFIX)
        deliver = self._arrived_one if self._handler is not None else self._arrived_for_batch
        self._puller = _Puller(
            self._nc,
            f"{prefix}.CONSUMER.MSG.NEXT.{self._stream}.{self.durable}",
            self._config.fetch_timeout_s,
            deliver,
            self._room,
        )
        await self._puller.open()

    async def run(self) -> None:
        """Pull and handle until :meth:`stop`; survives server outages (it waits and retries)."""
        if self._puller is None:
            await self.start()
        assert self._puller is not None
        self._loop_done = asyncio.Event()
        self._helpers = [asyncio.create_task(self._heartbeat(), name=f"heartbeat:{self.durable}")]
        if self._handler is not None:
            lane = f"lane:{self.durable}"
            self._helpers += [asyncio.create_task(self._lane(), name=lane) for _ in range(self._concurrency)]
        try:
            if self._batch_handler is not None:
                self._helpers.append(
                    asyncio.create_task(self._pull_loop(self._puller), name=f"pull:{self.durable}")
                )
                await self._batch_loop()
            else:
                await self._pull_loop(self._puller)
        except BaseException:
            self._cancel_helpers()
            raise
        finally:
            self._loop_done.set()

    def _held(self) -> int:
        return self._inflight + len(self._batch) + self._handling_batch

    async def _pull_loop(self, puller: _Puller) -> None:
        """Keep the window asked for: ask again when half of it is free, or when requests lapsed."""
        reported: str | None = None
        while not self._stopping.is_set():
            if self._on_fetched is not None and puller.last_reply is not reported:
                reported = puller.last_reply  # the stream's backlog as of the last message
                self._on_fetched(self.durable, 0, _pending_of(reported or ""))
            pause = puller.pause_until - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
                continue
            lapsed = puller.lapsed()
            free = self._window - self._held() - puller.outstanding
            if free >= self._refill_at or (free > 0 and (lapsed or puller.outstanding == 0)):
                try:
                    await puller.ask(free)
                except Exception as exc:  # disconnected with a full buffer, closing, ...: wait, go on
                    if self._stopping.is_set():
                        break
                    error = str(exc) or type(exc).__name__
                    log.warning("consume.pull_failed", consumer=self.durable, error=error)
                    await asyncio.sleep(0.5)
                    continue
            self._room.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._room.wait(), puller.seconds_to_lapse())

    def _arrived_one(self, msg: Msg) -> bool:
        if self._stopping.is_set():
            return False
        self._inflight += 1
        self._idle.clear()
        self._queue.put_nowait(msg)
        return True

    def _arrived_for_batch(self, msg: Msg) -> bool:
        if self._stopping.is_set():
            return False
        # Kept in progress while it waits: the batch before it may be retrying for a while.
        self._working[id(msg)] = (msg, time.monotonic())
        self._batch.append(msg)
        self._batch_ready.set()
        return True

    async def _batch_loop(self) -> None:
        """Hand what has arrived to the batch handler, up to ``fetch_batch`` messages at a time."""
        size = self._config.fetch_batch
        while not self._stopping.is_set():
            if not self._batch:
                self._batch_ready.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._batch_ready.wait(), self._config.fetch_timeout_s)
                continue
            msgs, self._batch = self._batch[:size], self._batch[size:]
            self._handling_batch = len(msgs)
            try:
                await self._handle_batch(msgs)
            except Exception as exc:  # a bug, a lost connection: unacked, it comes back after ack_wait
                log.error("consume.batch_error", consumer=self.durable, error=f"{type(exc).__name__}: {exc}")
            finally:
                self._handling_batch = 0
                for msg in msgs:
                    self._working.pop(id(msg), None)
                self._room.set()
        for msg in self._batch:  # arrived while stopping: back to the stream at once
            self._working.pop(id(msg), None)
            await _quietly(msg.nak())
        self._batch = []

    async def _lane(self) -> None:
        """One of ``concurrency`` handler lanes: takes the next fetched message and handles it."""
        queue = self._queue
        while True:
            msg = await queue.get()
            try:
                await self._handle_one(msg)
            except Exception as exc:  # a bug or a lost connection: the message comes back after ack_wait
                log.error("consume.lane_error", consumer=self.durable, error=f"{type(exc).__name__}: {exc}")
            finally:
                self._inflight -= 1
                if self._inflight == 0:
                    self._idle.set()
                if self._window - self._held() - self._puller_outstanding() >= self._refill_at:
                    self._room.set()

    def _puller_outstanding(self) -> int:
        return self._puller.outstanding if self._puller is not None else 0

    def _cancel_helpers(self) -> None:
        for task in self._helpers:
            task.cancel()
        self._helpers = []

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Stop asking for messages, wait for the batch or handlers in flight (acked or nak'ed), then
        close the inbox; messages still arriving meanwhile are nak'ed back to the stream."""
        self._stopping.set()
        self._room.set()
        self._batch_ready.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        if self._loop_done is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._loop_done.wait(), timeout_s)
        if self._inflight:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._idle.wait(), max(deadline - loop.time(), 0.1))
        self._cancel_helpers()
        puller, self._puller = self._puller, None
        if puller is not None:
            await puller.close()

    # -- one message -------------------------------------------------------------------

    async def _handle_one(self, msg: Msg) -> None:
        event = await self._decode_or_dead_letter(msg)
        if event is None:
            return
        handler = self._handler
        assert handler is not None
        started = time.perf_counter()
        headers = msg.headers
        # Written out rather than as context managers: this runs once per message (bench/).
        trace = open_trace(headers.get(TRACEPARENT) if headers else None, self._span_name)
        error: Exception | None = None
        key = id(msg)
        self._working[key] = (msg, time.monotonic())
        try:
            try:
                await handler(event)
            except Unavailable as exc:
                await self._retry(lambda: handler(event), event.id, exc)
        except Exception as exc:
            error = exc
        finally:
            # Out of the heartbeat's hands before the ack or nak: no in_progress can follow them.
            self._working.pop(key, None)
        try:
            if error is None:
                await self._ack(msg)
                self._observer.handled(self.durable, event.type, time.perf_counter() - started)
            elif isinstance(error, Reject):
                await self._dead_letter(msg, f"rejected by {self.durable}: {error.reason}")
            elif isinstance(error, Deferred):
                await self._defer(msg, error)
            else:
                await self._failed(msg, event, error)
        finally:
            close_trace(trace, error)

    async def _handle_batch(self, msgs: Sequence[Msg]) -> None:
        good: list[tuple[Msg, Envelope]] = []
        for msg in msgs:
            event = await self._decode_or_dead_letter(msg)
            if event is not None:
                good.append((msg, event))
        if not good:
            return
        batch_handler = self._batch_handler
        assert batch_handler is not None
        started = time.perf_counter()
        events = [e for _, e in good]
        refused: Mapping[int, str] | None = None

        async def call() -> None:
            nonlocal refused
            refused = await batch_handler(events)

        try:
            with self._kept_in_progress([m for m, _ in good]):
                try:
                    await call()
                except Unavailable as exc:
                    await self._retry(call, f"batch of {len(events)}", exc)
        except Exception as exc:
            for msg, event in good:
                await self._failed(msg, event, exc)
            return
        refused = refused or {}
        per_event = (time.perf_counter() - started) / len(good)
        for index, (msg, event) in enumerate(good):
            if index in refused:
                await self._dead_letter(msg, f"rejected by {self.durable}: {refused[index]}")
                continue
            await self._ack(msg)
            self._observer.handled(self.durable, str(event.type), per_event)

    async def _decode_or_dead_letter(self, msg: Msg) -> Envelope | None:
        delivered = _ack_tokens(msg)[0]
        if delivered > 1:
            self._observer.redelivered(self.durable, delivered)
        try:
            event = decode(msg.data)
        except ContractError as exc:
            await self._dead_letter(msg, exc.reason)
            return None
        if msg.subject != event.subject():
            # The subject is the routing (and watch --task filters on it): one that lies is invalid.
            await self._dead_letter(
                msg, f"{event.type} event of task {event.task_id} on subject {msg.subject}"
            )
            return None
        return event

    async def _retry(self, call: Callable[[], Awaitable[None]], what: str, first: Unavailable) -> None:
        """A handler call raised Unavailable: retry it with back-off (its messages stay in progress)
        until it succeeds. On stop the Unavailable propagates, and the message is nak'ed as a failure."""
        exc = first
        for attempt in itertools.count(1):
            delay = self._config.nak_delay(attempt)
            log.warning(
                "consume.dependency_unavailable",
                consumer=self.durable,
                handling=what,
                attempt=attempt,
                retry_in_s=delay,
                error=str(exc),
            )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                raise exc
            try:
                await call()
                return
            except Unavailable as again:
                exc = again

    @contextlib.contextmanager
    def _kept_in_progress(self, msgs: Sequence[Msg]) -> Iterator[None]:
        """While the body runs the heartbeat tells the server we are still working on ``msgs``;
        they leave the heartbeat's list before the ack or nak so no in_progress can follow them."""
        taken = time.monotonic()
        held = [id(msg) for msg in msgs]
        for key, msg in zip(held, msgs, strict=True):
            self._working[key] = (msg, taken)
        try:
            yield
        finally:
            for key in held:
                self._working.pop(key, None)

    async def _heartbeat(self) -> None:
        """Every ack_wait/3, ``in_progress()`` for each message held longer than that: the server
        then never redelivers a message still being worked on (first beat within 2/3 ack_wait)."""
        interval = max(self._config.ack_wait_s / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            due = time.monotonic() - interval
            for key, (msg, taken) in list(self._working.items()):
                if taken <= due and key in self._working:
                    with contextlib.suppress(Exception):
                        await msg.in_progress()

    async def _defer(self, msg: Msg, deferred: Deferred) -> None:
        """Back to the stream for later (the lane is free meanwhile), or a dead letter when this was
        the last delivery allowed."""
        deliveries = _ack_tokens(msg)[0]
        left = self._config.max_deliver - deliveries
        if left <= 0:
            await self._dead_letter(msg, f"still too early after {deliveries} deliveries: {deferred.reason}")
            return
        # Doubling delays whose sum over the deliveries left covers the wait: an answer that comes a
        # moment too early is retried soon, one about no task at all waits out the whole span.
        delay = max(self._config.nak_delay(deliveries), deferred.within_s / (2 ** min(left, 30) - 1))
        log.info(
            "consume.deferred",
            consumer=self.durable,
            deliveries=deliveries,
            retry_in_s=round(delay, 2),
            reason=deferred.reason,
        )
        with contextlib.suppress(Exception):
            await msg.nak(delay=delay)

    async def _failed(self, msg: Msg, event: Envelope, exc: BaseException) -> None:
        deliveries = msg.metadata.num_delivered
        self._observer.failed(self.durable, str(event.type), exc)
        reason = f"{type(exc).__name__}: {exc}"
        if deliveries >= self._config.max_deliver:
            await self._dead_letter(msg, f"failed {deliveries} times (max_deliver); last error {reason}")
            return
        delay = self._config.nak_delay(deliveries)
        log.warning(
            "consume.handler_failed",
            consumer=self.durable,
            event_id=event.id,
            task_id=event.task_id,
            deliveries=deliveries,
            retry_in_s=delay,
            error=reason,
        )
        with contextlib.suppress(Exception):
            await msg.nak(delay=delay)

    async def _ack(self, msg: Msg) -> None:
        try:
            await msg.ack()
        except Exception as exc:  # connection lost: the server redelivers; handlers are idempotent
            log.warning("consume.ack_failed", consumer=self.durable, error=str(exc) or type(exc).__name__)

    async def _dead_letter(self, msg: Msg, reason: str) -> None:
        meta = msg.metadata
        letter = make_dead_letter(
            consumer=self.durable,
            reason=reason,
            subject=msg.subject,
            stream_seq=meta.sequence.stream,
            deliveries=meta.num_delivered,
            headers=msg.headers,
            data=msg.data,
        )
        try:
            await self._publisher.publish_raw(
                letter.subject_out(), letter.model_dump_json().encode(), {MSG_ID: letter.id}
            )
        except PublishFailed as exc:
            # Keep the message rather than lose it: it comes back after the back-off.
            log.error("consume.dead_letter_failed", consumer=self.durable, error=str(exc))
            with contextlib.suppress(Exception):
                await msg.nak(delay=self._config.nak_delay(meta.num_delivered))
            return
        self._observer.dead_lettered(self.durable, reason)
        log.warning(
            "consume.dead_lettered",
            consumer=self.durable,
            stream_seq=meta.sequence.stream,
            deliveries=meta.num_delivered,
            reason=reason,
        )
        with contextlib.suppress(Exception):
            await msg.term()


def _ack_tokens(msg: Msg) -> tuple[int, int]:
    """``(times delivered, messages still pending for the consumer)`` read straight from the
    JetStream ack subject; ``msg.metadata`` builds dataclasses and a datetime for that."""
    tokens = (msg.reply or "").split(".")
    try:
        if len(tokens) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
            return int(tokens[4]), int(tokens[8])
        return int(tokens[Msg.Ack.NumDelivered]), int(tokens[Msg.Ack.NumPending])
    except (IndexError, ValueError):
        meta = msg.metadata  # raises NotJSMessageError for a reply that is no ack subject
        return meta.num_delivered, meta.num_pending


def _pending_of(reply: str) -> int:
    tokens = reply.split(".")
    try:
        return int(tokens[8] if len(tokens) == 9 else tokens[Msg.Ack.NumPending])
    except (IndexError, ValueError):
        return 0


async def _quietly(call: Awaitable[None]) -> None:
    with contextlib.suppress(Exception):
        await call
