"""Operator tools against a real server, run as the operator runs them (the `orchestra` command):
`orchestra dlq list|show|replay` and `orchestra knowledge rebuild`."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agents.runner import Orchestra
from agents.settings import AgentSettings
from bus.embedded import EmbeddedServer
from bus.runtime import Bus
from contracts import Envelope, EventType, Source, new_event, new_id
from contracts.payloads import DecisionRecorded, StatusChanged
from contracts.subjects import EVENTS_STREAM, event_filter
from contracts.vocabulary import DeploymentState
from tests.faults.helpers import dead_letters, fast_config, note, store_count, stream_count, until
from tests.faults.procs import ORCHESTRA

pytestmark = pytest.mark.nats


def orchestra(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NATS_URL"}
    return subprocess.run(
        [ORCHESTRA, *args, "--nats-url", url], env=env, capture_output=True, text=True, timeout=60
    )


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, done.stderr
    return lines[0]


async def cli(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(orchestra, *args, url=url)


class Live:
    def __init__(self, server: EmbeddedServer, knowledge: Orchestra, bus: Bus, db: Path) -> None:
        self.server, self.knowledge, self.bus, self.db = server, knowledge, bus, db


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[Live]:
    server = EmbeddedServer(store_dir=tmp_path / "nats").start()
    db = tmp_path / "knowledge.sqlite3"
    knowledge = Orchestra(
        ["knowledge"], fast_config(server.url), AgentSettings(knowledge_db=db), provision=True
    )
    await knowledge.start()
    bus = await Bus.connect(fast_config(server.url, max_deliver=2), name="tools", provision=True)
    try:
        yield Live(server, knowledge, bus, db)
    finally:
        await bus.close(timeout_s=2)
        await knowledge.stop()
        server.stop()


async def test_dlq_list_show_replay(live: Live) -> None:
    """Invariant: a dead letter can be found (list), read with its exact original bytes (show) and
    replayed to its original subject once the cause is fixed; a repeated replay sends nothing; the
    replayed event is still one event in the knowledge store; garbage is refused with one line."""
    task, url, bus = new_id(), live.server.url, live.bus
    broken = True
    handled: list[str] = []

    async def handler(event: Envelope) -> None:
        if broken:
            raise RuntimeError("downstream service is down")
        handled.append(event.id)

    durable = f"fragile-{task}"
    await bus.consume(
        durable=durable, filter_subject=event_filter(EventType.KNOWLEDGE_NOTE, task), handler=handler
    )
    victim = note(task, "handle me later")
    await bus.publish(victim)
    hostile = b"\x1b[2J\x1b]0;pwned\x07 not json"  # terminal escapes: clear screen, set title
    await bus.publisher.publish_raw(victim.subject(), hostile, {"Nats-Msg-Id": f"garbage-{task}"})
    await until(lambda: _n_letters(bus, durable, 2), within=20, what="two dead letters")

    listed = await cli("dlq", "list", "--json", "--consumer", durable, url=url)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(rows) == 2 and all(r["consumer"] == durable for r in rows)
    letter = next(r for r in rows if "max_deliver" in r["reason"])
    garbage = next(r for r in rows if "not valid JSON" in r["reason"])
    assert "RuntimeError: downstream service is down" in letter["reason"]

    shown = await cli("dlq", "show", letter["id"], "--json", url=url)
    assert shown.returncode == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert base64.b64decode(detail["data_b64"]) == victim.model_dump_json(exclude_none=True).encode()
    assert detail["subject"] == victim.subject()
    by_seq = await cli("dlq", "show", str(letter["seq"]), url=url)
    assert by_seq.returncode == 0 and letter["id"] in by_seq.stdout

    broken = False  # the operator fixed the cause
    replayed = await cli("dlq", "replay", letter["id"], "--json", url=url)
    assert replayed.returncode == 0, replayed.stderr
    result = json.loads(replayed.stdout)
    assert result["duplicate"] is False and result["subject"] == victim.subject()
    await until(lambda: handled == [victim.id], within=10, what="replayed event handled")
    again = await cli("dlq", "replay", letter["id"], url=url)
    assert again.returncode == 0 and "already replayed" in again.stdout
    # The server dropped the repeat: the subject holds the event, the garbage and one replay.
    assert await stream_count(bus.js, subject=victim.subject()) == 3

    refused = await cli("dlq", "replay", garbage["id"], url=url)
    assert refused.returncode == 2 and "not a valid event" in one_line_error(refused)
    shown = await cli("dlq", "show", garbage["id"], url=url)
    assert shown.returncode == 0 and "\x1b" not in shown.stdout and "\\x1b[2J" in shown.stdout
    missing = await cli("dlq", "show", "dlq-nobody-1", url=url)
    assert missing.returncode == 2 and "no dead letter" in one_line_error(missing)

    # The replay carries the same event id: the knowledge store still has the event once.
    await until(_caught_up(bus, "knowledge"), within=10, what="knowledge caught up")
    with sqlite3.connect(live.db) as con:
        (count,) = con.execute("SELECT count(*) FROM events WHERE id = ?", (victim.id,)).fetchone()
    assert count == 1


async def _n_letters(bus: Bus, durable: str, n: int) -> bool:
    return len(await dead_letters(bus.js, durable)) >= n


def _caught_up(bus: Bus, durable: str):
    async def check() -> bool:
        info = await bus.js.consumer_info(EVENTS_STREAM, durable)
        return info.num_pending == 0 and info.num_ack_pending == 0

    return check


ARCHITECT = Source(agent="architect", instance="a1")


def _mixed_history(tasks: int) -> list[Envelope]:
    events: list[Envelope] = []
    for t in range(tasks):
        task = new_id()
        decision = new_event(
            EventType.DECISION_RECORDED,
            DecisionRecorded(topic="platform", decision=f"kubernetes {t}", rationale="stateless web"),
            task_id=task,
            source=ARCHITECT,
        )
        status = new_event(
            EventType.STATUS_CHANGED,
            StatusChanged(state=DeploymentState.FAILED, previous=DeploymentState.PLANNING, agent="architect"),
            task_id=task,
            source=ARCHITECT,
            causation_id=decision.id,
        )
        events += [decision, note(task, f"Edit: Dockerfile for service {t}"), status]
    return events


COLUMNS = "id, type, kind, task_id, causation_id, agent, instance, occurred_at, text, event"


def _rows(db: Path) -> set[tuple]:
    with sqlite3.connect(db) as con:
        return set(con.execute(f"SELECT {COLUMNS} FROM events"))


def _search(db: Path, word: str) -> list[str]:
    with sqlite3.connect(db) as con:
        sql = "SELECT e.id FROM events e JOIN events_fts f ON f.rowid = e.seq WHERE events_fts MATCH ?"
        return sorted(r[0] for r in con.execute(sql, (word,)))


async def test_knowledge_rebuild_from_the_stream_matches_the_live_store(live: Live, tmp_path: Path) -> None:
    """Invariant: replaying the EVENTS stream into a new file gives the same rows as the live
    subscriber (same ids, types, texts, full events; duplicates once, garbage skipped) and the same
    full-text index; an existing --out is refused with one line."""
    bus, url = live.bus, live.server.url
    events = _mixed_history(40)
    await asyncio.gather(*(bus.publish(e) for e in events))
    await asyncio.gather(*(bus.publish(e) for e in events[:10]))  # repeats: de-duplicated
    await bus.publisher.publish_raw(
        events[0].subject(), b'{"id": "broken"', {"Nats-Msg-Id": f"broken-{new_id()}"}
    )
    await until(lambda: store_count(live.db) == len(events), within=20, what="live store caught up")
    await until(_caught_up(bus, "knowledge"), within=10, what="knowledge acked all")

    out = tmp_path / "rebuilt.sqlite3"
    done = await cli("knowledge", "rebuild", "--out", str(out), "--json", url=url)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["stored"] == len(events) and summary["invalid"] == 1
    assert summary["messages"] == len(events) + 1
    assert _rows(out) == _rows(live.db)
    assert _search(out, "dockerfile") == _search(live.db, "dockerfile") != []

    refused = await cli("knowledge", "rebuild", "--out", str(out), url=url)
    assert refused.returncode == 2 and "already exists" in one_line_error(refused)
