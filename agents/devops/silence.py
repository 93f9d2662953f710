"""Which awaited agents are silent: a deadline measures an agent's silence, not a queue.

DevOps waits for the credential manager, then for QA and security. Under a backlog their input
waits in their durable consumer's queue for as long as it takes; a fixed deadline from the moment
DevOps asked would fail tasks while every agent is alive and busy. So when a task's deadline has
passed, the awaited agent is asked about through its consumer's state on the server:

- no durable consumer: the agent never ran: silent once the deadline passed;
- our message already acknowledged by it: its answer is in the stream. If DevOps' own consumer of
  that answer still has messages to deliver, DevOps itself is behind: wait. Otherwise no answer is
  coming (the input was dead-lettered, say): silent. (DevOps acks an answer only after recording
  it, so the caller re-reads the task after this verdict: a record that changed meanwhile means
  the answer arrived.)
- otherwise: silent when the consumer has neither delivered nor acknowledged any message for the
  whole deadline (the server's ``last_active`` times, and the consumer's sequences as DevOps last
  saw them). A consumer that keeps moving belongs to a live agent working through its queue: wait.

A long handler that keeps one message in progress without the consumer moving at all for the whole
deadline counts as silent, as before: the deadline is the longest one artifact set may take.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import ConsumerInfo
from nats.js.errors import NotFoundError

from bus.clock import SYSTEM_CLOCK, Clock
from contracts import EventType
from contracts.subjects import EVENTS_STREAM, ROUTES, durable_name

OWNER = "devops"


@dataclass(frozen=True)
class Conversation:
    """What DevOps asks an agent (the event type it consumes) and what it answers with."""

    agent: str
    asked: EventType
    answer: EventType


def conversation(agent: str) -> Conversation:
    """Read from the subject table: the type DevOps publishes that ``agent`` consumes, and the type
    ``agent`` publishes that DevOps consumes."""
    route, devops = ROUTES[agent], ROUTES[OWNER]
    asked = next(t for t in route.consumes if t in devops.publishes)
    answer = next(t for t in route.publishes if t in devops.consumes)
    return Conversation(agent, EventType(asked), EventType(answer))


class Liveness:
    """One DevOps replica's view of the consumers it waits on; :meth:`new_round` once per sweep."""

    def __init__(self, js: JetStreamContext, clock: Clock = SYSTEM_CLOCK) -> None:
        self._js = js
        self._clock = clock
        self._infos: dict[str, ConsumerInfo | None] = {}
        # durable -> (the consumer's sequences as last seen, when they last changed)
        self._seen: dict[str, tuple[tuple[int, ...], float]] = {}

    def new_round(self) -> None:
        """Forget the consumer states read in the last sweep (one read per consumer per sweep)."""
        self._infos.clear()

    async def silent(self, agent: str, asked_seq: int | None, since: float, window_s: float) -> bool:
        """True when ``agent`` has shown no sign of life for ``window_s`` seconds, counting from
        ``since`` (when DevOps started waiting), about the message at stream sequence ``asked_seq``."""
        now = self._clock.time()
        if now - since <= window_s:
            return False
        talk = conversation(agent)
        info = await self._info(durable_name(agent, talk.asked))
        if info is None:
            return True
        if asked_seq is not None and asked_seq <= (info.ack_floor.stream_seq or 0):
            answers = await self._info(durable_name(OWNER, talk.answer))
            return not (answers and (answers.num_pending or answers.num_ack_pending))
        return now - max(since, self._last_progress(info, now)) > window_s

    async def _info(self, durable: str) -> ConsumerInfo | None:
        if durable not in self._infos:
            try:
                self._infos[durable] = await self._js.consumer_info(EVENTS_STREAM, durable)
            except NotFoundError:
                self._infos[durable] = None
        return self._infos[durable]

    def _last_progress(self, info: ConsumerInfo, now: float) -> float:
        """When the consumer last delivered or acknowledged a message, as far as anyone can tell:
        the server's ``last_active`` times (or the consumer's creation, if it never delivered
        anything). A server that keeps no such time: when this replica saw the consumer's sequences
        change, the first sight counting as a change (an agent gets the benefit of the doubt for
        one deadline after a DevOps restart)."""
        delivered, floor = info.delivered, info.ack_floor
        if delivered.last_active or floor.last_active or not delivered.stream_seq:
            times = (delivered.last_active, floor.last_active, info.created)
            return max((t.timestamp() for t in times if t), default=now)
        marker = (delivered.stream_seq, floor.stream_seq or 0, info.num_ack_pending or 0)
        seen = self._seen.get(info.name)
        if seen is None or seen[0] != marker:
            self._seen[info.name] = seen = (marker, now)
        return seen[1]
