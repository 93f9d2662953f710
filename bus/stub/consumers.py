"""A durable pull consumer in memory, with the server's delivery rules: pull requests (batch,
expiry), explicit acks (``+ACK``, ``-NAK`` with a delay, ``+WPI``, ``+TERM``), redelivery after
``ack_wait``, ``max_deliver``, ``max_ack_pending``, and the consumer state that ``CONSUMER.INFO``
reports (delivered and ack-floor sequences with their last activity, pending counts)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nats.js.api import ConsumerConfig

from bus.stub.streams import ApiError, StoredMessage, Stream, iso
from bus.stub.subjects import matches

if TYPE_CHECKING:
    from bus.stub.connection import StubConnection


@dataclass
class Delivery:
    """A message delivered and not acknowledged yet."""

    deliveries: int
    ack_by: float  # broker clock
    conn: StubConnection


@dataclass
class PullRequest:
    inbox: str
    conn: StubConnection
    left: int
    expires_at: float | None  # event-loop time; None: until filled


@dataclass(frozen=True)
class Outgoing:
    """What the consumer hands to an inbox: a message (with its ack subject) or a status."""

    inbox: str
    conn: StubConnection
    subject: str
    data: bytes
    headers: dict[str, str] | None
    reply: str = ""


class PullConsumer:
    """One durable (or named) pull consumer of a stream."""

    def __init__(self, stream: Stream, config: ConsumerConfig, created: float, owner: StubConnection) -> None:
        if config.deliver_subject:
            raise ApiError(400, 10000, "the stub broker models pull consumers only (no deliver_subject)")
        self.stream = stream
        self.config = config
        self.created = created
        self.owner = owner  # the connection that created it: a consumer whose owner left is idle
        self.next_seq = 1  # first stream sequence not delivered yet
        self.cseq = 0
        self.pending: dict[int, Delivery] = {}  # by stream sequence
        self.redeliver: dict[int, float] = {}  # stream sequence -> due (broker clock)
        self.counts: dict[int, int] = {}  # deliveries so far of each message not done with
        self.waiting: list[PullRequest] = []
        self.inboxes: set[str] = set()
        self.num_redelivered = 0
        self.delivered = (0, 0, None)  # consumer seq, stream seq, when (broker clock)
        self.acked_at: float | None = None

    @property
    def name(self) -> str:
        return self.config.name or self.config.durable_name or ""

    def update(self, config: ConsumerConfig) -> None:
        if (config.filter_subject or "") != (self.config.filter_subject or ""):
            # Servers before 2.10 refuse this; later ones allow it. The stub behaves like the later.
            self.next_seq = min(self.next_seq, self.stream.last_seq + 1)
        self.config = config

    # -- what there is to deliver ---------------------------------------------------------

    def wants(self, message: StoredMessage) -> bool:
        filters = self.config.filter_subjects or (
            [self.config.filter_subject] if self.config.filter_subject else []
        )
        return not filters or any(matches(f, message.subject) for f in filters)

    def _next_new(self) -> StoredMessage | None:
        for seq in range(self.next_seq, self.stream.last_seq + 1):
            message = self.stream.messages.get(seq)
            if message is not None and self.wants(message):
                return message
        return None

    def num_pending(self) -> int:
        return sum(1 for s, m in self.stream.messages.items() if s >= self.next_seq and self.wants(m))

    def _ack_pending(self) -> int:
        return len(self.pending) + len(self.redeliver)

    def candidate(self, now: float) -> StoredMessage | None:
        """The next message to deliver now: a due redelivery first, then the next new one."""
        due = sorted(s for s, at in self.redeliver.items() if at <= now)
        for seq in due:
            message = self.stream.messages.get(seq)
            if message is not None:
                return message
            self._done(seq)  # gone from the stream meanwhile
        limit = self.config.max_ack_pending
        if limit is not None and limit > 0 and self._ack_pending() >= limit:
            return None
        return self._next_new()

    def next_timer(self, now: float) -> float | None:
        """When something is next due by the clock: a redelivery or an ack deadline."""
        times = [at for at in self.redeliver.values() if at > now]
        times += [d.ack_by for d in self.pending.values() if d.ack_by > now]
        return min(times, default=None)

    # -- delivering ---------------------------------------------------------------------

    def pull(self, request: PullRequest) -> None:
        self.inboxes.add(request.inbox)
        self.waiting.append(request)

    def deliver(self, now: float) -> list[Outgoing]:
        """Fill waiting pull requests with what can be delivered now."""
        out: list[Outgoing] = []
        while self.waiting:
            message = self.candidate(now)
            if message is None:
                break
            request = self.waiting[0]
            out.append(self._deliver_one(message, request, now))
            request.left -= 1
            if request.left <= 0:
                self.waiting.pop(0)
        return out

    def _deliver_one(self, message: StoredMessage, request: PullRequest, now: float) -> Outgoing:
        seq = message.seq
        if seq in self.redeliver:
            del self.redeliver[seq]
            self.num_redelivered += 1
        else:
            self.next_seq = seq + 1
        count = self.counts.get(seq, 0) + 1
        self.counts[seq] = count
        self.cseq += 1
        ack_wait = self.config.ack_wait or 30.0
        self.pending[seq] = Delivery(count, now + ack_wait, request.conn)
        if seq >= self.delivered[1]:
            self.delivered = (self.cseq, seq, now)
        else:
            self.delivered = (self.cseq, self.delivered[1], now)
        stream = self.stream.name
        reply = (
            f"$JS.ACK.{stream}.{self.name}.{count}.{seq}.{self.cseq}.{int(now * 1e9)}.{self.num_pending()}"
        )
        return Outgoing(request.inbox, request.conn, message.subject, message.data, message.headers, reply)

    def expire(self, loop_now: float, clock_now: float) -> list[Outgoing]:
        """Pull requests past their expiry end with a 408 status; unacked messages past ack_wait are
        due for redelivery (or done with, after max_deliver)."""
        out = []
        for request in [r for r in self.waiting if r.expires_at is not None and r.expires_at <= loop_now]:
            self.waiting.remove(request)
            out.append(status(request, "408", "Request Timeout"))
        for seq, delivery in list(self.pending.items()):
            if delivery.ack_by <= clock_now:
                del self.pending[seq]
                self._again(seq, clock_now)
        return out

    def _again(self, seq: int, due: float) -> None:
        max_deliver = self.config.max_deliver
        if max_deliver is not None and max_deliver > 0 and self.counts.get(seq, 0) >= max_deliver:
            self._done(seq)
        else:
            self.redeliver[seq] = due

    def _done(self, seq: int) -> None:
        self.pending.pop(seq, None)
        self.redeliver.pop(seq, None)
        self.counts.pop(seq, None)

    # -- acknowledgements ----------------------------------------------------------------

    def acknowledge(self, seq: int, payload: bytes, now: float) -> None:
        """Apply one ack subject message for stream sequence ``seq``."""
        if seq not in self.pending:
            return  # late: already redelivered, done with, or never ours
        kind, _, rest = payload.partition(b" ")
        if kind in (b"", b"+ACK", b"+TERM"):
            self._done(seq)
            self.acked_at = now
        elif kind == b"+WPI":
            self.pending[seq].ack_by = now + (self.config.ack_wait or 30.0)
        elif kind == b"-NAK":
            delay = json.loads(rest).get("delay", 0) / 1e9 if rest else 0.0
            del self.pending[seq]
            self._again(seq, now + delay)

    # -- CONSUMER.INFO ------------------------------------------------------------------

    def ack_floor(self) -> int:
        """The stream sequence below which every delivered message is acknowledged (or done)."""
        outstanding = [*self.pending, *self.redeliver]
        return min(outstanding) - 1 if outstanding else self.delivered[1]

    def info(self) -> dict[str, Any]:
        cseq, sseq, delivered_at = self.delivered
        floor = self.ack_floor()
        delivered: dict[str, Any] = {"consumer_seq": cseq, "stream_seq": sseq}
        if delivered_at is not None:
            delivered["last_active"] = iso(delivered_at)
        acked: dict[str, Any] = {"consumer_seq": max(cseq - self._ack_pending(), 0), "stream_seq": floor}
        if self.acked_at is not None:
            acked["last_active"] = iso(self.acked_at)
        return {
            "stream_name": self.stream.name,
            "name": self.name,
            "created": iso(self.created),
            "config": self.config.as_dict(),
            "delivered": delivered,
            "ack_floor": acked,
            "num_ack_pending": self._ack_pending(),
            "num_redelivered": self.num_redelivered,
            "num_waiting": len(self.waiting),
            "num_pending": self.num_pending(),
        }


def status(request: PullRequest, code: str, description: str) -> Outgoing:
    """A status message ending a pull request (its unfilled credits in Nats-Pending-Messages)."""
    headers = {
        "Status": code,
        "Description": description,
        "Nats-Pending-Messages": str(request.left),
        "Nats-Pending-Bytes": "0",
    }
    return Outgoing(request.inbox, request.conn, request.inbox, b"", headers)
