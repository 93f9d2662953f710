"""Task-level checks: submit many tasks, wait for each to end, and check the invariants.

Invariant everywhere: every event the server acknowledged is in the knowledge store exactly once,
and every task reaches exactly one terminal status (with one artifact set when it got that far).
"""

from __future__ import annotations

import shutil
import sqlite3
from collections import Counter
from pathlib import Path

from nats.js import JetStreamContext

from bus.client import OrchestraClient
from contracts import ContractError, decode
from contracts.vocabulary import TERMINAL_STATES, Target
from tests.faults.helpers import (
    assert_exactly_once,
    dead_letters,
    raw_messages,
    store_rows,
    stream_ids,
    until,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TERMINAL = {s.value for s in TERMINAL_STATES}
TEXT = "Containerize the Python FastAPI application"


def copy_fastapi(workspace: Path, name: str = "fastapi-service") -> str:
    shutil.copytree(
        EXAMPLES / "fastapi-service", workspace / name, ignore=shutil.ignore_patterns("__pycache__", ".venv")
    )
    return name


async def submit(client: OrchestraClient, project: str, n: int, *, prefix: str = "out") -> list[str]:
    """``n`` structured tasks (Docker target) for ``project``, each writing to its own output dir."""
    return [
        await client.submit(TEXT, project, targets=[Target.DOCKER], output_dir=f"{prefix}/{i}")
        for i in range(n)
    ]


def _query(db: Path, sql: str, args: tuple = ()) -> list[tuple]:
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return list(con.execute(sql, args))
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def terminal_states(db: Path) -> dict[str, list[str]]:
    """task id -> the terminal states stored for it (one expected)."""
    rows = _query(
        db, "SELECT task_id, json_extract(event, '$.payload.state') FROM events WHERE type = 'status.changed'"
    )
    out: dict[str, list[str]] = {}
    for task_id, state in rows:
        if state in TERMINAL:
            out.setdefault(task_id, []).append(state)
    return out


def tasks_in(db: Path, state: str) -> set[str]:
    """Tasks that have been in ``state`` (per the knowledge store)."""
    rows = _query(
        db,
        "SELECT task_id FROM events WHERE type = 'status.changed' "
        "AND json_extract(event, '$.payload.state') = ?",
        (state,),
    )
    return {t for (t,) in rows}


def reasons(db: Path, task_ids: list[str]) -> dict[str, str]:
    rows = _query(
        db,
        "SELECT task_id, json_extract(event, '$.payload.reason') FROM events "
        "WHERE type = 'status.changed' AND json_extract(event, '$.payload.state') = 'failed'",
    )
    wanted = set(task_ids)
    return {t: r for t, r in rows if t in wanted}


async def wait_terminal(db: Path, task_ids: list[str], within: float) -> dict[str, list[str]]:
    def done() -> dict[str, list[str]] | None:
        states = terminal_states(db)
        return states if all(t in states for t in task_ids) else None

    missing = lambda: len([t for t in task_ids if t not in terminal_states(db)])  # noqa: E731
    try:
        return await until(done, within=within, interval=0.25, what="every task terminal")
    except AssertionError:
        raise AssertionError(f"{missing()} of {len(task_ids)} tasks without a terminal status") from None


async def check_invariants(
    js: JetStreamContext,
    db: Path,
    task_ids: list[str],
    *,
    expect: str | None = "ready",
    garbage: bool = False,
) -> dict[str, int]:
    """The invariants of the issue; returns counts for the report. With ``garbage``, the stream also
    holds bytes that are no event: those are left out, and dead letters are expected."""
    states = await wait_terminal(db, task_ids, within=120)
    for task_id in task_ids:
        assert len(states[task_id]) == 1, (task_id, states[task_id])
        if expect:
            assert states[task_id] == [expect], (task_id, states[task_id], reasons(db, [task_id]))
    artifact_sets = Counter(
        t for (t,) in _query(db, "SELECT task_id FROM events WHERE type = 'artifact_set.completed'")
    )
    assert all(artifact_sets[t] <= 1 for t in task_ids), artifact_sets.most_common(3)
    if expect == "ready":
        assert all(artifact_sets[t] == 1 for t in task_ids)
    # The knowledge subscriber may still be writing the last events: wait for the stream's count.
    ids = await event_ids(js, garbage)
    await until(lambda: len(store_rows(db)) >= len(set(ids)), within=60, what="store caught up")
    ids = await event_ids(js, garbage)
    rows = store_rows(db)
    assert_exactly_once(ids, rows)
    if not garbage:
        letters = await dead_letters(js)
        assert not letters, [(d.consumer, d.reason) for d in letters[:3]]
    return {"tasks": len(task_ids), "events": len(ids), "stored": len(rows)}


async def event_ids(js: JetStreamContext, garbage: bool) -> list[str]:
    """Ids of the events in the stream (with ``garbage``: only of the messages that are events, on
    their own subject)."""
    if not garbage:
        return await stream_ids(js)
    out = []
    for msg in await raw_messages(js):
        try:
            event = decode(msg.data or b"")
        except ContractError:
            continue
        if event.subject() == msg.subject:  # a misrouted event is dead-lettered, not stored
            out.append(event.id)
    return out
