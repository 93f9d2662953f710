"""Core NATS in memory: subscriptions (with queue groups), publish, request/reply, and a connection
object with the part of nats-py's client the bus uses, so the bus's own code runs on it unchanged.

Each subscription hands its messages to its callback one at a time, in order, as nats-py does.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import nats.errors
import structlog
from nats.aio.client import ServerVersion
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, MaxPayloadError, NoRespondersError

from bus.stub.subjects import matches

if TYPE_CHECKING:
    from bus.stub.broker import StubBroker

log = structlog.get_logger("bus.stub")

Callback = Callable[[Msg], Awaitable[None]]
_ids = itertools.count(1)


class Subscription:
    """One subscription: its messages wait in a queue and go to the callback one after another."""

    def __init__(self, router: Router, conn: StubConnection, subject: str, queue: str, cb: Callback) -> None:
        self._router = router
        self.conn = conn
        self.subject = subject
        self.queue = queue
        self._cb = cb
        self._inbox: asyncio.Queue[Msg] = asyncio.Queue()
        self.running = False
        self.closed = False
        self._task = asyncio.create_task(self._run(), name=f"stub-sub:{subject}")

    @property
    def busy(self) -> bool:
        return self.running or not self._inbox.empty()

    def put(self, msg: Msg) -> None:
        if not self.closed:
            self._inbox.put_nowait(msg)

    async def _run(self) -> None:
        while True:
            msg = await self._inbox.get()
            self.running = True
            try:
                await self._cb(msg)
            except Exception as exc:  # nats-py reports a callback's error and goes on
                log.warning("stub.callback_failed", subject=msg.subject, error=f"{type(exc).__name__}: {exc}")
            finally:
                self.running = False
                self._inbox.task_done()

    async def unsubscribe(self, limit: int = 0) -> None:
        self.closed = True
        self._router.remove(self)
        self._task.cancel()

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Stop receiving, let queued messages reach the callback, then unsubscribe."""
        self._router.remove(self)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._inbox.join(), timeout_s)
        await self.unsubscribe()


class Router:
    """Every subscription of every connection to one broker, and who gets a message."""

    def __init__(self) -> None:
        self.subscriptions: list[Subscription] = []
        self._turn = itertools.count()

    def add(self, subscription: Subscription) -> None:
        self.subscriptions.append(subscription)

    def remove(self, subscription: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self.subscriptions.remove(subscription)

    def interested(self, subject: str) -> list[Subscription]:
        """The subscriptions that get a message on ``subject``: every plain one, one per queue group."""
        plain, groups = [], {}
        for sub in self.subscriptions:
            if matches(sub.subject, subject):
                if sub.queue:
                    groups.setdefault(sub.queue, []).append(sub)
                else:
                    plain.append(sub)
        turn = next(self._turn)
        return plain + [members[turn % len(members)] for members in groups.values()]

    def deliver(
        self,
        to: str,
        data: bytes,
        reply: str = "",
        headers: dict[str, str] | None = None,
        subject: str | None = None,
    ) -> int:
        """Hand a message published on ``to`` to whoever is interested (``subject``: the subject it
        carries, when it differs, as for a JetStream message delivered to a pull inbox); returns
        how many got it."""
        targets = self.interested(to)
        for sub in targets:
            copy = dict(headers) if headers else None
            sub.put(Msg(sub.conn, subject=subject or to, reply=reply, data=data, headers=copy))  # type: ignore[arg-type]
        return len(targets)

    def listening(self, subject: str) -> bool:
        return any(matches(s.subject, subject) for s in self.subscriptions)

    @property
    def busy(self) -> list[str]:
        return [s.subject for s in self.subscriptions if s.busy]


class StubConnection:
    """The part of ``nats.aio.client.Client`` that the bus uses, connected to a :class:`StubBroker`.

    ``jetstream()`` returns nats-py's own JetStream context (its requests are answered by the
    broker's JetStream API), so publishing, consuming, KV and stream look-ups run the real client
    code paths."""

    def __init__(self, broker: StubBroker, name: str = "stub", inbox_prefix: str = "_INBOX") -> None:
        self.broker = broker
        self.name = name
        self._inbox_prefix = inbox_prefix
        self._closed = False
        self.options: dict[str, Any] = {"name": name}
        self._subs: list[Subscription] = []

    # -- state -------------------------------------------------------------------------

    @property
    def is_connected(self) -> bool:
        return not self._closed

    @property
    def is_closed(self) -> bool:
        return self._closed

    @property
    def is_draining(self) -> bool:
        return False

    @property
    def max_payload(self) -> int:
        return self.broker.max_payload

    @property
    def connected_server_version(self) -> ServerVersion:
        return ServerVersion("2.10.0")

    def new_inbox(self) -> str:
        return f"{self._inbox_prefix}.{self.name}.{next(_ids)}"

    def jetstream(self, **options: Any) -> Any:
        from bus.stub.jetstream import StubJetStream

        return StubJetStream(self, **options)

    # -- core NATS ---------------------------------------------------------------------

    def _check(self, subject: str, payload: bytes) -> None:
        if self._closed:
            raise ConnectionClosedError
        if len(payload) > self.max_payload:
            raise MaxPayloadError
        if not subject:
            raise ValueError("empty subject")

    async def subscribe(
        self, subject: str, queue: str = "", cb: Callback | None = None, **_: Any
    ) -> Subscription:
        if self._closed:
            raise ConnectionClosedError
        if cb is None:
            raise NotImplementedError("the stub connection delivers to callbacks only")
        sub = Subscription(self.broker.router, self, subject, queue, cb)
        self.broker.router.add(sub)
        self._subs.append(sub)
        return sub

    async def publish(
        self, subject: str, payload: bytes = b"", reply: str = "", headers: dict[str, str] | None = None
    ) -> None:
        self._check(subject, payload)
        self.broker.receive(self, subject, payload, reply, headers)

    async def request(
        self,
        subject: str,
        payload: bytes = b"",
        timeout: float = 0.5,  # noqa: ASYNC109 (nats-py's signature)
        headers: dict[str, str] | None = None,
        **_: Any,
    ) -> Msg:
        self._check(subject, payload)
        if not self.broker.answers(subject):
            raise NoRespondersError
        answer: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()

        async def on_reply(msg: Msg) -> None:
            if not answer.done():
                answer.set_result(msg)

        inbox = self.new_inbox()
        sub = await self.subscribe(inbox, cb=on_reply)
        try:
            self.broker.receive(self, subject, payload, inbox, headers)
            msg = await asyncio.wait_for(answer, timeout)
        except TimeoutError:
            raise nats.errors.TimeoutError from None
        finally:
            await sub.unsubscribe()
        if not msg.data and msg.headers and msg.headers.get("Status") == "503":
            raise NoRespondersError
        return msg

    async def flush(self, timeout: float = 2.0) -> None:  # noqa: ASYNC109 (nats-py's signature)
        return None

    async def drain(self) -> None:
        for sub in list(self._subs):
            await sub.drain()
        await self.close()

    async def close(self) -> None:
        self._closed = True
        for sub in self._subs:
            await sub.unsubscribe()
        self._subs.clear()
