"""A task travels the whole orchestra over a real nats-server and lands in the knowledge store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agents.qa.validators import validate
from tests.orchestra_fixtures import Running, copy_example, final, start_orchestra

pytestmark = pytest.mark.nats


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async for r in start_orchestra(tmp_path):
        yield r


async def test_containerize_fastapi_ends_ready_with_valid_files_and_full_history(running: Running) -> None:
    project = copy_example("fastapi-service", running.workspace)
    statuses = await running.run_task(
        "Containerize the Python FastAPI application", project, output_dir="out"
    )
    states = [s.payload.state.value for s in statuses]
    assert states == ["received", "planning", "generating", "validating", "ready"], [
        s.payload.reason for s in statuses
    ]
    out = running.workspace / "out"
    files = {p.relative_to(out).as_posix(): p.read_text() for p in out.rglob("*") if p.is_file()}
    assert {"Dockerfile", ".dockerignore", "docker-compose.yml"} <= set(files)
    generated = {k: v for k, v in files.items() if not k.startswith(".orchestra")}
    result = validate(generated)
    assert result.passed, result.findings

    task_id = statuses[0].task_id
    rows = await running.stored(task_id)
    ids = {r["id"] for r in rows}
    types = [r["type"] for r in rows]
    for t in (
        "task.requested",
        "decision.recorded",
        "requirement.issued",
        "credential.requested",
        "credential.issued",
        "artifact_set.completed",
        "report.qa",
        "report.security",
        "status.changed",
    ):
        assert t in types, t
    # The causal chain is closed: every event but the request answers another event of the task.
    for r in rows:
        if r["type"] == "task.requested":
            assert r.get("causation_id") is None
        else:
            assert r["causation_id"] in ids, r
    assert len(ids) == len(rows)


async def test_unknown_request_fails_saying_what_is_understood(running: Running) -> None:
    project = copy_example("fastapi-service", running.workspace)
    statuses = await running.run_task("make me a sandwich", project)
    end = final(statuses)
    assert end.state.value == "failed" and end.agent == "architect"
    assert "Kubernetes" in end.reason and "containerize" in end.reason


async def test_project_outside_the_workspace_is_refused(running: Running) -> None:
    statuses = await running.run_task("Containerize it", "../../etc")
    end = final(statuses)
    assert end.state.value == "failed" and "outside" in end.reason


async def test_agents_register_as_micro_services(running: Running) -> None:
    from agents.discovery import discover

    found = await discover(running.client.bus.nc, wait_s=0.5)
    assert sorted(a["name"] for a in found) == sorted(
        ["architect", "devops", "qa", "security", "credentials", "knowledge"]
    )
    assert all(a["version"] and a["uptime_s"] is not None for a in found)
