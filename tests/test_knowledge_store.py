"""The knowledge store on a real SQLite file: idempotent inserts, FTS search, filters, history."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agents.knowledge.store import KnowledgeStore, fts_query
from contracts import EventType, Source, new_event, new_id
from contracts.payloads import DecisionRecorded, KnowledgeNote, StatusChanged
from contracts.vocabulary import DeploymentState, NoteKind

ARCH = Source(agent="architect", instance="a1")
DEVOPS = Source(agent="devops", instance="d1")


def sample(task: str) -> list:
    decision = new_event(
        EventType.DECISION_RECORDED,
        DecisionRecorded(topic="platform", decision="kubernetes with HPA", rationale="stateless web service"),
        task_id=task,
        source=ARCH,
    )
    edit = new_event(
        EventType.KNOWLEDGE_NOTE,
        KnowledgeNote(
            kind=NoteKind.EDIT, text="Edit: Dockerfile - Created production-ready image", agent="devops"
        ),
        task_id=task,
        source=DEVOPS,
        causation_id=decision.id,
    )
    done = new_event(
        EventType.STATUS_CHANGED,
        StatusChanged(state=DeploymentState.READY, previous=DeploymentState.VALIDATING, agent="devops"),
        task_id=task,
        source=DEVOPS,
        causation_id=edit.id,
    )
    return [decision, edit, done]


async def test_duplicates_are_absorbed_and_search_finds_by_text_type_agent_task(tmp_path: Path) -> None:
    store = await KnowledgeStore.open(tmp_path / "k.sqlite3")
    task = new_id()
    events = sample(task)
    assert (await store.add_batch(events)).added == 3
    again = await store.add_batch(events[1:])  # redelivered after commit, before ack
    assert (again.added, again.conflicts) == (0, {})
    assert await store.count() == 3

    hits = await store.search("architect decisions")
    assert [h["id"] for h in hits] == [events[0].id]
    assert [h["id"] for h in await store.search(type="edit")] == [events[1].id]
    assert [h["id"] for h in await store.search(type="decision")] == [events[0].id]
    assert [h["id"] for h in await store.search(type="completion")] == [events[2].id]
    assert {h["id"] for h in await store.search(agent="devops")} == {events[1].id, events[2].id}
    assert len(await store.search(task=task)) == 3
    # FTS5 syntax in user text is neutralised, never an error.
    assert [h["id"] for h in await store.search('dockerfile"*')] == [events[1].id]
    assert await store.search('NEAR( " OR') == []
    chain = await store.history(task)
    assert [r["causation_id"] for r in chain] == [None, events[0].id, events[1].id]
    await store.close()

    with sqlite3.connect(tmp_path / "k.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_fts_query_quotes_every_word() -> None:
    assert fts_query('architect "decisions" OR x*') == '"architect" "decisions" "OR" "x"'
    assert fts_query("  ") == ""


async def test_another_event_under_a_stored_id_is_a_conflict_not_a_silent_drop(tmp_path: Path) -> None:
    """Invariant: the same event again (another time, another replica) is absorbed; a different
    event under a stored id, or under an id earlier in the same batch, is refused and named."""
    store = await KnowledgeStore.open(tmp_path / "k.sqlite3")
    task = new_id()
    decision, edit, done = sample(task)
    assert (await store.add_batch([decision])).added == 1
    replayed = decision.model_copy(update={"source": Source(agent="architect", instance="a2")})
    forged = decision.model_copy(
        update={"payload": DecisionRecorded(topic="platform", decision="a forged one", rationale="")}
    )
    twin = edit.model_copy(
        update={"payload": KnowledgeNote(kind=NoteKind.EDIT, text="other", agent="devops")}
    )
    result = await store.add_batch([replayed, forged, edit, twin, done])
    assert result.added == 2
    assert sorted(result.conflicts) == [1, 3]
    assert decision.id in result.conflicts[1] and "different event" in result.conflicts[1]
    assert "kubernetes with HPA" in (await store.history(task))[0]["text"]
    assert {r["id"] for r in await store.history(task)} == {decision.id, edit.id, done.id}
    await store.close()


async def test_a_redelivered_event_that_held_a_secret_is_absorbed_not_a_conflict(tmp_path: Path) -> None:
    """The store keeps the masked copy of what a client sent unmasked; the same event delivered
    again (a knowledge restart before its ack) must be compared in that form and absorbed, not
    dead-lettered as "a different event under a stored id"."""
    store = await KnowledgeStore.open(tmp_path / "k.sqlite3")
    note = new_event(
        EventType.KNOWLEDGE_NOTE,
        KnowledgeNote(kind=NoteKind.EDIT, text="rotated DB_PASSWORD=hunter2hunter2", agent="ops"),
        task_id=new_id(),
        source=Source(agent="client", instance="go-client"),
    )
    assert (await store.add_batch([note])).added == 1
    again = await store.add_batch([note])
    assert (again.added, again.conflicts) == (0, {})
    [row] = await store.history(note.task_id)
    assert "hunter2" not in row["text"]
    await store.close()
