"""SQLite (WAL, FTS5) projection of the event stream.

Idempotent by construction: the event id is UNIQUE and inserts are ``INSERT OR IGNORE``,
so a redelivered event (say the subscriber died after its commit, before its ack) is
absorbed. A *different* event under an id already stored (published without the dedupe header,
or after the duplicate window) is not silently dropped: :meth:`KnowledgeStore.add_batch` names it
as a conflict, and the subscriber dead-letters it. The stream is the source of truth; this file
can be rebuilt by replaying it.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from agents.knowledge.summary import kind_of, summarize
from contracts import ContractError, Envelope, decode
from contracts.envelope import same_event
from contracts.payloads import KnowledgeNote
from contracts.redaction import keep_nothing, mask_event

SCHEMA = """
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS events (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    type         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    task_id      TEXT NOT NULL,
    causation_id TEXT,
    agent        TEXT NOT NULL,
    instance     TEXT NOT NULL,
    occurred_at  TEXT NOT NULL,
    text         TEXT NOT NULL,
    event        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_task ON events(task_id, seq);
CREATE INDEX IF NOT EXISTS events_type ON events(type, seq);
CREATE INDEX IF NOT EXISTS events_agent ON events(agent, seq);
CREATE VIRTUAL TABLE IF NOT EXISTS events_fts USING fts5(
    text, type, kind, agent, content='events', content_rowid='seq', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS events_ai AFTER INSERT ON events BEGIN
    INSERT INTO events_fts(rowid, text, type, kind, agent)
    VALUES (new.seq, new.text, new.type, new.kind, new.agent);
END;
"""

_INSERT = """
INSERT OR IGNORE INTO events
    (id, type, kind, task_id, causation_id, agent, instance, occurred_at, text, event)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
_COLUMNS = "seq, id, type, kind, task_id, causation_id, agent, occurred_at, text"
_LOOKUP_CHUNK = 500  # ids per `IN (...)` query, well under SQLite's variable limit


@dataclass
class BatchResult:
    """What :meth:`KnowledgeStore.add_batch` did: rows ``added`` (repeats of stored events are not
    counted), and ``conflicts``: index in the batch -> why that event was refused."""

    added: int
    conflicts: dict[int, str] = field(default_factory=dict)


def _author(event: Envelope) -> str:
    # A note is attributed to the agent it names (`orchestra knowledge store --agent devops-engineer`).
    payload = event.payload
    return payload.agent if isinstance(payload, KnowledgeNote) else event.source.agent


def _row(event: Envelope) -> tuple[Any, ...]:
    """The columns of an event as stored: give it masked (:meth:`KnowledgeStore.add_batch` does)."""
    return (
        event.id,
        str(event.type),
        kind_of(event),
        event.task_id,
        event.causation_id,
        _author(event),
        event.source.instance,
        event.occurred_at.isoformat(),
        summarize(event),
        event.model_dump_json(exclude_none=True),
    )


def fts_query(text: str) -> str:
    """Turn free text into a safe FTS5 query: every word quoted, all words required."""
    words = ["".join(ch for ch in w if ch.isalnum() or ch in "_-.") for w in text.split()]
    return " ".join(f'"{w}"' for w in words if w)


class KnowledgeStore:
    """The SQLite file. Use :meth:`open`, then :meth:`add_batch`, :meth:`search`, :meth:`history`."""

    def __init__(self, db: aiosqlite.Connection, path: Path) -> None:
        self._db = db
        self.path = path

    @classmethod
    async def open(cls, path: Path) -> KnowledgeStore:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path)
        db.row_factory = aiosqlite.Row
        await db.executescript(SCHEMA)
        await db.commit()
        return cls(db, path)

    async def close(self) -> None:
        await self._db.close()

    async def add_batch(self, events: Sequence[Envelope]) -> BatchResult:
        """Insert events in one transaction. The same event again is ignored; another event under
        an id already stored (or earlier in the batch) is refused and listed in ``conflicts``."""
        known = await self._stored([e.id for e in events])
        rows = []
        conflicts: dict[int, str] = {}
        for index, received in enumerate(events):
            # Whatever a client sent (one in another language may not mask), nothing secret-looking
            # is written: every string, artifact contents included, is masked first. What is stored
            # is that masked copy, so a redelivery is compared in the same form.
            event = mask_event(received, keep=keep_nothing)
            first = known.get(event.id)
            if first is None:
                known[event.id] = event
                rows.append(_row(event))
            elif not same_event(first, event):
                conflicts[index] = (
                    f"event id {event.id} is already stored for a different event "
                    f"({first.type} of task {first.task_id} from {first.source.agent})"
                )
        try:
            cursor = await self._db.executemany(_INSERT, rows)
            await self._db.commit()
        except BaseException:
            # Leave no half-written transaction behind: the retry starts clean.
            with contextlib.suppress(Exception):
                await self._db.rollback()
            raise
        # rowcount counts the rows this statement inserted (not the FTS trigger's): ignored dupes are 0.
        return BatchResult(added=max(cursor.rowcount, 0), conflicts=conflicts)

    async def _stored(self, ids: Sequence[str]) -> dict[str, Envelope]:
        """The stored events among ``ids`` (a redelivery, or an id reused by another event)."""
        found: dict[str, Envelope] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), _LOOKUP_CHUNK):
            chunk = unique[start : start + _LOOKUP_CHUNK]
            sql = f"SELECT id, event FROM events WHERE id IN ({','.join('?' * len(chunk))})"
            async with self._db.execute(sql, chunk) as cur:
                for row in await cur.fetchall():
                    with contextlib.suppress(ContractError):  # written by an older contract: no verdict
                        found[row[0]] = decode(row[1].encode())
        return found

    async def count(self) -> int:
        async with self._db.execute("SELECT count(*) FROM events") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def search(
        self,
        query: str = "",
        *,
        type: str | None = None,
        agent: str | None = None,
        task: str | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        """Full-text search (porter-stemmed) narrowed by type / note kind, agent and task; newest first."""
        where: list[str] = []
        args: list[Any] = []
        match = fts_query(query)
        if match:
            where.append("e.seq IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?)")
            args.append(match)
        if type:
            where.append("(e.type = ? OR e.kind = ? OR e.type LIKE ?)")
            args += [type, type, f"{type}.%"]
        if agent:
            where.append("(e.agent = ? OR e.agent LIKE ?)")
            args += [agent, f"{agent}%"]
        if task:
            where.append("e.task_id = ?")
            args.append(task)
        sql = f"SELECT {_COLUMNS} FROM events e"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY e.seq DESC LIMIT ?"
        args.append(max(1, min(int(limit), 1000)))
        async with self._db.execute(sql, args) as cur:
            return [dict(r) for r in await cur.fetchall()]

    async def history(self, task_id: str) -> list[dict[str, Any]]:
        """Every event of a task in arrival order, each with its causation id (the causal chain)."""
        rows: list[dict[str, Any]] = []
        after: int | None = 0
        while after is not None:  # pages without a size budget: this is in-process, not a reply
            page = await self.history_page(task_id, after=after, limit=1000, max_bytes=sys.maxsize)
            rows += page["events"]
            after = page["next"]
        return rows

    async def history_page(
        self, task_id: str, *, after: int = 0, limit: int = 500, max_bytes: int, full: bool = False
    ) -> dict[str, Any]:
        """One page of a task's history for a request/reply answer that must fit in ``max_bytes``.

        Returns ``{"events": rows, "next": cursor or None, "total": events of the task}``: rows with
        ``seq > after`` in arrival order (each with the full ``event`` when ``full``), as many as fit
        in ``max_bytes`` of JSON and at most ``limit``; ``next`` is the ``after`` of the next page.
        Raises ValueError when not even one row fits (an event near the server's max_payload)."""
        limit = max(1, min(int(limit), 1000))
        columns = _COLUMNS + (", event" if full else "")
        sql = f"SELECT {columns} FROM events WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        async with self._db.execute(sql, (task_id, int(after), limit + 1)) as cur:
            fetched = [dict(r) for r in await cur.fetchall()]
        async with self._db.execute("SELECT count(*) FROM events WHERE task_id = ?", (task_id,)) as cur:
            total = int((await cur.fetchone() or (0,))[0])
        rows: list[dict[str, Any]] = []
        used = 64  # the page's own keys and brackets
        for row in fetched[:limit]:
            if full:
                row["event"] = json.loads(row["event"])
            size = len(json.dumps(row, default=str)) + 2  # as the reply encodes it, plus ", "
            if used + size > max_bytes:
                if not rows:
                    raise ValueError(
                        f"event {row['id']} of task {task_id} takes {size} bytes, more than one reply "
                        f"may carry ({max_bytes}); read it from the event stream"
                    )
                break
            rows.append(row)
            used += size
        more = len(rows) < len(fetched)
        return {"events": rows, "next": rows[-1]["seq"] if more else None, "total": total}

    async def events(self, task_id: str | None = None) -> list[dict[str, Any]]:
        """Full stored events (JSON decoded), optionally of one task."""
        sql = "SELECT event FROM events" + (" WHERE task_id = ?" if task_id else "") + " ORDER BY seq"
        async with self._db.execute(sql, (task_id,) if task_id else ()) as cur:
            return [json.loads(r[0]) for r in await cur.fetchall()]
