"""What README.md tells client authors, checked against a real nats-server and the agents: the
subject filter for all events of a task, the duplicate window and what a plain NATS request
with Nats-Msg-Id gets back (the `nats req` example), and where files go without output_dir."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from bus.config import BusConfig
from contracts import EventType, encode, new_event, new_id
from contracts.payloads import KnowledgeNote
from contracts.subjects import EVENTS_STREAM, event_subject
from contracts.vocabulary import NoteKind
from tests.faults.samples import SRC
from tests.orchestra_fixtures import Running, copy_example, final, start_orchestra

pytestmark = pytest.mark.nats


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async for r in start_orchestra(tmp_path):
        yield r


def note(task_id: str) -> bytes:
    payload = KnowledgeNote(kind=NoteKind.EDIT, text="client fact", agent="node-client")
    return encode(new_event(EventType.KNOWLEDGE_NOTE, payload, task_id=task_id, source=SRC))


def test_every_event_type_is_two_subject_tokens() -> None:
    """Invariant: each event type has exactly one dot, so `orchestra.evt.*.*.<task>` covers every
    event of a task and `orchestra.evt.*.<task>` none."""
    assert all(t.value.count(".") == 1 for t in EventType)


async def test_task_filter_with_two_wildcards_gets_all_events_of_the_task(running: Running) -> None:
    """Invariant: on a real server `orchestra.evt.*.*.<task>` receives the task's events of
    every type; `orchestra.evt.*.<task>` receives nothing."""
    nc = await nats.connect(running.server.url)
    try:
        task_id = new_id()
        right = await nc.subscribe(f"orchestra.evt.*.*.{task_id}")
        wrong = await nc.subscribe(f"orchestra.evt.*.{task_id}")
        for event_type in EventType:
            await nc.publish(event_subject(event_type, task_id), b"{}")  # core NATS: not stored
        await nc.flush()
        got = [(await right.next_msg(timeout=2)).subject for _ in EventType]
        assert sorted(got) == sorted(event_subject(t, task_id) for t in EventType)
        with pytest.raises(nats.errors.TimeoutError):
            await wrong.next_msg(timeout=0.3)
    finally:
        await nc.close()


async def test_a_request_with_nats_msg_id_returns_the_pub_ack_and_dedupes(running: Running) -> None:
    """Invariant: what `nats req SUBJECT BODY -H Nats-Msg-Id:ID` does: the reply is the PubAck
    JSON; the same id again within the duplicate window (120 s by default) says duplicate."""
    nc = await nats.connect(running.server.url)
    try:
        info = await nc.jetstream().stream_info(EVENTS_STREAM)
        assert info.config.duplicate_window == BusConfig().duplicate_window_s == 120
        task_id = new_id()
        data = note(task_id)
        event_id = json.loads(data)["id"]
        subject = event_subject(EventType.KNOWLEDGE_NOTE, task_id)
        first = await nc.request(subject, data, timeout=5, headers={"Nats-Msg-Id": event_id})
        again = await nc.request(subject, data, timeout=5, headers={"Nats-Msg-Id": event_id})
        ack, repeat = json.loads(first.data), json.loads(again.data)
        assert ack["stream"] == EVENTS_STREAM and "duplicate" not in ack, ack
        assert repeat == {**ack, "duplicate": True}, repeat
    finally:
        await nc.close()


async def test_without_output_dir_files_go_into_the_project(running: Running) -> None:
    """Invariant: a task with no output_dir writes its files into the project folder itself
    (the README warns client authors)."""
    project = copy_example("fastapi-service", running.workspace)
    end = final(await running.run_task("Containerize the Python FastAPI application", project))
    assert end.state.value == "ready", end.reason
    assert end.output_dir == str(running.workspace / project)
    assert (running.workspace / project / "Dockerfile").is_file()
