"""Consuming events: durable pull consumers, ack after success, nak with back-off, dead letters.

Delivery rules (DESIGN.md):
- ack only after the handler returned (its effects committed, its follow-up events acked);
- a handler that raises -> ``nak(delay)`` with back-off, until ``max_deliver``;
- bytes that are not a valid event, a :class:`~bus.errors.Reject`, or the last allowed
  delivery failing -> a dead letter (reason + raw bytes) and ``term()``;
- a handler that runs long keeps its message with ``in_progress()`` so it is not
  redelivered to another replica meanwhile;
- a handler that raises :class:`~bus.errors.Unavailable` (its disk, database or the stream is
  full or down; the message is fine) is retried in place with back-off, its message kept in
  progress: no delivery is spent and nothing is dead-lettered for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence

import structlog
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, TimeoutError
from nats.js import JetStreamContext

from bus.config import BusConfig
from bus.deadletter import make_dead_letter
from bus.errors import PublishFailed, Reject, Unavailable
from bus.observer import NOOP, ConsumerObserver
from bus.provision import consumer_config, ensure_consumer
from bus.publisher import MSG_ID, Publisher
from contracts import ContractError, Envelope, decode
from contracts.subjects import EVENTS_STREAM

log = structlog.get_logger("bus.consumer")

Handler = Callable[[Envelope], Awaitable[None]]
BatchHandler = Callable[[list[Envelope]], Awaitable[None]]


class Consumer:
    """One durable pull consumer and its fetch loop.

    Parameters:
      js, publisher, config: the JetStream context, the publisher (for dead letters) and the
        delivery settings (ack_wait_s, max_deliver, nak_delays_s, fetch_batch, fetch_timeout_s).
      durable: consumer name, shared by every replica of an agent (each event handled once).
      filter_subject: the subjects this consumer receives.
      handler: ``async (event) -> None`` called per event, up to ``concurrency`` at once.
      batch_handler: alternative to ``handler``: ``async (events) -> None`` called once per
        fetched batch (the knowledge store commits a batch in one transaction).
      concurrency: handlers in flight at once (default 8).
      observer: metrics hooks (default none).
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
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._observer = observer
        self._stream = stream
        self._sub: JetStreamContext.PullSubscription | None = None
        self._stopping = asyncio.Event()
        self._loop_done: asyncio.Event | None = None
        self._inflight: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Create (or update) the durable consumer and bind a pull subscription to it."""
        await ensure_consumer(self._js, consumer_config(self.durable, self.filter_subject, self._config))
        self._sub = await self._js.pull_subscribe_bind(
            durable=self.durable, stream=self._stream, pending_msgs_limit=-1, pending_bytes_limit=-1
        )

    async def run(self) -> None:
        """Fetch and handle until :meth:`stop`; survives server outages (it waits and retries)."""
        if self._sub is None:
            await self.start()
        assert self._sub is not None
        self._loop_done = asyncio.Event()
        try:
            await self._fetch_loop(self._sub)
        finally:
            self._loop_done.set()

    async def _fetch_loop(self, sub: JetStreamContext.PullSubscription) -> None:
        while not self._stopping.is_set():
            want = self._config.fetch_batch if self._batch_handler else self._free_slots()
            if want == 0:
                await self._wait_for_slot()
                continue
            try:
                msgs = await sub.fetch(want, timeout=self._config.fetch_timeout_s)
            except TimeoutError:
                continue
            except (ConnectionClosedError, asyncio.CancelledError):
                if self._stopping.is_set():
                    break
                raise
            except Exception as exc:  # disconnected, server restarting, ...: wait, then go on
                if self._stopping.is_set():
                    break
                log.warning(
                    "consume.fetch_failed", consumer=self.durable, error=str(exc) or type(exc).__name__
                )
                await asyncio.sleep(0.5)
                continue
            if self._batch_handler is not None:
                await self._handle_batch(msgs)
            else:
                for msg in msgs:
                    await self._slots.acquire()
                    task = asyncio.create_task(self._handle_one(msg))
                    self._inflight.add(task)
                    task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        self._slots.release()

    def _free_slots(self) -> int:
        return max(self._concurrency - len(self._inflight), 0)

    async def _wait_for_slot(self) -> None:
        await self._slots.acquire()
        self._slots.release()

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Stop fetching, wait for the batch or handlers in flight (acked or nak'ed), unsubscribe.

        Unsubscribing matters: nats-py's fetch takes messages off the subscription queue without
        marking them done, so ``drain()`` would otherwise wait its whole drain_timeout (30 s)."""
        self._stopping.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        if self._loop_done is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._loop_done.wait(), timeout_s)
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=max(deadline - loop.time(), 0.1))
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    # -- one message -------------------------------------------------------------------

    async def _handle_one(self, msg: Msg) -> None:
        event = await self._decode_or_dead_letter(msg)
        if event is None:
            return
        handler = self._handler
        assert handler is not None
        started = time.perf_counter()
        try:
            async with self._kept_in_progress([msg]):
                await self._call(lambda: handler(event), event.id)
        except Reject as exc:
            await self._dead_letter(msg, f"rejected by {self.durable}: {exc.reason}")
            return
        except Exception as exc:
            await self._failed(msg, event, exc)
            return
        await self._ack(msg)
        self._observer.handled(self.durable, str(event.type), time.perf_counter() - started)

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
        try:
            async with self._kept_in_progress([m for m, _ in good]):
                await self._call(lambda: batch_handler(events), f"batch of {len(events)}")
        except Exception as exc:
            for msg, event in good:
                await self._failed(msg, event, exc)
            return
        for msg, _ in good:
            await self._ack(msg)
        per_event = (time.perf_counter() - started) / len(good)
        for _, event in good:
            self._observer.handled(self.durable, str(event.type), per_event)

    async def _decode_or_dead_letter(self, msg: Msg) -> Envelope | None:
        if msg.metadata.num_delivered > 1:
            self._observer.redelivered(self.durable, msg.metadata.num_delivered)
        try:
            return decode(msg.data)
        except ContractError as exc:
            await self._dead_letter(msg, exc.reason)
            return None

    async def _call(self, call: Callable[[], Awaitable[None]], what: str) -> None:
        """Run a handler call; while it raises Unavailable, retry it with back-off (its messages stay
        in progress). On stop the Unavailable propagates, and the message is nak'ed as a failure."""
        attempt = 0
        while True:
            try:
                await call()
                return
            except Unavailable as exc:
                attempt += 1
                delay = self._config.nak_delay(attempt)
                log.warning(
                    "consume.dependency_unavailable",
                    consumer=self.durable,
                    handling=what,
                    attempt=attempt,
                    retry_in_s=delay,
                    error=str(exc),
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if self._stopping.is_set():
                    raise

    @contextlib.asynccontextmanager
    async def _kept_in_progress(self, msgs: Iterable[Msg]) -> AsyncIterator[None]:
        """While the body runs, tell the server we are still working, well before ack_wait runs
        out; stopped before the ack or nak so no in_progress can follow them."""

        async def keep() -> None:
            interval = max(self._config.ack_wait_s / 3, 0.05)
            with contextlib.suppress(Exception):
                while True:
                    await asyncio.sleep(interval)
                    for msg in msgs:
                        await msg.in_progress()

        task = asyncio.create_task(keep())
        try:
            yield
        finally:
            task.cancel()

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
