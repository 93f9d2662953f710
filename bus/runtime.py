"""One connected bus: connection, JetStream, provisioning, publisher and consumers, drained on stop."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from bus.clock import SYSTEM_CLOCK, Clock
from bus.config import BusConfig
from bus.connection import connect
from bus.consumer import BatchHandler, Consumer, Handler
from bus.errors import RequestFailed
from bus.observer import NOOP, ConsumerObserver
from bus.provision import AGENT_STREAMS, bind_task_bucket, ensure_provisioned, wait_for_streams
from bus.publisher import Publisher
from contracts import ContractError, Envelope, decode
from contracts.subjects import EVENTS_STREAM

log = structlog.get_logger("bus.runtime")

Responder = Callable[[dict[str, Any]], Awaitable[Any]]
# What serve() wraps around a result ({"ok": true, "result": ...}), with room to spare.
_REPLY_OVERHEAD = 1024


class Bus:
    """The transport an agent process (or a client) works through. Knows nothing of agents."""

    def __init__(
        self, nc: NATS, config: BusConfig, *, id_key: bytes | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.nc = nc
        # The wall clock agents read deadlines and ages from (a test's stub broker drives its own).
        self.clock = clock
        self.js: JetStreamContext = nc.jetstream(timeout=config.publish_timeout_s)
        self.config = config
        self.publisher = Publisher(self.js, config, id_key=id_key)
        self.consumers: list[Consumer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._kv: KeyValue | None = None

    @classmethod
    async def connect(
        cls,
        config: BusConfig,
        *,
        name: str | None = None,
        wait_s: float = 0.0,
        provision: bool = False,
        id_key: bytes | None = None,
    ) -> Bus:
        """Connect. With ``provision`` also create or update the streams and the task-state bucket
        (idempotent; only the provisioning identity may, see bus/provision.py). Agents and clients
        bind to what exists: :meth:`wait_provisioned`. ``id_key`` keys the fresh ids the publisher
        derives for an event whose id someone else took."""
        nc = await connect(config, name=name, wait_s=wait_s)
        bus = cls(nc, config, id_key=id_key)
        if provision:
            try:
                await ensure_provisioned(bus.js, config)
            except BaseException:
                await nc.close()
                raise
        return bus

    async def wait_provisioned(
        self, streams: tuple[str, ...] = AGENT_STREAMS, *, wait_s: float | None = None
    ) -> None:
        """Wait until the streams an agent needs exist (logging what is missing); never create them."""
        await wait_for_streams(self.js, streams, wait_s=wait_s)

    async def tasks_kv(self) -> KeyValue:
        """The task-state bucket (bound once it exists; provisioning creates it)."""
        if self._kv is None:
            self._kv = await bind_task_bucket(self.js)
        return self._kv

    async def publish(self, event: Envelope) -> Any:
        return await self.publisher.publish(event)

    async def first_event(self, subject: str, *, scan: int = 8) -> Envelope | None:
        """The first valid event stored on ``subject`` (one exact subject), or None.

        Messages there that are no event, or another subject's event, are skipped (up to ``scan``):
        garbage published first must not stand in for the real first event."""
        seq = 1
        for _ in range(scan):
            try:
                msg = await self.js.get_msg(EVENTS_STREAM, seq, subject=subject, next=True)
            except NotFoundError:
                return None
            try:
                event = decode(msg.data or b"")
            except ContractError:
                event = None
            if event is not None and event.subject() == subject:
                return event
            seq = int(msg.seq or seq) + 1
        return None

    async def consume(
        self,
        *,
        durable: str,
        filter_subject: str,
        handler: Handler | None = None,
        batch_handler: BatchHandler | None = None,
        concurrency: int = 8,
        observer: ConsumerObserver = NOOP,
    ) -> Consumer:
        """Start a durable consumer's fetch loop in the background."""
        consumer = Consumer(
            self.js,
            self.publisher,
            self.config,
            durable=durable,
            filter_subject=filter_subject,
            handler=handler,
            batch_handler=batch_handler,
            concurrency=concurrency,
            observer=observer,
            nc=self.nc,
        )
        await consumer.start()
        self.consumers.append(consumer)
        self._tasks.append(asyncio.create_task(consumer.run(), name=f"consume:{durable}"))
        return consumer

    async def serve(self, subject: str, responder: Responder, *, queue: str = "orchestra") -> None:
        """Answer JSON requests on ``subject`` (core NATS request/reply, queue group shared by replicas)."""

        async def on_request(msg: Msg) -> None:
            try:
                body = json.loads(msg.data or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("request body must be a JSON object")
                result = await responder(body)
                reply: dict[str, Any] = {"ok": True, "result": result}
            except Exception as exc:  # a bad request gets an error reply, never a dead responder
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            if msg.reply:
                data = json.dumps(reply, default=str).encode()
                if len(data) > self.nc.max_payload:
                    # The server would refuse it and the caller would only see a timeout: say why.
                    data = json.dumps(
                        {
                            "ok": False,
                            "error": f"the answer on {subject} takes {len(data)} bytes, over the server's "
                            f"max_payload ({self.nc.max_payload}): ask for less",
                        }
                    ).encode()
                with contextlib.suppress(Exception):
                    await msg.respond(data)

        await self.nc.subscribe(subject, queue=queue, cb=on_request)

    def reply_budget(self) -> int:
        """Bytes a responder's ``result`` may take so that the reply fits the server's max_payload."""
        return self.nc.max_payload - _REPLY_OVERHEAD

    async def request(self, subject: str, body: dict[str, Any], *, timeout_s: float = 5.0) -> Any:
        """Send a JSON request and return the ``result`` of the reply; raises RequestFailed."""
        try:
            msg = await self.nc.request(subject, json.dumps(body).encode(), timeout=timeout_s)
        except Exception as exc:
            raise RequestFailed(f"no answer on {subject}: {type(exc).__name__}") from None
        reply = json.loads(msg.data)
        if not reply.get("ok"):
            raise RequestFailed(reply.get("error", "request failed"))
        return reply.get("result")

    async def close(self, timeout_s: float = 30.0) -> None:
        """Stop consumers (in-flight work finishes and is acked), then drain the connection."""
        await asyncio.gather(*(consumer.stop(timeout_s) for consumer in self.consumers))
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        if not self.nc.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.nc.drain(), timeout_s)
            if not self.nc.is_closed:
                with contextlib.suppress(Exception):
                    await self.nc.close()
