"""The `orchestra` command line as a user runs it: real processes, real server, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bus.embedded import free_port
from tests.orchestra_fixtures import Running, copy_example, start_orchestra

ORCHESTRA = str(Path(sys.executable).parent / "orchestra")


def cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NATS_URL"}
    return subprocess.run(
        [ORCHESTRA, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_unknown_agent_is_a_usage_error() -> None:
    done = cli("agent", "chef")
    assert done.returncode == 2
    assert "unknown agent 'chef'" in one_line_error(done)


def test_missing_project_is_a_usage_error(tmp_path: Path) -> None:
    done = cli(
        "task",
        "Deploy to Kubernetes",
        "--project",
        str(tmp_path / "nope"),
        "--nats-url",
        "nats://127.0.0.1:1",
    )
    assert done.returncode == 2
    assert "nope" in one_line_error(done)


def test_unreachable_server_is_one_line_and_exit_3(tmp_path: Path) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    done = cli("task", "Deploy to Kubernetes", "--project", str(tmp_path), "--nats-url", url)
    assert done.returncode == 3
    assert "cannot reach NATS" in one_line_error(done)
    done = cli("knowledge", "search", "x", "--nats-url", url)
    assert done.returncode == 3


def test_unknown_target_is_refused(tmp_path: Path) -> None:
    done = cli(
        "task", "x", "--project", str(tmp_path), "--target", "moon", "--nats-url", "nats://127.0.0.1:1"
    )
    assert done.returncode == 2
    assert "unknown target" in one_line_error(done)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async for r in start_orchestra(tmp_path):
        yield r


@pytest.mark.nats
async def test_task_wait_json_history_and_knowledge(running: Running) -> None:
    import asyncio

    project = copy_example("fastapi-service", running.workspace)
    url = running.server.url

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(*args, "--nats-url", url, cwd=running.workspace)

    done = await asyncio.to_thread(
        run,
        "task",
        "Containerize the Python FastAPI application",
        "--project",
        project,
        "--wait",
        "--json",
        "--output",
        "built",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    task_id = lines[0]["task_id"]
    states = [ln["payload"]["state"] for ln in lines[1:]]
    assert states[-1] == "ready" and "validating" in states
    assert (running.workspace / "built" / "Dockerfile").is_file()

    await running.stored(task_id)
    hist = await asyncio.to_thread(run, "history", task_id, "--json")
    assert hist.returncode == 0
    types = [json.loads(line)["type"] for line in hist.stdout.splitlines()]
    assert types[0] == "task.requested" and "report.security" in types

    note = await asyncio.to_thread(
        run,
        "knowledge",
        "store",
        "Edit: Dockerfile - Created production-ready container image",
        "--type",
        "edit",
        "--agent",
        "devops-engineer",
    )
    assert note.returncode == 0, note.stderr
    for _ in range(50):
        found = await asyncio.to_thread(
            run, "knowledge", "search", "production-ready", "--type", "edit", "--json"
        )
        if found.returncode == 0:
            break
        await asyncio.sleep(0.1)
    assert json.loads(found.stdout.splitlines()[0])["agent"] == "devops-engineer"

    failed = await asyncio.to_thread(run, "task", "make me a sandwich", "--project", project, "--wait")
    assert failed.returncode == 1
    assert "failed" in failed.stdout and "I understand" in failed.stdout
