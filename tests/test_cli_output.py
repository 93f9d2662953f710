"""What `watch`, `history` and `knowledge search` print, against a real server and knowledge agent:
terminal escapes from events are shown escaped, --json gives the structured event, and a history
far over the server's max_payload arrives whole (in pages) or says where it was cut."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agents.knowledge.store import KnowledgeStore
from bus.client import client_source
from bus.errors import RequestFailed
from bus.runtime import Bus
from contracts import EventType, new_event, new_id
from contracts.payloads import Finding, StatusChanged, TaskRequested
from contracts.vocabulary import DeploymentState, NoteKind, Severity
from tests.orchestra_fixtures import Running, start_orchestra

pytestmark = pytest.mark.nats

ORCHESTRA = str(Path(sys.executable).parent / "orchestra")
# OSC (retitle the window), CSI (clear the screen; 8-bit CSI too), a bidi override and a forged line.
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\x9b31m\u202eevil\u200b\nready: all checks passed"
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\u200b")


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NATS_URL" and not k.startswith("ORCHESTRA_")}
    return subprocess.run(
        [ORCHESTRA, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
async def knowledge(tmp_path: Path) -> AsyncIterator[Running]:
    async for r in start_orchestra(tmp_path, agents=["knowledge"]):
        yield r


async def stored(r: Running, task_id: str, count: int) -> None:
    """Wait until the knowledge agent committed ``count`` events of the task."""
    store = await KnowledgeStore.open(r.settings.knowledge_db)
    try:
        for _ in range(600):
            if len(await store.events(task_id)) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"only {len(await store.events(task_id))} of {count} events stored")
    finally:
        await store.close()


async def hostile_task(r: Running) -> tuple[str, str]:
    """A task whose request, terminal status (reason, agent, finding) and note carry escapes."""
    task_id = new_id()
    source = client_source()
    request = new_event(
        EventType.TASK_REQUESTED, TaskRequested(text=HOSTILE, project="p"), task_id=task_id, source=source
    )
    finding = Finding(severity=Severity.HIGH, file=f"Dockerfile{HOSTILE}", rule="R1", message=HOSTILE)
    status = StatusChanged(
        state=DeploymentState.FAILED, agent="qa\x1b[8m", reason=HOSTILE, findings=[finding]
    )
    end = new_event(EventType.STATUS_CHANGED, status, task_id=task_id, source=source, causation_id=request.id)
    await r.client.bus.publish(request)
    await r.client.bus.publish(end)
    await r.client.note(HOSTILE, kind=NoteKind.EDIT, agent="devops", task_id=task_id)
    await stored(r, task_id, 3)
    return task_id, request.id


def assert_escaped(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr
    for ch in RAW:
        assert ch not in done.stdout, (repr(ch), done.stdout)
    assert "\\x1b]0;pwned\\x07" in done.stdout and "\\u202e" in done.stdout
    # The forged "ready" never starts a line of its own.
    assert not any(line.startswith("ready: all checks") for line in done.stdout.splitlines())


async def test_watch_history_and_search_print_escapes_escaped(knowledge: Running) -> None:
    """Item: terminal escapes in task texts reached the terminal in watch, history and search."""
    task_id, _ = await hostile_task(knowledge)
    url = knowledge.server.url
    for args in (
        ["watch", "--task", task_id],
        ["history", task_id],
        ["knowledge", "search", "", "--task", task_id],
    ):
        done = await asyncio.to_thread(cli, *args, "--nats-url", url)
        if args[0] == "watch":
            assert done.returncode == 1  # the task ended failed
            done = subprocess.CompletedProcess(done.args, 0, done.stdout, done.stderr)
        assert_escaped(done)


async def test_history_and_watch_json_give_the_structured_event(knowledge: Running) -> None:
    """Item: --json gives type, payload (with the state) and causation, not a sentence to parse.
    `history --json` and `watch --json` print one event envelope per line, the same JSON."""
    task_id, request_id = await hostile_task(knowledge)
    url = knowledge.server.url
    history = await asyncio.to_thread(cli, "history", task_id, "--json", "--nats-url", url)
    watch = await asyncio.to_thread(cli, "watch", "--task", task_id, "--json", "--nats-url", url)
    assert history.returncode == 0 and watch.returncode == 1, history.stderr + watch.stderr
    events = [json.loads(line) for line in history.stdout.splitlines()]
    assert [e["type"] for e in events] == ["task.requested", "status.changed", "knowledge.note"]
    end = events[1]
    assert end["payload"]["state"] == "failed" and end["causation_id"] == request_id
    assert end["payload"]["reason"] == HOSTILE  # JSON carries the exact text, escaped by JSON
    watched = [json.loads(line) for line in watch.stdout.splitlines()]
    assert watched == [end]


async def test_a_history_far_over_max_payload_arrives_whole_or_says_where_it_is_cut(
    knowledge: Running,
) -> None:
    """Item: with a few hundred notes the history reply was over max_payload and silently dropped
    (`orchestra history` answered nothing). Now it comes in pages; --limit cuts it, and says so."""
    task_id = new_id()
    notes = 300
    text = "Edit: Dockerfile - " + "multi-stage build with a pinned base image and a non-root user " * 60
    assert len(text) > 3_500
    for i in range(notes):
        await knowledge.client.note(f"{i:03d} {text}"[:4000], kind=NoteKind.EDIT, agent="qa", task_id=task_id)
    await stored(knowledge, task_id, notes)
    assert notes * len(text) > knowledge.client.bus.nc.max_payload  # the case that used to vanish

    url = knowledge.server.url
    whole = await asyncio.to_thread(cli, "history", task_id, "--nats-url", url)
    assert whole.returncode == 0, whole.stderr
    lines = whole.stdout.splitlines()
    assert len(lines) == notes and "cut" not in whole.stderr
    assert [line.split("edit: ")[1][:3] for line in lines] == [f"{i:03d}" for i in range(notes)]

    full = await asyncio.to_thread(cli, "history", task_id, "--json", "--nats-url", url)
    assert full.returncode == 0, full.stderr
    texts = [json.loads(line)["payload"]["text"][:3] for line in full.stdout.splitlines()]
    assert texts == [f"{i:03d}" for i in range(notes)]

    cut = await asyncio.to_thread(cli, "history", task_id, "--limit", "120", "--nats-url", url)
    assert cut.returncode == 0, cut.stderr
    assert len(cut.stdout.splitlines()) == 120
    assert "history cut at 120 of 300 events" in cut.stderr


async def test_an_answer_over_max_payload_is_an_error_not_silence(bus: Bus) -> None:
    """Any responder: a reply the server would refuse becomes an error reply naming the limit,
    instead of a timeout on the caller's side."""
    subject = f"test.rpc.big.{new_id()}"

    async def huge(_body: dict) -> str:
        return "x" * (bus.nc.max_payload + 10)

    await bus.serve(subject, huge)
    with pytest.raises(RequestFailed, match="max_payload"):
        await bus.request(subject, {}, timeout_s=5)


async def test_history_pages_fit_their_budget_and_lose_nothing(tmp_path: Path) -> None:
    """The store's pages: in order, no row lost or repeated, each within the byte budget; a row
    that cannot fit even alone is a clear error."""
    store = await KnowledgeStore.open(tmp_path / "k.sqlite3")
    try:
        task_id = new_id()
        source = client_source()
        events = [
            new_event(
                EventType.TASK_REQUESTED,
                TaskRequested(text=f"{i:02d} " + "y" * (100 * i), project="p"),
                task_id=task_id,
                source=source,
            )
            for i in range(40)
        ]
        await store.add_batch(events)
        seen: list[str] = []
        after: int | None = 0
        while after is not None:
            page = await store.history_page(task_id, after=after, limit=7, max_bytes=12_000, full=True)
            assert len(json.dumps(page)) <= 12_000 and len(page["events"]) <= 7
            assert page["total"] == 40
            seen += [row["id"] for row in page["events"]]
            after = page["next"]
        assert seen == [e.id for e in events]
        with pytest.raises(ValueError, match="more than one reply may carry"):
            await store.history_page(task_id, after=38, max_bytes=2_000, full=True)
    finally:
        await store.close()
