"""The stub broker: an in-memory NATS server with JetStream for tests, driven by a manual clock."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from types import TracebackType
from typing import Any

from nats.js.client import KV_PRE_TEMPLATE, KV_STREAM_TEMPLATE

from bus.clock import Clock, ManualClock
from bus.config import BusConfig
from bus.deadletter import DeadLetter
from bus.provision import ensure_provisioned
from bus.runtime import Bus
from bus.stub.connection import Router, StubConnection
from bus.stub.consumers import PullConsumer
from bus.stub.jetstream import ACK, API, JetStreamServer
from bus.stub.streams import StoredMessage
from contracts import ContractError, Envelope, EventType, decode
from contracts.subjects import DLQ_STREAM, EVENTS_STREAM, TASKS_BUCKET

_FLOW_CONTROL = "$JS.FC."


class StubBroker:
    """An in-memory NATS server with the JetStream the bus uses, for tests that need no server.

    Agents run on it unchanged: :meth:`connect` returns a real :class:`~bus.runtime.Bus` whose
    connection is in memory, so the bus's publisher (PubAcks, duplicate ids), consumers (pull
    requests, ack after the handler, nak with back-off, dead letters), KV (revisions) and
    request/reply are the code that runs against a real server. What the broker models is the
    server's side: see the package docstring (bus/stub/__init__.py) for what it does not.

    Time: the broker's wall clock is ``clock`` (a :class:`~bus.clock.ManualClock` unless given
    another); buses from :meth:`connect` carry it, so agents' deadlines and the server's
    redelivery timers (``ack_wait``, nak delays), de-duplication window and consumer timestamps
    all move with :meth:`advance`. A pull request's expiry is the client's own timer and runs in
    real time.

    Typical use::

        async with StubBroker() as broker:
            bus = await broker.connect("devops")
            agent = DevOps(bus, settings)
            await agent.start()
            await client.publish(event)          # a second bus from broker.connect()
            await broker.run_until_idle()        # every consumer caught up, nothing in flight
            assert broker.events(EventType.STATUS_CHANGED, task_id)
    """

    def __init__(
        self,
        config: BusConfig | None = None,
        *,
        clock: Clock | None = None,
        max_payload: int = 1 << 20,
        provision: bool = True,
        tick_s: float = 0.005,
    ) -> None:
        self.config = config or BusConfig(nats_url="stub://memory")
        self.clock: Clock = clock or ManualClock()
        self.max_payload = max_payload
        self.router = Router()
        self.jetstream = JetStreamServer(self.clock.time, self._loop_time)
        self._provision = provision
        self._tick_s = tick_s
        self._ticker: asyncio.Task[None] | None = None
        self._connections: list[StubConnection] = []
        if isinstance(self.clock, ManualClock):
            self.clock.on_change.append(self._pump)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> StubBroker:
        """Start the timer loop and (unless ``provision=False``) create the streams and the
        task-state bucket with the bus's own provisioning code."""
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick(), name="stub-broker")
        if self._provision:
            await ensure_provisioned(self.connection("provisioner").jetstream(), self.config)
        return self

    async def close(self) -> None:
        """Close every connection still open and stop the timer loop."""
        for conn in self._connections:
            await conn.close()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None

    async def __aenter__(self) -> StubBroker:
        return await self.start()

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.close()

    def connection(self, name: str = "stub") -> StubConnection:
        """A new in-memory connection (what ``nats.connect`` returns for a real server)."""
        conn = StubConnection(self, name, inbox_prefix=self.config.inbox_prefix or "_INBOX")
        self._connections.append(conn)
        return conn

    async def connect(self, name: str = "stub", *, id_key: bytes | None = None) -> Bus:
        """A :class:`~bus.runtime.Bus` on a new connection to this broker, with its clock."""
        return Bus(self.connection(name), self.config, id_key=id_key, clock=self.clock)  # type: ignore[arg-type]

    # -- the server ----------------------------------------------------------------------

    def _loop_time(self) -> float:
        return asyncio.get_running_loop().time()

    def answers(self, subject: str) -> bool:
        """True when a request on ``subject`` has a responder (else: "no responders")."""
        js = self.jetstream
        return subject.startswith(API) or js.stream_for(subject) is not None or self.router.listening(subject)

    def receive(
        self, conn: StubConnection, subject: str, data: bytes, reply: str, headers: dict[str, str] | None
    ) -> None:
        """One message published by a connection: an ack, a JetStream API call, a message for a
        stream, or a plain message for subscribers."""
        js = self.jetstream
        if subject.startswith(ACK):
            js.acknowledge(subject, data)
            if reply:  # ack_sync waits for an answer
                self.router.deliver(reply, b"")
        elif subject.startswith(API):
            answer = js.api(conn, subject, data, reply)
            if answer is not None and reply:
                self.router.deliver(reply, answer[0], headers=answer[1])
        elif not subject.startswith(_FLOW_CONTROL):
            ack = js.publish(subject, data, headers)
            self.router.deliver(subject, data, reply if ack is None else "", headers)
            if ack is not None and reply:
                self.router.deliver(reply, json.dumps(ack).encode())
        self._pump()

    def _pump(self) -> None:
        for out in self.jetstream.deliveries():
            self.router.deliver(out.inbox, out.data, out.reply, out.headers, subject=out.subject)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._tick_s)
            self._pump()

    # -- driving a test ------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the broker's clock (a ManualClock) forward: deadlines pass, delayed redeliveries and
        ack_wait expiries fall due."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("advance() needs the broker's ManualClock")
        self.clock.advance(seconds)

    def _attended(self, consumer: PullConsumer) -> bool:
        """A consumer someone still pulls from: its creator is connected and (once it pulled) one of
        its pull inboxes is still subscribed."""
        if consumer.owner.is_closed:
            return False
        return not consumer.inboxes or any(self.router.listening(inbox) for inbox in consumer.inboxes)

    def busy(self) -> str | None:
        """Why the broker is not idle (None: idle): messages on their way to a callback, messages
        delivered and not acknowledged by a live connection, or messages a live consumer has still
        to get."""
        self._pump()
        reasons = [f"delivering on {s}" for s in self.router.busy]
        now = self.clock.time()
        for (stream, name), consumer in self.jetstream.consumers.items():
            unacked = sum(1 for d in consumer.pending.values() if not d.conn.is_closed)
            if unacked:
                reasons.append(f"{stream}/{name}: {unacked} unacknowledged")
            elif self._attended(consumer) and consumer.candidate(now) is not None:
                reasons.append(f"{stream}/{name}: messages to deliver")
        return "; ".join(reasons) or None

    def _next_timer(self) -> float | None:
        now = self.clock.time()
        times = [c.next_timer(now) for c in self.jetstream.consumers.values() if self._attended(c)]
        return min((t for t in times if t is not None), default=None)

    async def run_until_idle(self, timeout_s: float = 10.0, *, skip_delays: bool = True) -> None:
        """Wait until every consumer has caught up and nothing is in flight.

        With ``skip_delays`` (and the ManualClock) a redelivery scheduled for later (a nak's
        back-off, a deferral, an expired ack_wait) is not waited for: the clock jumps to it.
        Raises TimeoutError, saying what is still busy, after ``timeout_s`` of real time."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        quiet = 0
        while True:
            reason = self.busy()
            if reason is None:
                quiet += 1
                if quiet >= 3:  # idle across a few turns of the loop: no callback about to run
                    due = self._next_timer() if skip_delays and isinstance(self.clock, ManualClock) else None
                    if due is None:
                        return
                    self.advance(max(due - self.clock.time(), 0.0))
                    quiet = 0
            else:
                quiet = 0
            if loop.time() > deadline:
                raise TimeoutError(f"stub broker not idle after {timeout_s}s: {reason or 'timers pending'}")
            await asyncio.sleep(0 if quiet else 0.001)

    async def wait_for(self, condition: Callable[[], Any], timeout_s: float = 5.0) -> Any:
        """Wait (real time) until ``condition()`` returns something true, and return it; for what
        happens outside message handling, like a sweeper's deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not (result := condition()):
            if loop.time() > deadline:
                raise TimeoutError(f"condition not met within {timeout_s}s")
            await asyncio.sleep(0.002)
        return result

    # -- what the server holds -------------------------------------------------------------

    def messages(self, stream: str = EVENTS_STREAM) -> list[StoredMessage]:
        """The messages a stream holds, in order."""
        held = self.jetstream.streams[stream].messages
        return [held[seq] for seq in sorted(held)]

    def events(self, event_type: EventType | str | None = None, task_id: str | None = None) -> list[Envelope]:
        """The valid events stored in the events stream, optionally of one type and task."""
        found = []
        for message in self.messages(EVENTS_STREAM):
            try:
                event = decode(message.data)
            except ContractError:
                continue
            if event_type is not None and str(event.type) != str(event_type):
                continue
            if task_id is not None and event.task_id != task_id:
                continue
            found.append(event)
        return found

    def dead_letters(self, consumer: str | None = None) -> list[DeadLetter]:
        """The dead letters stored, optionally of one consumer."""
        letters = [DeadLetter.model_validate_json(m.data) for m in self.messages(DLQ_STREAM)]
        return [d for d in letters if consumer is None or d.consumer == consumer]

    def kv(self, bucket: str = TASKS_BUCKET) -> dict[str, bytes]:
        """A bucket's live keys and their values."""
        stream = self.jetstream.streams[KV_STREAM_TEMPLATE.format(bucket=bucket)]
        prefix = KV_PRE_TEMPLATE.format(bucket=bucket)
        return {key: stream.get(last_by=prefix + key).data for key in self.jetstream.kv_keys(bucket)}

    def consumer(self, name: str, stream: str = EVENTS_STREAM) -> PullConsumer:
        """A consumer's state on the server (deliveries, pending, redeliveries)."""
        return self.jetstream.consumers[(stream, name)]
