"""The knowledge subscriber: persists every event (batched commit, then ack) and answers searches."""

from __future__ import annotations

import sqlite3
from typing import Any, ClassVar

import structlog

from agents.knowledge.store import KnowledgeStore
from agents.worker import Worker
from bus.errors import Unavailable
from contracts import Envelope
from contracts.subjects import RPC_KNOWLEDGE_HISTORY, RPC_KNOWLEDGE_SEARCH

log = structlog.get_logger("agents.knowledge")


class Knowledge(Worker):
    name: ClassVar[str] = "knowledge"
    store: KnowledgeStore

    async def start(self) -> None:
        try:
            self.store = await KnowledgeStore.open(self.settings.knowledge_db)
        except (OSError, sqlite3.Error) as exc:  # say which setting points at the unusable file
            raise OSError(
                f"cannot open the knowledge store {self.settings.knowledge_db} "
                f"(ORCHESTRA_KNOWLEDGE_DB or --knowledge-db): {exc}"
            ) from exc
        durable, filter_subject = self.route.consumers()[0]
        await self.bus.consume(
            durable=durable,
            filter_subject=filter_subject,
            batch_handler=self.persist,
            observer=self.observer(),
        )
        await self.bus.serve(RPC_KNOWLEDGE_SEARCH, self._search, queue="knowledge")
        await self.bus.serve(RPC_KNOWLEDGE_HISTORY, self._history, queue="knowledge")
        log.info("agent.started", agent=self.name, db=str(self.store.path))

    async def persist(self, events: list[Envelope]) -> dict[int, str]:
        """One transaction per fetched batch; the consumer acks only after this returns, and
        dead-letters the events it returns (another event already stored under their id)."""
        try:
            result = await self.store.add_batch(events)
        except sqlite3.OperationalError as exc:
            # Disk full, read-only, locked, I/O error: the events are fine, the file is not. Hold
            # them (unacked, never dead-lettered) until it can write again.
            self.failed += len(events)
            raise Unavailable(f"knowledge store cannot write: {exc}") from exc
        except Exception:
            self.failed += len(events)
            raise
        self.handled += len(events) - len(result.conflicts)
        self.failed += len(result.conflicts)
        return result.conflicts

    async def _search(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        return await self.store.search(
            str(body.get("query") or ""),
            type=body.get("type"),
            agent=body.get("agent"),
            task=body.get("task"),
            limit=int(body.get("limit") or 20),
        )

    async def _history(self, body: dict[str, Any]) -> dict[str, Any]:
        """A page of a task's history (see KnowledgeStore.history_page); the client follows ``next``."""
        task = body.get("task")
        if not task:
            raise ValueError("history needs a task id")
        return await self.store.history_page(
            str(task),
            after=int(body.get("after") or 0),
            limit=int(body.get("limit") or 500),
            full=bool(body.get("full")),
            max_bytes=self.bus.reply_budget(),
        )

    async def stop(self) -> None:
        await self.store.close()
