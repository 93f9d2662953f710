"""The worker base: an agent is a name, the events it handles, and what it decides.

Transport concerns (fetching, acking, retries, dead letters, metrics) live in the bus; an
agent's module only says what it does with each event::

    class Architect(Worker):
        name = "architect"

        @handles(EventType.TASK_REQUESTED)
        async def plan(self, event: TaskRequestedEvent, ctx: Context) -> None:
            ctx.emit(EventType.DECISION_RECORDED, DecisionRecorded(...))

Events a handler emits are published (each PubAck awaited, in order) after it returns and
before its input is acked. Their ids derive from the input's id, so a redelivered input
re-emits the same ids and JetStream's duplicate window drops the repeats.

Ingestion: a handler gets its event with secret-looking values masked (contracts.redaction),
whatever client sent it, so nothing a handler copies into a follow-up event or its state can carry
one. Artifact contents are the exception: the reviewers must see them as generated.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar, TypeVar

import structlog

from agents.settings import AgentSettings
from bus.errors import Reject
from bus.observer import ConsumerObserver
from bus.runtime import Bus
from contracts import Envelope, EventType, Source, new_event
from contracts.ids import derived_id
from contracts.limits import clip_to
from contracts.payloads import KnowledgeNote, Model, StatusChanged
from contracts.redaction import mask_event
from contracts.subjects import ROUTES, Route, owners
from contracts.vocabulary import DeploymentState, NoteKind

log = structlog.get_logger("agents.worker")

F = TypeVar("F", bound=Callable[..., Awaitable[None]])


def handles(event_type: EventType) -> Callable[[F], F]:
    """Mark a coroutine method as the handler of one event type."""

    def mark(fn: F) -> F:
        fn.__orchestra_handles__ = event_type  # type: ignore[attr-defined]
        return fn

    return mark


class Context:
    """What a handler gets besides its event: an outbox and the agent's identity."""

    def __init__(self, worker: Worker, event: Envelope) -> None:
        self.worker = worker
        self.event = event
        self.outbox: list[Envelope] = []
        self._emitted = 0

    @property
    def task_id(self) -> str:
        return self.event.task_id

    def emit(self, event_type: EventType, payload: Model, *, salt: str | None = None) -> Envelope:
        """Queue a follow-up event caused by the current one (published after the handler)."""
        index = self._emitted
        self._emitted += 1
        event = new_event(
            event_type,
            payload,
            task_id=self.event.task_id,
            source=self.worker.source,
            causation_id=self.event.id,
            event_id=self.worker.derive_id(self.event.id, salt or f"{self.worker.name}:{index}"),
            occurred_at=self.worker.bus.clock.now(),
        )
        self.outbox.append(event)
        return event

    def reset(self) -> None:
        """Forget what was queued, for a handler that retries its work from the start: the same
        emits then get the same ids again, so what an earlier attempt published de-duplicates."""
        self.outbox.clear()
        self._emitted = 0

    async def flush(self) -> list[Any]:
        """Publish what is queued now (PubAcks awaited, in order) and return the acks.

        For handlers that must record state only after their events are stored."""
        acks = [await self.worker.bus.publish(event) for event in self.outbox]
        self.outbox.clear()
        return acks

    def status(
        self, state: DeploymentState, previous: DeploymentState | None, reason: str, **extra: Any
    ) -> Envelope:
        # A reason is derived text ("task received: " + the task): clipped to its own bound.
        payload = StatusChanged(
            state=state,
            previous=previous,
            agent=self.worker.name,
            reason=clip_to(StatusChanged, "reason", reason),
            **extra,
        )
        return self.emit(EventType.STATUS_CHANGED, payload)

    def note(self, kind: NoteKind, text: str) -> Envelope:
        """A ``knowledge.note`` of ``kind`` attributed to this agent."""
        text = clip_to(KnowledgeNote, "text", text)
        return self.emit(
            EventType.KNOWLEDGE_NOTE, KnowledgeNote(kind=kind, text=text, agent=self.worker.name)
        )


class Worker:
    """Base class of every agent. Subclasses set ``name`` and mark handlers with :func:`handles`."""

    name: ClassVar[str]

    def __init__(self, bus: Bus, settings: AgentSettings) -> None:
        self.bus = bus
        self.settings = settings
        self.source = Source(agent=self.name, instance=settings.instance)
        self.route: Route = ROUTES[self.name]
        self._handlers: dict[str, Callable[[Any, Context], Awaitable[None]]] = {}
        for attr in dir(type(self)):
            fn = getattr(type(self), attr)
            event_type = getattr(fn, "__orchestra_handles__", None)
            if event_type is not None:
                self._handlers[event_type.value] = getattr(self, attr)
        self.handled = 0
        self.failed = 0
        self.started_at = time.monotonic()
        key = settings.id_key
        self._id_key = key.get_secret_value().encode() if key is not None else None

    def derive_id(self, parent: str, salt: str) -> str:
        """The id of an event caused by ``parent``, keyed with the deployment's id key (if any)."""
        return derived_id(parent, salt, self._id_key)

    async def start(self) -> None:
        """Create this agent's durable consumers and start handling."""
        for durable, filter_subject in self.route.consumers():
            await self.bus.consume(
                durable=durable,
                filter_subject=filter_subject,
                handler=self._dispatch,
                concurrency=self.settings.concurrency,
                observer=self.observer(),
            )
        log.info("agent.started", agent=self.name, instance=self.settings.instance)

    def observer(self) -> ConsumerObserver:
        """Metrics hooks for this agent's consumers: Prometheus (bus/metrics.py), served at /metrics.

        The events the agent publishes through its bus are counted too (hooked once per bus)."""
        from bus.metrics import metrics_observer

        return metrics_observer(self.bus.publisher)

    async def stop(self) -> None:
        """Hook for agents with background work; consumers are stopped by the bus."""

    async def _dispatch(self, event: Envelope) -> None:
        handler = self._handlers.get(str(event.type))
        if handler is None:
            return  # not ours (a wide filter): ack and move on
        allowed = owners(event.type)
        if allowed is not None and event.source.agent not in allowed:
            # Only the agent the subject table names publishes this type (the server's per-user
            # permissions enforce the same on a secured bus): a forgery, never acted on.
            self.failed += 1
            raise Reject(
                f"{event.type} from {event.source.agent!r}: only {', '.join(sorted(allowed))} publishes it"
            )
        try:
            event = mask_event(event)
        except ValueError as exc:
            raise Reject(str(exc)) from None
        ctx = Context(self, event)
        with structlog.contextvars.bound_contextvars(
            agent=self.name, task_id=event.task_id, event_id=event.id, event_type=str(event.type)
        ):
            try:
                await handler(event, ctx)
                for out in ctx.outbox:
                    await self.bus.publish(out)
            except Exception:
                self.failed += 1
                raise
            self.handled += 1
