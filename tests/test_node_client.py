"""The Node.js client example (examples/clients/node) against a real nats-server and the agents:
it publishes a task with Nats-Msg-Id and awaits the PubAck, then follows the task's status with
an ordered consumer until a terminal state. Needs node and ``npm ci`` in that folder (make test)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.orchestra_fixtures import Running, copy_example, start_orchestra

pytestmark = pytest.mark.nats

CLIENT_DIR = Path(__file__).resolve().parent.parent / "examples" / "clients" / "node"


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async for r in start_orchestra(tmp_path):
        yield r


async def run_client(running: Running, *args: str, timeout_s: float = 240.0) -> tuple[int, str, str]:
    exe = shutil.which("node")
    assert exe, "node is not installed (Node 18+ runs the client example)"
    assert (CLIENT_DIR / "node_modules").is_dir(), f"run `npm ci` in {CLIENT_DIR} (make test does)"
    # The agents run in this event loop: the client must run beside them, not block them.
    proc = await asyncio.create_subprocess_exec(
        exe,
        str(CLIENT_DIR / "submit.mjs"),
        *args,
        env={**os.environ, "NATS_URL": running.server.url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_node_client_publishes_a_task_and_follows_it_to_ready(running: Running) -> None:
    """Invariant: the example's task is stored once (the resend is a duplicate), every status
    reaches it in order through the ordered consumer, and it exits 0 on `ready`."""
    project = copy_example("fastapi-service", running.workspace)
    code, out, err = await run_client(
        running,
        "--project",
        project,
        "--text",
        "Containerize the Python FastAPI application",
        "--output",
        "out",
        "--resend",
    )
    assert code == 0, out + err
    published = [line for line in out.splitlines() if line.startswith("published ")]
    assert len(published) == 2 and "duplicate false" in published[0] and "duplicate true" in published[1]
    states = [line.split()[1] for line in out.splitlines() if line.startswith("status ")]
    assert states == ["received", "planning", "generating", "validating", "ready"], out
    assert "terminal ready files in" in out
    assert (running.workspace / "out" / "Dockerfile").is_file()


async def test_node_client_refuses_a_bad_task_before_sending(running: Running) -> None:
    """Invariant: the example validates with the published schema (Ajv strict): an empty
    project path is refused with exit 2 and nothing is published."""
    code, out, err = await run_client(running, "--project", "")
    assert code == 2 and "invalid task.requested at /payload/project" in err, out + err
    assert "published" not in out
