"""JetStream in memory: the streams and consumers of a stub broker and the ``$JS.API`` subset the
bus calls, answered in the server's JSON so nats-py's own JetStream client runs on top of it.

Modelled API: STREAM.INFO / CREATE / UPDATE / NAMES / MSG.GET, DIRECT.GET, CONSUMER.CREATE (named
or durable, with a filter) / INFO / DELETE / MSG.NEXT (pull), publishing to a stream subject (a
PubAck), acks on ``$JS.ACK.>``. Anything else is answered with an error that says the stub does not
model it. A KV bucket is a stream, as on the server; only listing its keys is served directly
(nats-py lists keys through a push consumer, which the stub does not model).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nats.js.api import ConsumerConfig, StreamConfig
from nats.js.client import KV_PRE_TEMPLATE, KV_STREAM_TEMPLATE, JetStreamContext
from nats.js.errors import BucketNotFoundError, NoKeysError, NotFoundError
from nats.js.kv import KV_DEL, KV_OP, KV_PURGE, KeyValue

from bus.stub.consumers import Outgoing, PullConsumer, PullRequest, status
from bus.stub.streams import ApiError, StoredMessage, Stream, iso, stream_not_found, with_defaults

if TYPE_CHECKING:
    from bus.stub.connection import StubConnection

API = "$JS.API."
ACK = "$JS.ACK."
# A reply: JSON for the API calls, or a message with headers (DIRECT.GET).
Reply = tuple[bytes, dict[str, str] | None]


def _json(body: dict[str, Any]) -> Reply:
    return json.dumps(body).encode(), None


def _encode_headers(headers: dict[str, str] | None) -> str | None:
    if not headers:
        return None
    text = "NATS/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return base64.b64encode(text.encode()).decode()


class JetStreamServer:
    """Streams and consumers, and the API calls on them. ``now`` is the broker's wall clock,
    ``loop_time`` the event loop's (pull request expiry, as the client measures it)."""

    def __init__(self, now: Callable[[], float], loop_time: Callable[[], float]) -> None:
        self.now = now
        self.loop_time = loop_time
        self.streams: dict[str, Stream] = {}
        self.consumers: dict[tuple[str, str], PullConsumer] = {}

    # -- routing -----------------------------------------------------------------------

    def stream_for(self, subject: str) -> Stream | None:
        return next((s for s in self.streams.values() if s.holds(subject)), None)

    def publish(self, subject: str, data: bytes, headers: dict[str, str] | None) -> dict[str, Any] | None:
        """Store a message published on a stream subject; the PubAck (or error) body, or None when
        no stream holds the subject."""
        stream = self.stream_for(subject)
        if stream is None:
            return None
        try:
            return stream.store(subject, data, headers, self.now())
        except ApiError as exc:
            return exc.response()

    def acknowledge(self, subject: str, payload: bytes) -> None:
        """``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>``."""
        tokens = subject.split(".")
        if len(tokens) != 9:
            return
        consumer = self.consumers.get((tokens[2], tokens[3]))
        if consumer is not None:
            consumer.acknowledge(int(tokens[5]), payload, self.now())

    def deliveries(self) -> list[Outgoing]:
        """Expire pull requests and ack deadlines, then fill the pull requests waiting."""
        out: list[Outgoing] = []
        for consumer in self.consumers.values():
            out += consumer.expire(self.loop_time(), self.now())
            out += consumer.deliver(self.now())
        return out

    # -- the API -----------------------------------------------------------------------

    def api(self, conn: StubConnection, subject: str, data: bytes, reply: str) -> Reply | None:
        """Answer one ``$JS.API`` request (None: a pull request, answered by deliveries)."""
        verb = subject[len(API) :]
        try:
            body = json.loads(data) if data.strip() else {}
        except ValueError:
            return _json(ApiError(400, 10025, "bad request: not JSON").response())
        try:
            for prefix, handler in self._handlers():
                if verb.startswith(prefix):
                    return handler(conn, verb[len(prefix) :], body, reply)
            raise ApiError(400, 10000, f"the stub broker does not model $JS.API.{verb}")
        except ApiError as exc:
            if verb.startswith("DIRECT.GET."):
                return b"", {"Status": str(exc.code), "Description": exc.description}
            return _json(exc.response())

    def _handlers(
        self,
    ) -> list[tuple[str, Callable[[StubConnection, str, dict[str, Any], str], Reply | None]]]:
        return [
            ("STREAM.INFO.", self._stream_info),
            ("STREAM.CREATE.", self._stream_create),
            ("STREAM.UPDATE.", self._stream_update),
            ("STREAM.NAMES", self._stream_names),
            ("STREAM.MSG.GET.", self._msg_get),
            ("DIRECT.GET.", self._direct_get),
            ("CONSUMER.DURABLE.CREATE.", self._consumer_create),
            ("CONSUMER.CREATE.", self._consumer_create),
            ("CONSUMER.INFO.", self._consumer_info),
            ("CONSUMER.DELETE.", self._consumer_delete),
            ("CONSUMER.MSG.NEXT.", self._next),
        ]

    def _stream(self, name: str) -> Stream:
        stream = self.streams.get(name)
        if stream is None:
            raise stream_not_found()
        return stream

    def _stream_info(self, conn: StubConnection, name: str, body: dict[str, Any], reply: str) -> Reply:
        return _json(self._stream(name).info())

    def _stream_create(self, conn: StubConnection, name: str, body: dict[str, Any], reply: str) -> Reply:
        config = with_defaults(StreamConfig.from_response(dict(body)))
        existing = self.streams.get(name)
        if existing is not None:
            if existing.config.as_dict() != config.as_dict():
                raise ApiError(400, 10058, "stream name already in use with a different configuration")
            return _json(existing.info())
        self.streams[name] = Stream(config, self.now())
        return _json({**self.streams[name].info(), "did_create": True})

    def _stream_update(self, conn: StubConnection, name: str, body: dict[str, Any], reply: str) -> Reply:
        stream = self._stream(name)
        stream.config = with_defaults(StreamConfig.from_response(dict(body)))
        return _json(stream.info())

    def _stream_names(self, conn: StubConnection, rest: str, body: dict[str, Any], reply: str) -> Reply:
        names = sorted(self.streams)
        return _json({"streams": names, "total": len(names), "offset": 0, "limit": 1024})

    def _get(self, stream: Stream, body: dict[str, Any]) -> StoredMessage:
        return stream.get(
            seq=body.get("seq"), last_by=body.get("last_by_subj"), next_by=body.get("next_by_subj")
        )

    def _msg_get(self, conn: StubConnection, name: str, body: dict[str, Any], reply: str) -> Reply:
        m = self._get(self._stream(name), body)
        message = {
            "subject": m.subject,
            "seq": m.seq,
            "data": base64.b64encode(m.data).decode(),
            "time": iso(m.time),
        }
        if (hdrs := _encode_headers(m.headers)) is not None:
            message["hdrs"] = hdrs
        return _json({"message": message})

    def _direct_get(self, conn: StubConnection, rest: str, body: dict[str, Any], reply: str) -> Reply:
        name, _, subject = rest.partition(".")
        stream = self._stream(name)
        m = stream.get(last_by=subject) if subject else self._get(stream, body)
        headers = {**(m.headers or {}), "Nats-Stream": stream.name, "Nats-Subject": m.subject}
        headers |= {"Nats-Sequence": str(m.seq), "Nats-Time-Stamp": iso(m.time)}
        return m.data, headers

    def _consumer_create(self, conn: StubConnection, rest: str, body: dict[str, Any], reply: str) -> Reply:
        stream_name, _, name = rest.partition(".")
        name = name.partition(".")[0]  # CONSUMER.CREATE.<stream>.<name>.<filter>
        stream = self._stream(stream_name)
        config = ConsumerConfig.from_response(dict(body.get("config") or {}))
        name = name or config.name or config.durable_name or f"ephemeral{len(self.consumers) + 1}"
        config = config.evolve(name=name)
        existing = self.consumers.get((stream.name, name))
        if existing is None:
            existing = PullConsumer(stream, config, self.now(), conn)
            self.consumers[(stream.name, name)] = existing
        else:
            existing.update(config)
            existing.owner = conn
        return _json(existing.info())

    def _consumer(self, rest: str) -> PullConsumer:
        stream_name, _, name = rest.partition(".")
        self._stream(stream_name)
        consumer = self.consumers.get((stream_name, name))
        if consumer is None:
            raise ApiError(404, 10014, "consumer not found")
        return consumer

    def _consumer_info(self, conn: StubConnection, rest: str, body: dict[str, Any], reply: str) -> Reply:
        return _json(self._consumer(rest).info())

    def _consumer_delete(self, conn: StubConnection, rest: str, body: dict[str, Any], reply: str) -> Reply:
        consumer = self._consumer(rest)
        del self.consumers[(consumer.stream.name, consumer.name)]
        return _json({"success": True})

    def _next(self, conn: StubConnection, rest: str, body: dict[str, Any], reply: str) -> Reply | None:
        consumer = self._consumer(rest)
        expires = body.get("expires") or 0
        request = PullRequest(reply, conn, int(body.get("batch") or 1), None)
        if expires:
            request.expires_at = self.loop_time() + expires / 1e9
        if body.get("no_wait") and consumer.candidate(self.now()) is None:
            out = status(request, "404", "No Messages")
            return out.data, out.headers
        max_waiting = consumer.config.max_waiting
        if max_waiting and len(consumer.waiting) >= max_waiting:
            out = status(request, "409", "Exceeded MaxWaiting")
            return out.data, out.headers
        consumer.pull(request)
        return None

    # -- inspection ----------------------------------------------------------------------

    def kv_keys(self, bucket: str) -> list[str]:
        """The keys of a bucket that hold a value (deleted and purged ones left out)."""
        stream = self._stream(KV_STREAM_TEMPLATE.format(bucket=bucket))
        prefix = KV_PRE_TEMPLATE.format(bucket=bucket)
        last: dict[str, StoredMessage] = {}
        for seq in sorted(stream.messages):
            message = stream.messages[seq]
            last[message.subject] = message
        return [
            subject[len(prefix) :]
            for subject, m in last.items()
            if (m.headers or {}).get(KV_OP) not in (KV_DEL, KV_PURGE)
        ]


class StubJetStream(JetStreamContext):
    """nats-py's JetStream context on a stub connection; only :meth:`key_value` is the stub's own."""

    async def key_value(self, bucket: str) -> KeyValue:
        try:
            info = await self.stream_info(KV_STREAM_TEMPLATE.format(bucket=bucket))
        except NotFoundError:
            raise BucketNotFoundError from None
        return StubKeyValue(
            name=bucket,
            stream=KV_STREAM_TEMPLATE.format(bucket=bucket),
            pre=KV_PRE_TEMPLATE.format(bucket=bucket),
            js=self,
            direct=bool(info.config.allow_direct),
        )


class StubKeyValue(KeyValue):
    """nats-py's KeyValue (get, put, create, update with revisions, delete: all through the
    stream), except listing keys, which the stub answers from the stream directly."""

    async def keys(self, filters: list[str] | None = None, **kwargs: Any) -> list[str]:
        broker = self._js._nc.broker  # type: ignore[attr-defined]
        keys = [
            k for k in broker.jetstream.kv_keys(self._name) if not filters or any(f in k for f in filters)
        ]
        if not keys:
            raise NoKeysError
        return keys

    async def watch(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("the stub broker does not model KV watchers (push consumers)")
