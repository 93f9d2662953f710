"""Faults while tasks travel the whole orchestra, every agent its own OS process (`orchestra agent`).

Invariant everywhere: every task reaches exactly one terminal status (here: ready), with one artifact
set; every event the server acknowledged is in the knowledge store exactly once; no dead letters.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bus.client import OrchestraClient
from bus.errors import PublishFailed
from contracts import new_id
from contracts.vocabulary import Target
from tests.faults.flow import TEXT, check_invariants, copy_fastapi, submit, tasks_in, terminal_states
from tests.faults.helpers import fast_config, until
from tests.faults.procs import Fleet
from tests.faults.servers import RestartableServer

pytestmark = [pytest.mark.nats, pytest.mark.slow]

AGENT_NAMES = ["architect", "devops", "credentials", "qa", "security", "knowledge"]
# The faults are in the transport, not the validators: QA's in-process checks, security's own
# rules without checkov (seconds per artifact set on this machine).
QUICK = {"ORCHESTRA_VALIDATORS": "fast", "ORCHESTRA_SECURITY_CHECKOV": "false"}


@pytest.fixture
def server(tmp_path: Path) -> AsyncIterator[RestartableServer]:
    srv = RestartableServer(tmp_path / "nats").start()
    yield srv
    srv.stop()


@pytest.fixture
async def fleet(tmp_path: Path, server: RestartableServer) -> AsyncIterator[Fleet]:
    f = Fleet(server.url, tmp_path, env=QUICK)
    try:
        yield f
    finally:
        await f.stop()


async def submit_retrying(client: OrchestraClient, project: str, output: str) -> str:
    """A publisher that retries through an outage: the same task id is the same event."""
    task_id = new_id()
    while True:
        try:
            return await client.submit(
                TEXT, project, targets=[Target.DOCKER], output_dir=output, task_id=task_id
            )
        except PublishFailed:
            await asyncio.sleep(0.2)


@pytest.mark.parametrize(("kill", "outage_s"), [(False, 1.0), (True, 5.0)], ids=["sigterm-1s", "sigkill-5s"])
async def test_server_stopped_mid_flow_tasks_complete(
    tmp_path: Path, server: RestartableServer, fleet: Fleet, kill: bool, outage_s: float
) -> None:
    """Invariant: the server stopped (SIGTERM, 1 s) or crashed (SIGKILL, 5 s: longer than one
    reconnect attempt allows, the budget agents start with) while tasks are in flight, restarted on
    the same store: agents reconnect and resume, every task ends ready once, nothing acknowledged is
    lost or stored twice; a task submitted after the outage completes too."""
    project = copy_fastapi(tmp_path / "workspace")
    await fleet.start(AGENT_NAMES)
    client = await OrchestraClient.open(fast_config(server.url))
    db = tmp_path / "knowledge.sqlite3"
    try:
        before = [await submit_retrying(client, project, f"before/{i}") for i in range(8)]
        # Stop the server while the tasks are being worked on, not before and not after.
        await until(lambda: tasks_in(db, "generating"), within=60, what="work under way")
        unfinished = len(set(before) - set(terminal_states(db)))
        await server.restart(kill=kill, outage_s=outage_s)
        after = [await submit_retrying(client, project, f"after/{i}") for i in range(2)]
        counts = await check_invariants(client.bus.js, db, before + after)
        assert all(p.exited is None for p in fleet.procs), [
            p.tag for p in fleet.procs if p.exited is not None
        ]
        print(f"server {'SIGKILL' if kill else 'SIGTERM'} {outage_s}s ({unfinished} unfinished): {counts}")
    finally:
        await client.close()
    # And the agents themselves stop as a container runtime stops them: SIGTERM, drained, exit 0,
    # well inside a 30 s grace period.
    started = time.monotonic()
    assert await asyncio.gather(*(p.stop(within=30) for p in fleet.procs)) == [0] * len(fleet.procs)
    assert time.monotonic() - started < 15


# Each agent dies once (SIGKILL, by its own hand) at its worst moment: effects done, ack not sent.
CRASH_POINTS = {
    # follow-ups published and acknowledged by the server, input not acked
    "architect": "agents.worker:Worker._dispatch:after:task.requested",
    # artifact set published, task state not yet written
    "devops": "agents.lifecycle:TaskStore.update:before",
    "credentials": "agents.worker:Worker._dispatch:after:credential.requested",
    # killed in the middle of handling, before any effect
    "qa": "agents.qa.agent:QA.check:before",
    "security": "agents.worker:Worker._dispatch:after:artifact_set.completed",
    # committed to SQLite, not acked
    "knowledge": "agents.knowledge.store:KnowledgeStore.add_batch:after",
}


async def test_agents_killed_before_their_ack_tasks_complete_without_duplicates(
    tmp_path: Path, server: RestartableServer, fleet: Fleet
) -> None:
    """Invariant: every agent process SIGKILLed once while handling, before its ack (after its
    effects, or halfway through them); a new process of that agent gets the redelivery. Every task
    still ends ready, once, with one artifact set; the re-emitted follow-ups carry the same ids so
    the stream and the store hold each event once; nothing is dead-lettered."""
    project = copy_fastapi(tmp_path / "workspace")
    crashing = [fleet.add(name, crash=point, tag=f"{name}-crashing") for name, point in CRASH_POINTS.items()]
    await asyncio.gather(*(p.wait_ready() for p in crashing))
    client = await OrchestraClient.open(fast_config(server.url))
    db = tmp_path / "knowledge.sqlite3"
    try:
        tasks = await submit(client, project, 4)
        for proc in crashing:
            assert await proc.wait_exit(within=60) == -9, proc.log_tail()
        # Every crash happened; the replacements pick up what the dead ones held.
        await fleet.start(list(CRASH_POINTS))
        counts = await check_invariants(client.bus.js, db, tasks)
        print(f"agents killed before ack: {counts}")
    finally:
        await client.close()
