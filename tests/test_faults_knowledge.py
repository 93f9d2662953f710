"""The knowledge subscriber as a real process, killed at the worst moment: after its SQLite commit,
before its ack. The stream is the truth; the store must end up with it exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.embedded import EmbeddedServer
from bus.runtime import Bus
from contracts import new_id
from contracts.subjects import EVENTS_STREAM
from tests.faults.helpers import assert_exactly_once, fast_config, note, store_rows, stream_ids, until
from tests.faults.procs import Fleet

pytestmark = pytest.mark.nats

COMMIT_THEN_DIE = "agents.knowledge.store:KnowledgeStore.add_batch:after"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(store_dir=tmp_path / "nats").start()
    yield srv
    srv.stop()


async def test_knowledge_killed_after_commit_before_ack_absorbs_the_redelivery(
    tmp_path: Path, server: EmbeddedServer
) -> None:
    """Invariant: the subscriber SIGKILLed right after committing a batch (so the batch is in SQLite
    but was never acked) -> the server redelivers that batch to the next subscriber process, whose
    INSERT OR IGNORE absorbs it: rows == distinct ids == stream messages, nothing left unacked."""
    fleet = Fleet(server.url, tmp_path)
    db = tmp_path / "knowledge.sqlite3"
    bus = await Bus.connect(fast_config(server.url), name="publisher", provision=True)
    try:
        task = new_id()
        events = [note(task, f"persist me {i}") for i in range(60)]
        for event in events:
            await bus.publish(event)
        # Started on a backlog: its first batch is large, all of it committed, none of it acked.
        crashing = fleet.add("knowledge", crash=COMMIT_THEN_DIE, tag="knowledge-crashing")
        assert await crashing.wait_exit(within=60) == -9, crashing.log_tail()
        committed = store_rows(db)
        assert committed, "the crash came after a commit, so some rows must be there"
        info = await bus.js.consumer_info(EVENTS_STREAM, "knowledge")
        # Committed but never acked: the server still owes these to someone.
        assert info.num_ack_pending >= len(committed)

        successor = fleet.add("knowledge", tag="knowledge-successor")
        await successor.wait_ready()

        async def caught_up() -> bool:
            info = await bus.js.consumer_info(EVENTS_STREAM, "knowledge")
            return info.num_ack_pending == 0 and info.num_pending == 0

        await until(caught_up, within=30, what="successor acked everything")
        ids = await stream_ids(bus.js)
        assert sorted(ids) == sorted(e.id for e in events)
        assert_exactly_once(ids, store_rows(db))
        absorbed = len(committed)
        print(f"knowledge killed after commit: {len(events)} events, {absorbed} redelivered and absorbed")
    finally:
        await bus.close(timeout_s=2)
        await fleet.stop()
