"""The one subject table: every subject, stream and consumer name lives here.

Events:       orchestra.evt.<event type>.<task id>   (one stream, EVENTS)
Dead letters: orchestra.dlq.<consumer>                (stream DLQ)
Requests:     orchestra.rpc.<service>.<verb>          (core NATS request/reply)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from contracts.agents import AGENTS, AgentSpec
from contracts.payloads import EventType

PREFIX = "orchestra"
EVENTS_STREAM = "ORCHESTRA_EVENTS"
EVENTS_SUBJECTS = f"{PREFIX}.evt.>"
DLQ_STREAM = "ORCHESTRA_DLQ"
DLQ_SUBJECTS = f"{PREFIX}.dlq.>"
TASKS_BUCKET = "orchestra_tasks"
TASKS_BUCKET_STREAM = f"KV_{TASKS_BUCKET}"  # the stream JetStream keeps a KV bucket in
# Consumers that people and programs create (``orchestra watch``) are named ``watch-<random>``:
# no agent durable is named so, and the client user may create no consumer that has an agent
# durable's name (deploy/nats/render_auth.py denies each one by name).
CLIENT_CONSUMER_PREFIX = "watch-"

RPC_KNOWLEDGE_SEARCH = f"{PREFIX}.rpc.knowledge.search"
RPC_KNOWLEDGE_HISTORY = f"{PREFIX}.rpc.knowledge.history"
# NATS micro services: every agent registers as `orchestra-<agent>` (discovery via $SRV.*).
SERVICE_PREFIX = PREFIX


def agent_status_subject(agent: str) -> str:
    """The micro ``status`` endpoint of an agent."""
    return f"{PREFIX}.svc.{agent}.status"


def event_subject(event_type: EventType | str, task_id: str) -> str:
    return f"{PREFIX}.evt.{EventType(event_type).value}.{task_id}"


def event_filter(event_type: EventType | str, task_id: str = "*") -> str:
    """Subject filter for one event type, optionally one task."""
    return f"{PREFIX}.evt.{EventType(event_type).value}.{task_id}"


def status_filter(task_id: str | None = None) -> str:
    return event_filter(EventType.STATUS_CHANGED, task_id or "*")


def dlq_subject(consumer: str) -> str:
    return f"{PREFIX}.dlq.{consumer}"


@dataclass(frozen=True)
class Route:
    """Which event types an agent consumes (its durable consumer) and may publish."""

    agent: str
    consumes: tuple[EventType, ...]
    publishes: tuple[EventType, ...]

    @property
    def consumes_everything(self) -> bool:
        return set(self.consumes) == set(EventType)

    def consumers(self) -> list[tuple[str, str]]:
        """``(durable name, filter subject)`` per consumer of this agent.

        One durable per event type (not one with several filters) so the same code runs on
        NATS 2.9, which lacks ``filter_subjects``; replicas of an agent share these durables.
        """
        if self.consumes_everything:
            return [(self.agent, EVENTS_SUBJECTS)]
        return [(durable_name(self.agent, t), event_filter(t)) for t in self.consumes]


def durable_name(agent: str, event_type: EventType) -> str:
    return f"{agent}-{event_type.value.replace('.', '_')}"


def inbox_prefix(agent: str) -> str:
    """Each agent's private reply inbox, so permissions can keep its replies its own."""
    return f"_INBOX_{agent}"


def routes(agents: Mapping[str, AgentSpec]) -> dict[str, Route]:
    """The route of each agent of a registry."""
    return {a.name: Route(a.name, a.consumes, a.publishes) for a in agents.values()}


# Who consumes and publishes what, from the agent registry (contracts/agents.py).
ROUTES: dict[str, Route] = routes(AGENTS)

# What people and programs publish (the client user of deploy/nats): anyone may be their source.
CLIENT_EVENTS = frozenset({EventType.TASK_REQUESTED, EventType.KNOWLEDGE_NOTE})


def owners(event_type: EventType | str) -> frozenset[str] | None:
    """The agents that publish ``event_type`` according to ROUTES, or None for the types clients
    publish too. A consumer refuses an event of an owned type whose ``source.agent`` is not an owner."""
    event_type = EventType(event_type)
    if event_type in CLIENT_EVENTS:
        return None
    return _OWNERS[event_type]


_OWNERS: dict[EventType, frozenset[str]] = {
    t: frozenset(r.agent for r in ROUTES.values() if t in r.publishes) for t in EventType
}
