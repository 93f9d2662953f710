"""The facade a person or program uses: submit a task, watch its status, search the knowledge store."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from nats.js.api import DeliverPolicy
from pydantic import TypeAdapter

from bus.config import BusConfig
from bus.errors import IdTaken
from bus.runtime import Bus
from bus.watch import OrderedFeed
from contracts import ContractError, Envelope, EventType, Source, decode, new_event, new_id
from contracts.envelope import Token, same_event
from contracts.ids import derived_id
from contracts.limits import checked
from contracts.payloads import KnowledgeNote, ServiceSpec, StatusChanged, TaskRequested
from contracts.redaction import mask_model
from contracts.subjects import EVENTS_STREAM, RPC_KNOWLEDGE_HISTORY, RPC_KNOWLEDGE_SEARCH, status_filter
from contracts.vocabulary import CIProvider, NoteKind, Strategy, Target

_TASK_ID: TypeAdapter[str] = TypeAdapter(Token)


def client_source(agent: str = "client") -> Source:
    return Source(agent=agent, instance=f"{socket.gethostname()}:{os.getpid()}")


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
        # A client never provisions: the streams belong to the provisioning identity (`orchestra
        # provision`), and a client user may not change them.
        return cls(await Bus.connect(config, name="orchestra-client", wait_s=wait_s))

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

        Secret-looking values (a key in the text, a password in a start command) are masked as
        ``[REDACTED]`` before anything is published: the bus never carries them.
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
        payload = mask_model(payload)
        event = new_event(
            EventType.TASK_REQUESTED,
            payload,
            task_id=task_id,
            source=self.source,
            event_id=derived_id(task_id, "task.requested"),
        )
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
        """Publish a ``knowledge.note`` for the knowledge store; returns its event id. Secret-looking
        values in ``text`` are masked before it is published."""
        event = new_event(
            EventType.KNOWLEDGE_NOTE,
            mask_model(checked("note", lambda: KnowledgeNote(kind=kind, text=text, agent=agent))),
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
        feed = OrderedFeed(
            self.bus.nc,
            self.bus.js,
            EVENTS_STREAM,
            status_filter(task_id),
            deliver_policy=DeliverPolicy.ALL if task_id else DeliverPolicy.NEW,
        )
        async with feed:
            while True:
                msg = await feed.next(idle_timeout_s)
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

    async def history_pages(
        self, task_id: str, *, full: bool = False, page_size: int = 500, timeout_s: float = 5.0
    ) -> AsyncIterator[dict[str, Any]]:
        """A task's history, oldest first, one reply at a time: each page is ``{"events": rows,
        "next": cursor or None, "total": n}`` and fits the server's max_payload whatever the
        history's size. ``full`` adds each row's whole event envelope under ``"event"``."""
        after = 0
        while True:
            body = {"task": task_id, "after": after, "limit": page_size, "full": full}
            page = await self.bus.request(RPC_KNOWLEDGE_HISTORY, body, timeout_s=timeout_s)
            if isinstance(page, list):  # a knowledge agent from before paging: the whole history
                page = {"events": page, "next": None, "total": len(page)}
            yield page
            if page.get("next") is None:
                return
            after = page["next"]

    async def history(
        self, task_id: str, *, limit: int | None = None, full: bool = False, timeout_s: float = 5.0
    ) -> History:
        """The first ``limit`` events (default all) of a task's history; ``History.cut`` says whether
        there were more."""
        found = History()
        page_size = min(limit, 500) if limit else 500
        async for page in self.history_pages(task_id, full=full, page_size=page_size, timeout_s=timeout_s):
            found.total = page["total"]
            found.rows.extend(page["events"])
            if limit is not None and len(found.rows) >= limit:
                del found.rows[limit:]
                break
        return found


@dataclass
class History:
    """Rows of a task's history (oldest first) and how many events the task has in all."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0

    @property
    def cut(self) -> bool:
        return len(self.rows) < self.total
