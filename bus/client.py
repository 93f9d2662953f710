"""The facade a person or program uses: submit a task, watch its status, search the knowledge store."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from nats.js.api import DeliverPolicy
from pydantic import TypeAdapter, ValidationError

from bus.config import BusConfig
from bus.errors import IdTaken, one_line
from bus.runtime import Bus
from contracts import ContractError, Envelope, EventType, Source, decode, new_event, new_id
from contracts.envelope import Token, same_event
from contracts.ids import derived_id
from contracts.payloads import KnowledgeNote, ServiceSpec, StatusChanged, TaskRequested
from contracts.subjects import RPC_KNOWLEDGE_HISTORY, RPC_KNOWLEDGE_SEARCH, status_filter
from contracts.vocabulary import CIProvider, NoteKind, Strategy, Target

T = TypeVar("T")
_TASK_ID: TypeAdapter[str] = TypeAdapter(Token)


def client_source(agent: str = "client") -> Source:
    return Source(agent=agent, instance=f"{socket.gethostname()}:{os.getpid()}")


def checked(what: str, build: Callable[[], T]) -> T:
    """Build a contract model from caller input; a bad value raises :class:`ContractError` with one
    line naming the field, instead of pydantic's multi-line report."""
    try:
        return build()
    except ValidationError as exc:
        raise ContractError(one_line(exc, what)) from None


def task_id_checked(task_id: str) -> str:
    """A task id as it appears in subjects: letters, digits, ``_`` and ``-`` (no dots, no wildcards)."""
    return checked(f"task id {task_id!r}", lambda: _TASK_ID.validate_python(task_id))


class OrchestraClient:
    """Talk to a running orchestra. Use as ``async with OrchestraClient.connect(config) as c:``."""

    def __init__(self, bus: Bus, *, source: Source | None = None) -> None:
        self.bus = bus
        self.source = source or client_source()

    @classmethod
    async def open(cls, config: BusConfig, *, wait_s: float = 0.0) -> OrchestraClient:
        # A client never provisions: streams belong to the agents (and a client user may not
        # change them, e.g. a different replica count than the cluster's).
        return cls(await Bus.connect(config, name="orchestra-client", wait_s=wait_s, provision=False))

    async def close(self) -> None:
        await self.bus.close()

    async def __aenter__(self) -> OrchestraClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def submit(
        self,
        text: str,
        project: str,
        *,
        targets: list[Target] | None = None,
        strategy: Strategy | None = None,
        ci: CIProvider | None = None,
        environments: list[str] | None = None,
        output_dir: str | None = None,
        service: ServiceSpec | None = None,
        task_id: str | None = None,
    ) -> str:
        """Publish ``task.requested`` and return the task id once the server stored it.

        The event id derives from the task id: submitting the same ``task_id`` again (a retry after
        a lost PubAck) is the same event, which the server's duplicate window drops. A ``task_id``
        that already names another task raises :class:`ContractError` (a task id is created once)."""
        explicit = bool(task_id)
        task_id = task_id_checked(task_id) if task_id else new_id()
        payload = checked(
            "task",
            lambda: TaskRequested(
                text=text,
                project=project,
                targets=targets,
                strategy=strategy,
                ci=ci,
                environments=environments,
                output_dir=output_dir,
                service=service,
            ),
        )
        event = new_event(EventType.TASK_REQUESTED, payload, task_id=task_id, source=self.source)
        event = event.model_copy(update={"id": derived_id(task_id, "task.requested")})
        taken = ContractError(f"task id {task_id} already exists: a task id is created once")
        if explicit:  # only a caller's own id can name an existing task: look before publishing
            first = await self.bus.first_event(event.subject())
            if first is not None and not same_event(first, event):
                raise taken
        try:
            await self.bus.publisher.publish(event, taken="raise")
        except IdTaken:
            raise taken from None
        return task_id

    async def note(self, text: str, *, kind: NoteKind, agent: str, task_id: str | None = None) -> str:
        """Store a knowledge note (the seed's ``knowledge-manager.js store``); returns its event id."""
        event = new_event(
            EventType.KNOWLEDGE_NOTE,
            checked("note", lambda: KnowledgeNote(kind=kind, text=text, agent=agent)),
            task_id=task_id_checked(task_id) if task_id else "notes",
            source=self.source,
        )
        await self.bus.publish(event)
        return event.id

    async def watch(
        self, task_id: str | None = None, *, idle_timeout_s: float | None = None
    ) -> AsyncIterator[Envelope]:
        """Yield ``status.changed`` events: for one task from its first status until a terminal one,
        or for every task from now on (forever). ``idle_timeout_s`` bounds the wait for the next event."""
        if task_id is not None:
            task_id_checked(task_id)  # "a.b" or ">" would silently watch nothing, or everything
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def on_msg(msg: Any) -> None:
            await queue.put(msg)

        sub = await self.bus.js.subscribe(
            status_filter(task_id),
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.ALL if task_id else DeliverPolicy.NEW,
            cb=on_msg,
        )
        try:
            while True:
                msg = await asyncio.wait_for(queue.get(), idle_timeout_s)
                try:
                    event = decode(msg.data)
                except ContractError:
                    continue  # someone else's garbage on our subject: the dead-letter path handles it
                if msg.subject != event.subject():
                    continue  # an event on a subject that is not its own (the consumers dead-letter it)
                yield event
                payload = event.payload
                if task_id and isinstance(payload, StatusChanged) and payload.state.terminal:
                    return
        finally:
            await sub.unsubscribe()

    async def search(
        self,
        query: str = "",
        *,
        type: str | None = None,
        agent: str | None = None,
        task: str | None = None,
        limit: int = 20,
        timeout_s: float = 5.0,
    ) -> list[dict[str, Any]]:
        body = {"query": query, "type": type, "agent": agent, "task": task, "limit": limit}
        return await self.bus.request(RPC_KNOWLEDGE_SEARCH, body, timeout_s=timeout_s)

    async def history(self, task_id: str, *, timeout_s: float = 5.0) -> list[dict[str, Any]]:
        return await self.bus.request(RPC_KNOWLEDGE_HISTORY, {"task": task_id}, timeout_s=timeout_s)
