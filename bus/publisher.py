"""Publishing events: JetStream publish with Nats-Msg-Id = event id, PubAck awaited, retried."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from functools import lru_cache

import structlog
from nats.errors import (
    ConnectionClosedError,
    MaxPayloadError,
    NoRespondersError,
    OutboundBufferLimitError,
    TimeoutError,
)
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import APIError, NoStreamResponseError

from bus.config import BusConfig
from bus.errors import PublishFailed, StoreFull
from bus.tracing import TRACEPARENT, traceparent
from contracts import ContractError, Envelope, encode
from contracts.subjects import EVENTS_STREAM, event_subject

log = structlog.get_logger("bus.publisher")

MSG_ID = "Nats-Msg-Id"
# Conditions worth another try with the same id: the server may have stored the first one,
# and the duplicate window makes the retry safe.
_TRANSIENT = (
    TimeoutError,
    asyncio.TimeoutError,
    NoRespondersError,
    NoStreamResponseError,
    ConnectionClosedError,
    OutboundBufferLimitError,
)
# JetStream error codes for "no space": stream max_bytes with discard new, server max_store.
_NO_SPACE = frozenset({10077, 10023})


# Building the subject from the table costs an enum lookup per event; events of a task repeat it.
_subject = lru_cache(maxsize=8192)(event_subject)


def event_headers(event: Envelope) -> dict[str, str]:
    """The dedupe id and the trace context. The event type is in the subject and the body; every
    header costs each consumer a parse per message, so there is no header for it."""
    return {MSG_ID: event.id, TRACEPARENT: traceparent(event.task_id, event.id)}


class Publisher:
    """Publishes events and returns only once the server stored them.

    Parameters:
      js: the JetStream context.
      config: ``publish_timeout_s`` (PubAck wait per attempt, default 5 s) and
        ``publish_attempts`` (default 5) with exponential back-off between attempts.

    ``on_published`` holds callables run with each event once it is stored (bus/metrics.py
    counts published events there); they must be quick and must not raise.
    """

    def __init__(self, js: JetStreamContext, config: BusConfig) -> None:
        self._js = js
        self._timeout = config.publish_timeout_s
        self._attempts = config.publish_attempts
        self.on_published: list[Callable[[Envelope], None]] = []

    async def publish(self, event: Envelope) -> PubAck:
        """Publish one event; raises :class:`PublishFailed` when it could not be stored."""
        try:
            data = encode(event)
        except ContractError as exc:
            raise PublishFailed(exc.reason) from None
        ack = await self.publish_raw(_subject(event.type, event.task_id), data, event_headers(event))
        for hook in self.on_published:
            hook(event)
        return ack

    async def publish_raw(self, subject: str, data: bytes, headers: dict[str, str]) -> PubAck:
        delay = 0.1
        for attempt in range(1, self._attempts + 1):
            try:
                ack = await self._js.publish(
                    subject, data, timeout=self._timeout, stream=_stream_for(subject), headers=headers
                )
                if ack.duplicate:
                    log.debug("publish.duplicate", subject=subject, msg_id=headers.get(MSG_ID))
                return ack
            except _TRANSIENT as exc:
                if attempt == self._attempts:
                    raise PublishFailed(
                        f"no PubAck for {subject} after {attempt} attempts: {type(exc).__name__}"
                    ) from None
                log.warning("publish.retry", subject=subject, attempt=attempt, error=type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except MaxPayloadError:
                # nats-py refuses before sending: over the server's max_payload, for good.
                raise PublishFailed(f"{subject}: {len(data)} bytes, over the server's max_payload") from None
            except APIError as exc:
                reason = f"server refused {subject}: {exc.description or exc}"
                if exc.err_code in _NO_SPACE:
                    # Not stored, and said so: the caller holds its work until space returns.
                    raise StoreFull(f"{reason} (storage full)") from None
                if exc.code == 503 and attempt < self._attempts:
                    # JetStream still recovering after a restart: as transient as a timeout.
                    log.warning("publish.retry", subject=subject, attempt=attempt, error=reason)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
                    continue
                # Refused for good (message too large, no such stream): not worth retrying.
                raise PublishFailed(reason) from None
        raise AssertionError("unreachable")

    async def publish_many(self, events: Iterable[Envelope]) -> list[PubAck]:
        """Publish several events concurrently (each with its own PubAck); all or an error."""
        return list(await asyncio.gather(*(self.publish(e) for e in events)))


def _stream_for(subject: str) -> str | None:
    return EVENTS_STREAM if subject.startswith("orchestra.evt.") else None
