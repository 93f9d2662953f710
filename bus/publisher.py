"""Publishing events: JetStream publish with Nats-Msg-Id = event id, PubAck awaited, retried."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from functools import lru_cache
from typing import Literal

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
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError

from bus.config import BusConfig
from bus.errors import IdTaken, PublishFailed, StoreFull
from bus.tracing import TRACEPARENT, traceparent
from contracts import ContractError, Envelope, decode, encode
from contracts.envelope import same_event
from contracts.ids import derived_id
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
# Fresh ids tried for an event whose id someone else took (each derived, so a redelivery retries
# the same ones and finds its own earlier copy); past that, publishing fails loudly.
_REISSUES = 4


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

    A duplicate PubAck only says that *something* was stored under the event's id. The publisher
    reads what (by the ack's sequence) and compares it (:func:`contracts.envelope.same_event`): our
    own earlier copy (a retry, a redelivered handler) is fine; anything else means someone took the
    id first. Then the event is published again under a fresh id derived from it with ``id_key``
    (the deployment's id key, see agents/idkey.py), so the work goes on and the returned PubAck is
    always the one of *our* event.
    """

    def __init__(self, js: JetStreamContext, config: BusConfig, *, id_key: bytes | None = None) -> None:
        self._js = js
        self._timeout = config.publish_timeout_s
        self._attempts = config.publish_attempts
        self._id_key = id_key
        self.on_published: list[Callable[[Envelope], None]] = []

    async def publish(self, event: Envelope, *, taken: Literal["reissue", "raise"] = "reissue") -> PubAck:
        """Publish one event; raises :class:`PublishFailed` when it could not be stored.

        ``taken`` says what to do when another event holds this event's id: publish ours under a
        fresh id ("reissue", for follow-up events), or raise :class:`IdTaken` ("raise": a client
        whose task id is someone else's)."""
        original = event
        for reissue in range(_REISSUES + 1):
            if reissue:
                event = original.model_copy(
                    update={"id": derived_id(original.id, f"reissue:{reissue}", self._id_key)}
                )
            try:
                data = encode(event)
            except ContractError as exc:
                raise PublishFailed(exc.reason) from None
            ack = await self.publish_raw(_subject(event.type, event.task_id), data, event_headers(event))
            if not ack.duplicate or await self._holds(ack, event):
                for hook in self.on_published:
                    hook(event)
                return ack
            if taken == "raise":
                raise IdTaken(f"id {event.id} is taken by another event (stream sequence {ack.seq})")
            log.warning(
                "publish.id_taken",
                event_id=event.id,
                event_type=str(event.type),
                task_id=event.task_id,
                stream_seq=ack.seq,
                reissue=reissue + 1,
            )
        raise PublishFailed(f"{original.type} {original.id}: its id and {_REISSUES} fresh ones are taken")

    async def _holds(self, ack: PubAck, event: Envelope) -> bool:
        """True when the message stored at ``ack.seq`` is ``event`` (an earlier copy of it)."""
        try:
            stored = await self._js.get_msg(ack.stream or EVENTS_STREAM, ack.seq)
        except Exception as exc:  # cannot compare: never report someone else's message as ours
            raise PublishFailed(
                f"duplicate PubAck for {event.id}: stream sequence {ack.seq} unreadable "
                f"({type(exc).__name__}: {exc})"
            ) from None
        if stored.subject != _subject(event.type, event.task_id):
            return False
        try:
            return same_event(decode(stored.data or b""), event)
        except ContractError:
            return False

    async def publish_raw(self, subject: str, data: bytes, headers: dict[str, str]) -> PubAck:
        """Publish bytes and return the PubAck, retrying transient failures with the same headers.

        The retry budget is time, not a count: ``publish_attempts`` x ``publish_timeout_s``. A
        PubAck timeout spends a whole timeout, while "no responders" answers at once: during a
        cluster's leader election (a node lost, a restart) the stream has no leader for a few
        seconds, and a count of quick retries would give up long before it has one again. A stream
        that does not exist at all fails at once, saying so."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout * self._attempts
        delay = 0.1
        for attempt in itertools.count(1):
            try:
                ack = await self._js.publish(
                    subject, data, timeout=self._timeout, stream=_stream_for(subject), headers=headers
                )
                if ack.duplicate:
                    log.debug("publish.duplicate", subject=subject, msg_id=headers.get(MSG_ID))
                return ack
            except _TRANSIENT as exc:
                error = type(exc).__name__
                if isinstance(exc, NoRespondersError | NoStreamResponseError):
                    await self._stream_exists(subject)
            except MaxPayloadError:
                # nats-py refuses before sending: over the server's max_payload, for good.
                raise PublishFailed(f"{subject}: {len(data)} bytes, over the server's max_payload") from None
            except APIError as exc:
                reason = f"server refused {subject}: {exc.description or exc}"
                if exc.err_code in _NO_SPACE:
                    # Not stored, and said so: the caller holds its work until space returns.
                    raise StoreFull(f"{reason} (storage full)") from None
                if exc.code != 503:
                    # Refused for good (message too large, no such stream): not worth retrying.
                    raise PublishFailed(reason) from None
                error = reason  # JetStream still recovering after a restart: as transient as a timeout
            if loop.time() + delay > deadline:
                raise PublishFailed(f"no PubAck for {subject} after {attempt} attempts: {error}") from None
            log.warning("publish.retry", subject=subject, attempt=attempt, error=error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")

    async def _stream_exists(self, subject: str) -> None:
        """After "no responders": raise PublishFailed when the stream is certainly missing (never
        provisioned, or deleted); an election in progress or an unreachable server is transient."""
        stream = _stream_for(subject)
        if stream is None:
            return
        try:
            await self._js.stream_info(stream)
        except NotFoundError:
            raise PublishFailed(
                f"no stream {stream} for {subject}: it is not provisioned (`orchestra provision`)"
            ) from None
        except Exception:
            return  # no leader yet, a timeout, a lost connection: the publish is retried


def _stream_for(subject: str) -> str | None:
    return EVENTS_STREAM if subject.startswith("orchestra.evt.") else None
