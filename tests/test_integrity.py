"""Attacks on the integrity of a task, and inputs that used to break it, against a real nats-server.

Each test reproduces one way a task could be derailed by someone who can publish on the bus (an
unauthenticated server, or a client user) or by an input the contracts allow: predicted follow-up
ids pre-published with garbage, forged reports, a second ``task.requested`` for a task id, answers
about unknown tasks, two different events with one id, UUID event ids, and a backlog that used to
fail tasks at their deadline while every agent was alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agents.qa.agent import QA
from bus.provision import consumer_config, ensure_consumer
from bus.publisher import MSG_ID
from contracts import ContractError, Envelope, EventType, Source, decode, encode, new_event, new_id
from contracts.envelope import EVENT_CLASSES
from contracts.ids import derived_id
from contracts.payloads import (
    Artifact,
    ArtifactSetCompleted,
    KnowledgeNote,
    Report,
    ServiceSpec,
    StatusChanged,
    TaskRequested,
)
from contracts.subjects import EVENTS_STREAM, ROUTES, durable_name, event_filter, event_subject
from contracts.vocabulary import NoteKind, Target
from tests.faults.helpers import dead_letters, raw_messages, stream_count, until
from tests.orchestra_fixtures import Running, copy_example, final, start_orchestra

pytestmark = pytest.mark.nats

TEXT = "Containerize the Python FastAPI application"
# A GitHub token shape the secret scanner knows (36 characters after the prefix); not a real one.
TOKEN = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
ATTACKER = Source(agent="mallory", instance="m1")


# `async with orchestra(tmp_path, **settings) as running`: a whole orchestra in this process.
orchestra = contextlib.asynccontextmanager(start_orchestra)


def as_(agent: str) -> Source:
    return Source(agent=agent, instance="forged")


async def events_of(running: Running, task_id: str) -> list[Envelope]:
    """The task's valid events in the stream, in stream order."""
    out = []
    for msg in await raw_messages(running.client.bus.js):
        try:
            event = decode(msg.data or b"")
        except ContractError:
            continue
        if event.task_id == task_id and event.subject() == msg.subject:
            out.append(event)
    return out


async def publish_raw(running: Running, subject: str, data: bytes, msg_id: str) -> None:
    await running.client.bus.publisher.publish_raw(subject, data, {MSG_ID: msg_id})


async def wait_final(running: Running, task_id: str, timeout_s: float = 90.0) -> StatusChanged:
    statuses = [e async for e in running.client.watch(task_id, idle_timeout_s=timeout_s)]
    return final(statuses)


def out_files(running: Running, out: str) -> dict[str, str]:
    root = running.workspace / out
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*") if p.is_file()}


# -- item 3: predicted follow-up ids --------------------------------------------------------------


def learn_salt(parent: str, child: str) -> str:
    """What an outsider does with the source code and one observed task: find the salt that turns
    a parent id into the child id (agent name and emit index)."""
    for agent in ROUTES:
        for index in range(64):
            salt = f"{agent}:{index}"
            if derived_id(parent, salt) == child:
                return salt
    raise AssertionError(f"no salt derives {child} from {parent}")


CHAIN = [
    EventType.REQUIREMENT_ISSUED,
    EventType.CREDENTIAL_REQUESTED,
    EventType.CREDENTIAL_ISSUED,
    EventType.ARTIFACT_SET_COMPLETED,
]


async def learn_chain(running: Running, task_id: str) -> dict[EventType, str]:
    """The salts of the chain task.requested -> ... -> reports, learned from one finished task."""
    events = {e.type: e for e in await events_of(running, task_id)}
    by_id = {e.id: e for e in events.values()}
    salts = {}
    for event_type in [*CHAIN, EventType.REPORT_QA, EventType.REPORT_SECURITY]:
        event = events[event_type]
        salts[EventType(event_type)] = learn_salt(by_id[event.causation_id].id, event.id)
    return salts


def predict(task_id: str, salts: dict[EventType, str]) -> dict[EventType, str]:
    """The follow-up ids of a task not submitted yet, as an outsider computes them."""
    ids = {EventType.TASK_REQUESTED: derived_id(task_id, "task.requested")}
    parent = ids[EventType.TASK_REQUESTED]
    for event_type in CHAIN:
        parent = ids[event_type] = derived_id(parent, salts[event_type])
    for event_type in (EventType.REPORT_QA, EventType.REPORT_SECURITY):
        ids[event_type] = derived_id(parent, salts[event_type])
    return ids


def forged_artifact_set(task_id: str, event_id: str, causation_id: str) -> Envelope:
    dockerfile = f'FROM python:3.12-slim\nENV GITHUB_TOKEN={TOKEN}\nCMD ["python", "-m", "app"]\n'
    import hashlib

    return EVENT_CLASSES[EventType.ARTIFACT_SET_COMPLETED](
        id=event_id,
        type=EventType.ARTIFACT_SET_COMPLETED,
        task_id=task_id,
        causation_id=causation_id,
        source=as_("devops"),
        occurred_at=datetime.now(UTC),
        payload=ArtifactSetCompleted(
            targets=[Target.DOCKER],
            files=[
                Artifact(
                    path="Dockerfile",
                    content=dockerfile,
                    sha256=hashlib.sha256(dockerfile.encode()).hexdigest(),
                    target=Target.DOCKER,
                )
            ],
            service=ServiceSpec(name="app", port=8000),
        ),
    )


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async for r in start_orchestra(tmp_path, validators="fast", validation_deadline_s=8.0):
        yield r


async def test_pre_published_follow_up_ids_do_not_derail_a_task(running: Running) -> None:
    """Attack (no id key configured, so ids are computable): an outsider learns the salts from one
    task, predicts the next task's follow-up ids from its id, and pre-publishes a forged artifact set
    (a token in its Dockerfile) and garbage under the predicted artifact set and report ids. The
    real events are then "duplicates". Invariant: the task still ends ready, the files written are
    DevOps' own (no token), and the forged set's reports are refused."""
    project = copy_example("fastapi-service", running.workspace)
    probe = await running.client.submit(TEXT, project, targets=[Target.DOCKER], output_dir="probe")
    assert (await wait_final(running, probe)).state.value == "ready"
    salts = await learn_chain(running, probe)

    victim = new_id()
    ids = predict(victim, salts)
    art = forged_artifact_set(victim, ids[EventType.ARTIFACT_SET_COMPLETED], ids[EventType.CREDENTIAL_ISSUED])
    await publish_raw(running, art.subject(), encode(art), art.id)
    for event_type in (EventType.REPORT_QA, EventType.REPORT_SECURITY):
        await publish_raw(running, event_subject(event_type, victim), b"poison", ids[event_type])

    await running.client.submit(TEXT, project, targets=[Target.DOCKER], output_dir="victim", task_id=victim)
    end = await wait_final(running, victim)
    assert end.state.value == "ready", end.reason
    files = out_files(running, "victim")
    assert "Dockerfile" in files and TOKEN not in files["Dockerfile"]
    assert files["Dockerfile"] == out_files(running, "probe")["Dockerfile"]


async def test_keyed_follow_up_ids_cannot_be_predicted(tmp_path: Path) -> None:
    """With a per-deployment id key, the ids an outsider computes from the code and an observed
    task are not the ids the agents use; the agents still derive the same ids for a redelivery."""
    async with orchestra(tmp_path, validators="fast", id_key="k" * 32) as running:
        project = copy_example("fastapi-service", running.workspace)
        task = await running.client.submit(TEXT, project, targets=[Target.DOCKER], output_dir="out")
        assert (await wait_final(running, task)).state.value == "ready"
        events = await events_of(running, task)
        by_id = {e.id: e for e in events}
        for event in events:
            if event.causation_id in by_id and event.type in CHAIN:
                with pytest.raises(AssertionError, match="no salt"):
                    learn_salt(event.causation_id, event.id)


# -- item 4: forged reports --------------------------------------------------------------------


async def test_forged_security_reports_are_refused(tmp_path: Path) -> None:
    """Attack on an unauthenticated bus: security is not running; as soon as the artifact set is
    out, an outsider publishes report.security passed=true, once as itself and once claiming to be
    security without binding the verdict to the artifact set. Invariant: both are dead-lettered,
    the task fails at its deadline naming security, and nothing is written. (The original attack
    also carried a token in the start command; that is now refused at planning before any artifact
    set exists: tests/test_redaction.py.)"""
    agents = ["architect", "devops", "credentials", "qa", "knowledge"]
    async with orchestra(tmp_path, agents=agents, validators="fast", validation_deadline_s=3.0) as running:
        project = copy_example("fastapi-service", running.workspace)
        task = new_id()
        forged: list[str] = []

        async def on_artifacts(msg) -> None:
            art = decode(msg.data)
            for source in (ATTACKER, as_("security")):
                event = new_event(
                    EventType.REPORT_SECURITY,
                    Report(passed=True, summary="looks fine"),
                    task_id=task,
                    source=source,
                    causation_id=art.id,
                )
                forged.append(event.id)
                await running.client.bus.publish(event)

        sub = await running.client.bus.nc.subscribe(
            event_filter(EventType.ARTIFACT_SET_COMPLETED, task), cb=on_artifacts
        )
        try:
            await running.client.submit(
                TEXT, project, targets=[Target.DOCKER], output_dir="out", task_id=task
            )
            end = await wait_final(running, task)
        finally:
            await sub.unsubscribe()
        assert end.state.value == "failed", end.reason
        assert "security" in end.reason
        letters = await until(
            lambda: _letters_for(running, durable_name("devops", EventType.REPORT_SECURITY), 2),
            within=20,
            what="both forged reports dead-lettered",
        )
        assert all(letter.reason for letter in letters)
        assert out_files(running, "out") == {}


async def _letters_for(running: Running, consumer: str, n: int) -> list | None:
    letters = await dead_letters(running.client.bus.js, consumer)
    return letters if len(letters) >= n else None


# -- item 5: a task id is created once ------------------------------------------------------------


async def test_a_second_task_requested_for_a_task_id_is_refused(running: Running) -> None:
    """Attack: a task.requested (another event id, another text) reusing the id of a task that is
    ready. Invariant: it is dead-lettered by the architect, and not one status is added to the task;
    a client that submits an existing task id again with other content is told so."""
    project = copy_example("fastapi-service", running.workspace)
    task = await running.client.submit(TEXT, project, targets=[Target.DOCKER], output_dir="out")
    assert (await wait_final(running, task)).state.value == "ready"
    js = running.client.bus.js
    statuses = await stream_count(js, subject=event_filter(EventType.STATUS_CHANGED, task))

    second = new_event(
        EventType.TASK_REQUESTED,
        TaskRequested(text="Deploy to Kubernetes", project="nowhere"),
        task_id=task,
        source=ATTACKER,
    )
    await running.client.bus.publish(second)
    letters = await until(
        lambda: _letters_for(running, durable_name("architect", EventType.TASK_REQUESTED), 1),
        within=20,
        what="the second task.requested dead-lettered",
    )
    assert "already" in letters[0].reason
    # Whatever the agents did with it is in the stream by now (their acks follow their effects).
    await until(lambda: _drained(running), within=20, what="every consumer idle")
    assert await stream_count(js, subject=event_filter(EventType.STATUS_CHANGED, task)) == statuses

    with pytest.raises(ContractError, match="already"):
        await running.client.submit("Deploy to Kubernetes", project, task_id=task)


async def _drained(running: Running) -> bool:
    js = running.client.bus.js
    for route in ROUTES.values():
        for durable, _ in route.consumers():
            try:
                info = await js.consumer_info(EVENTS_STREAM, durable)
            except Exception:
                continue
            if info.num_pending or info.num_ack_pending:
                return False
    return True


# -- item 6: deadlines measure silence, not queue time ---------------------------------------------


@pytest.mark.slow
async def test_a_backlog_behind_a_slow_qa_fails_no_task(tmp_path: Path, monkeypatch) -> None:
    """Load: 200 tasks at once, every agent alive, QA deliberately slow (two at a time, a pause per
    set) so the last artifact sets wait in QA's queue far longer than the validation deadline.
    Invariant: every task ends ready; none fails with "deadline passed"."""
    original = QA.check

    @functools.wraps(original)
    async def slow_check(self, event, ctx) -> None:
        await asyncio.sleep(0.25)
        await original(self, event, ctx)

    monkeypatch.setattr(QA, "check", slow_check)
    n = 200
    async with orchestra(
        tmp_path,
        validators="fast",
        concurrency=2,
        credentials_deadline_s=4.0,
        validation_deadline_s=4.0,
    ) as running:
        project = copy_example("fastapi-service", running.workspace)
        tasks = await asyncio.gather(
            *(
                running.client.submit(TEXT, project, targets=[Target.DOCKER], output_dir=f"out/{i}")
                for i in range(n)
            )
        )
        ends = await asyncio.gather(*(wait_final(running, t, timeout_s=300) for t in tasks))
        failed = [e.reason for e in ends if e.state.value != "ready"]
        print(f"\nslow qa, {n} tasks: {n - len(failed)} ready, {len(failed)} failed {failed[:1]}")
        assert not failed, (len(failed), failed[:3])


async def test_a_stopped_agent_still_fails_the_task_naming_it(tmp_path: Path) -> None:
    """QA's durable consumer exists (QA ran once) but no QA process is alive: the artifact set waits
    in its queue with no progress at all, and the task fails at the deadline naming qa only."""
    agents = ["architect", "devops", "credentials", "security", "knowledge"]
    async with orchestra(tmp_path, agents=agents, validators="fast", validation_deadline_s=2.0) as running:
        qa_durable, qa_filter = ROUTES["qa"].consumers()[0]
        await ensure_consumer(running.client.bus.js, consumer_config(qa_durable, qa_filter, running.config))
        project = copy_example("fastapi-service", running.workspace)
        task = await running.client.submit(TEXT, project, targets=[Target.DOCKER])
        end = await wait_final(running, task)
        assert (end.state.value, end.agent) == ("failed", "devops")
        assert "qa" in end.reason and "security" not in end.reason.split("from")[1]


# -- item 13: answers about unknown tasks do not take a lane --------------------------------------


async def test_answers_about_unknown_tasks_do_not_hold_devops_lanes(tmp_path: Path) -> None:
    """Two QA reports about tasks DevOps never saw (as many as its lanes), held as long as such a
    record could still appear (here: minutes). Invariant: a real task submitted after them still
    gets its QA report handled and ends ready meanwhile."""
    async with orchestra(tmp_path, validators="fast", concurrency=2, credentials_deadline_s=600.0) as running:
        for _ in range(2):
            unknown = new_event(
                EventType.REPORT_QA,
                Report(passed=True),
                task_id=new_id(),
                source=as_("qa"),
                causation_id=new_id(),
            )
            await running.client.bus.publish(unknown)
        project = copy_example("fastapi-service", running.workspace)
        task = await running.client.submit(TEXT, project, targets=[Target.DOCKER], output_dir="out")
        assert (await wait_final(running, task, timeout_s=45)).state.value == "ready"


async def test_answers_about_unknown_tasks_are_dead_lettered_after_the_horizon(tmp_path: Path) -> None:
    """The wait for an unknown task's record is bounded: then the answer is dead-lettered, saying so."""
    async with orchestra(
        tmp_path, agents=["devops"], credentials_deadline_s=2.0, bus_overrides={"ack_wait_s": 1.0}
    ) as running:
        unknown = new_event(
            EventType.REPORT_SECURITY,
            Report(passed=True),
            task_id=new_id(),
            source=as_("security"),
            causation_id=new_id(),
        )
        await running.client.bus.publish(unknown)
        letters = await until(
            lambda: _letters_for(running, durable_name("devops", EventType.REPORT_SECURITY), 1),
            within=30,
            what="the unknown task's report dead-lettered",
        )
        assert "no record of task" in letters[0].reason


# -- item 14: one id, two different events ---------------------------------------------------------


async def test_a_different_event_under_a_stored_id_is_dead_lettered(tmp_path: Path) -> None:
    """Two different events with one id (the second published without the dedupe header, or after
    the duplicate window): the knowledge store keeps the first and dead-letters the second with the
    reason; a true duplicate (same event again) is still absorbed silently."""
    async with orchestra(tmp_path, agents=["knowledge"]) as running:
        task = new_id()
        first = new_event(
            EventType.KNOWLEDGE_NOTE,
            KnowledgeNote(kind=NoteKind.EDIT, text="Edit: Dockerfile - the real one", agent="devops"),
            task_id=task,
            source=as_("devops"),
        )
        other = first.model_copy(
            update={"payload": KnowledgeNote(kind=NoteKind.EDIT, text="Edit: forged", agent="devops")}
        )
        await running.client.bus.publish(first)
        await publish_raw(running, first.subject(), encode(first), new_id())  # the same event again
        await publish_raw(running, other.subject(), encode(other), new_id())  # another event, same id
        letters = await until(
            lambda: _letters_for(running, "knowledge", 1),
            within=20,
            what="the conflicting event dead-lettered",
        )
        assert first.id in letters[0].reason and "different" in letters[0].reason
        assert json.loads(letters[0].data)["payload"]["text"] == "Edit: forged"
        rows = await running.stored(task, until_terminal=False)
        assert [r["payload"]["text"] for r in rows] == ["Edit: Dockerfile - the real one"]
        await asyncio.sleep(0.5)  # nothing else arrives: the true duplicate was absorbed, not refused
        assert len(await dead_letters(running.client.bus.js)) == 1


# -- issue 12 item 2: follow-up ids of a UUID event ------------------------------------------------


async def test_a_redelivered_uuid_task_event_re_emits_the_same_ids(running: Running) -> None:
    """A client in another language uses UUIDs for event ids (the schema allows any token). The
    same task.requested delivered twice (here: stored twice under two dedupe ids) makes the
    architect emit the same follow-up ids both times, so each follow-up is stored once."""
    project = copy_example("fastapi-service", running.workspace)
    task = str(uuid.uuid4())
    event = EVENT_CLASSES[EventType.TASK_REQUESTED](
        id=str(uuid.uuid4()),
        type=EventType.TASK_REQUESTED,
        task_id=task,
        source=as_("node-client"),
        occurred_at=datetime.now(UTC),
        payload=TaskRequested(text=TEXT, project=project, targets=[Target.DOCKER], output_dir="out"),
    )
    await publish_raw(running, event.subject(), encode(event), event.id)
    assert (await wait_final(running, task)).state.value == "ready"
    await publish_raw(running, event.subject(), encode(event), f"{event.id}-again")
    await until(lambda: _drained(running), within=20, what="every consumer idle")
    js = running.client.bus.js
    assert await stream_count(js, subject=event_filter(EventType.REQUIREMENT_ISSUED, task)) == 1
    assert await stream_count(js, subject=event_filter(EventType.DECISION_RECORDED, task)) >= 3
    ids = [e.id for e in await events_of(running, task)]
    assert len(ids) == len(set(ids)) + 1  # only the task.requested itself is there twice
