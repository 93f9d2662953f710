"""Garbage on every subject a running orchestra consumes (every agent its own process): no agent
crashes, every piece of garbage ends in the dead-letter stream with its reason, once per consumer
that received it, and a normal task submitted afterwards still completes."""

from __future__ import annotations

import json
import os
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agents.knowledge.rebuild import rebuild
from bus.client import OrchestraClient
from bus.deadletter import MAX_LETTER_DATA
from bus.embedded import EmbeddedServer
from bus.runtime import Bus
from contracts import MAX_EVENT_BYTES, EventType, Source, encode, new_id
from contracts.subjects import EVENTS_SUBJECTS, ROUTES, durable_name, event_filter, event_subject, owners
from tests.faults.flow import TEXT, check_invariants, copy_fastapi
from tests.faults.helpers import dead_letters, fast_config, until
from tests.faults.procs import Fleet
from tests.faults.samples import sample

pytestmark = [pytest.mark.nats, pytest.mark.slow]

AGENT_NAMES = ["architect", "devops", "credentials", "qa", "security", "knowledge"]
# Answers about a task devops never saw are held while its record could still appear: this long.
HORIZON_S = 6
QUICK = {
    "ORCHESTRA_VALIDATORS": "fast",
    "ORCHESTRA_SECURITY_CHECKOV": "false",
    "ORCHESTRA_CREDENTIALS_DEADLINE_S": str(HORIZON_S),
}


OTHER = {False: EventType.KNOWLEDGE_NOTE, True: EventType.STATUS_CHANGED}


def garbage(event_type: EventType) -> dict[str, bytes]:
    """Named pieces of bad input for one subject; none of them is a valid event."""
    good = json.loads(sample(event_type).model_dump_json(exclude_none=True))
    return {
        "random-bytes": os.urandom(96),
        "empty": b"",
        "truncated-json": json.dumps(good).encode()[:-7],
        "json-array": b"[1, 2, 3]",
        "missing-fields": json.dumps({"id": good["id"], "type": good["type"]}).encode(),
        "schema-v99": json.dumps({**good, "id": new_id(), "schema_version": 99}).encode(),
        "unknown-type": json.dumps({**good, "id": new_id(), "type": "task.exploded"}).encode(),
        "wrong-payload": json.dumps(
            {**good, "id": new_id(), "payload": {"kind": "🚀", "x": "\u202e"}}
        ).encode(),
        "over-size-limit": b'{"id": "' + b"x" * (MAX_EVENT_BYTES + 10) + b'"}',
        "nul-and-bidi": "\x00\u202e{\u200b}".encode(),
        # A valid event, on a subject that is not its own (another task's, another type's).
        "misrouted": encode(sample(OTHER[event_type == EventType.KNOWLEDGE_NOTE])),
    }


def _rows(db: Path) -> set[tuple]:
    with sqlite3.connect(db) as con:
        return set(
            con.execute("SELECT id, type, kind, task_id, causation_id, agent, text, event FROM events")
        )


def consumers_of(event_type: EventType) -> list[str]:
    """Every durable whose filter takes this event type."""
    takes = {EVENTS_SUBJECTS, event_filter(event_type)}
    return [
        durable for route in ROUTES.values() for durable, subject in route.consumers() if subject in takes
    ]


@pytest.fixture
async def orchestra(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedServer, Fleet]]:
    server = EmbeddedServer(store_dir=tmp_path / "nats").start()
    fleet = Fleet(server.url, tmp_path, env=QUICK)
    try:
        await fleet.start(AGENT_NAMES)
        yield server, fleet
    finally:
        await fleet.stop()
        server.stop()


async def test_garbage_on_every_consumed_subject(
    tmp_path: Path, orchestra: tuple[EmbeddedServer, Fleet]
) -> None:
    """Invariant: every agent still running after garbage on each subject it consumes; each piece
    dead-lettered by each consumer that got it, with a reason; a normal task then ends ready once
    and every valid event is in the knowledge store exactly once."""
    server, fleet = orchestra
    bus = await Bus.connect(fast_config(server.url), name="vandal", provision=False)
    expected: Counter[str] = Counter()
    try:
        for event_type in EventType:
            subject = event_subject(event_type, new_id())
            for name, data in garbage(event_type).items():
                await bus.publisher.publish_raw(subject, data, {"Nats-Msg-Id": f"{name}-{new_id()}"})
            for durable in consumers_of(event_type):
                expected[durable] += len(garbage(event_type))
        # Valid answers (from the agent that publishes them) about a task nobody submitted: devops
        # holds them a while, then gives up.
        for event_type in (EventType.CREDENTIAL_ISSUED, EventType.REPORT_QA, EventType.REPORT_SECURITY):
            (owner,) = owners(event_type) or ()
            await bus.publish(
                sample(event_type).model_copy(update={"source": Source(agent=owner, instance="f")})
            )
            expected[durable_name("devops", event_type)] += 1

        got: Counter[str] = Counter()

        async def all_dead_lettered() -> bool:
            got.clear()
            got.update(letter.consumer for letter in await dead_letters(bus.js))
            return sum(got.values()) >= sum(expected.values())

        try:
            await until(
                all_dead_lettered, within=60, interval=0.25, what="every piece of garbage dead-lettered"
            )
        finally:
            assert got == expected, (expected - got, got - expected)
        letters = await dead_letters(bus.js)
        assert all(letter.reason for letter in letters)
        assert sum("no record of task" in letter.reason for letter in letters) == 3
        # One piece of each kind per subject, dead-lettered by every consumer of that subject.
        per_kind = sum(len(consumers_of(t)) for t in EventType)
        assert sum(" on subject orchestra.evt." in letter.reason for letter in letters) == per_kind
        # Too big to carry whole: the letter keeps the start, the size and the digest.
        big = [letter for letter in letters if "over the" in letter.reason]
        assert len(big) == per_kind
        assert all(b.truncated and b.size and b.size > MAX_LETTER_DATA and b.sha256 for b in big)
        assert all(p.exited is None for p in fleet.procs), [
            p.tag for p in fleet.procs if p.exited is not None
        ]

        project = copy_fastapi(tmp_path / "workspace")
        async with await OrchestraClient.open(fast_config(server.url)) as client:
            task_id = await client.submit(TEXT, project, output_dir="out")
            counts = await check_invariants(bus.js, tmp_path / "knowledge.sqlite3", [task_id], garbage=True)
        assert all(p.exited is None for p in fleet.procs)
        # The store can be rebuilt from this very stream, garbage and all, to the same rows.
        rebuilt = tmp_path / "rebuilt.sqlite3"
        result = await rebuild(bus.js, rebuilt)
        assert result.stored == counts["stored"]
        assert _rows(rebuilt) == _rows(tmp_path / "knowledge.sqlite3")
        print(f"garbage: {sum(expected.values())} dead letters over {len(expected)} consumers; then {counts}")
    finally:
        await bus.close(timeout_s=2)
