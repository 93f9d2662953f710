"""The agents collaborate through the bus: each flow checked for its final status, its artifacts
and its causal chain in the knowledge store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contracts.payloads import ServiceSpec
from tests.orchestra_fixtures import Running, copy_example, final, start_orchestra

pytestmark = pytest.mark.nats


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async for r in start_orchestra(tmp_path):
        yield r


def written(running: Running, out: str) -> set[str]:
    root = running.workspace / out
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


async def assert_closed_chain(running: Running, task_id: str) -> list[dict]:
    rows = await running.stored(task_id)
    ids = {r["id"] for r in rows}
    assert len(ids) == len(rows), "an event is stored twice"
    for r in rows:
        if r["type"] != "task.requested":
            assert r["causation_id"] in ids, f"{r['type']} answers an event that is not in the store"
    return rows


TASK_FLOWS = [
    ("Containerize the Python FastAPI application", {"Dockerfile", ".dockerignore", "docker-compose.yml"}),
    ("Set up CI/CD for the project", {"Dockerfile", ".github/workflows/ci-cd.yml"}),
    (
        "Deploy to AWS ECS",
        {
            "ecs-task-definition.json",
            "ecs-service.json",
            "cloudformation/infrastructure.yaml",
            "terraform/main.tf",
        },
    ),
    ("Deploy to Kubernetes", {"k8s/deployment.yaml", "k8s/service.yaml", "k8s/hpa.yaml", "docs/ROLLBACK.md"}),
    (
        "containerize and deploy to Kubernetes with canary releases and monitoring",
        {"k8s/deployment.yaml", "monitoring/prometheus.yml", "Dockerfile"},
    ),
    ("set up GitLab CI", {".gitlab-ci.yml", "Dockerfile"}),
]


@pytest.mark.validators
@pytest.mark.parametrize(("text", "expected"), TASK_FLOWS, ids=[t for t, _ in TASK_FLOWS])
async def test_typical_and_combined_flows_end_ready(running: Running, text: str, expected: set[str]) -> None:
    project = copy_example("fastapi-service", running.workspace)
    statuses = await running.run_task(text, project, output_dir="out")
    end = final(statuses)
    assert end.state.value == "ready", [(s.payload.state.value, s.payload.reason) for s in statuses]
    assert expected <= written(running, "out")
    rows = await assert_closed_chain(running, statuses[0].task_id)
    types = [r["type"] for r in rows]
    assert types.count("artifact_set.completed") == 1
    assert types.count("report.qa") == 1 and types.count("report.security") == 1
    decisions = [r for r in rows if r["type"] == "decision.recorded"]
    assert {d["payload"]["topic"] for d in decisions} >= {"platform", "strategy", "environments"}


async def test_unsupported_request_fails_in_planning(running: Running) -> None:
    project = copy_example("fastapi-service", running.workspace)
    statuses = await running.run_task("paint the office walls", project)
    end = final(statuses)
    assert (end.state.value, end.agent) == ("failed", "architect")
    assert "I understand" in end.reason
    rows = await assert_closed_chain(running, statuses[0].task_id)
    assert "requirement.issued" not in {r["type"] for r in rows}


async def test_qa_failure_names_the_file_and_rule(running: Running) -> None:
    """An override that makes an invalid artifact (an untagged base image) fails QA."""
    project = copy_example("fastapi-service", running.workspace)
    statuses = await running.run_task(
        "Containerize the Python FastAPI application",
        project,
        output_dir="out",
        service=ServiceSpec(base_image="python"),
    )
    end = final(statuses)
    assert end.state.value == "failed"
    assert "QA failed" in end.reason
    assert any(f.file == "Dockerfile" and f.tool == "hadolint" for f in end.findings), end.findings
    assert not (running.workspace / "out").exists(), "nothing is written for a failed task"
    await assert_closed_chain(running, statuses[0].task_id)


async def test_security_block_on_a_secret_literal(running: Running) -> None:
    """A start command carrying a credential literal passes the linters but security blocks it."""
    project = copy_example("fastapi-service", running.workspace)
    statuses = await running.run_task(
        "Containerize the Python FastAPI application",
        project,
        output_dir="out",
        service=ServiceSpec(
            start_command=[
                "uvicorn",
                "app.main:app",
                "--host",
                "0.0.0.0",
                "--header",
                "x-key:AKIAIOSFODNN7EXAMPLE",
            ]
        ),
    )
    end = final(statuses)
    assert end.state.value == "failed"
    assert "security blocked" in end.reason
    assert any(f.severity.value in ("high", "critical") and f.fix for f in end.findings), end.findings


@pytest.fixture
async def without_qa(tmp_path: Path) -> AsyncIterator[Running]:
    agents = ["architect", "devops", "credentials", "security", "knowledge"]
    async for r in start_orchestra(tmp_path, agents=agents, validation_deadline_s=2.0):
        yield r


async def test_an_agent_that_never_answers_fails_the_task_naming_it(without_qa: Running) -> None:
    project = copy_example("fastapi-service", without_qa.workspace)
    statuses = await without_qa.run_task("Containerize the Python FastAPI application", project, timeout_s=30)
    end = final(statuses)
    assert (end.state.value, end.agent) == ("failed", "devops")
    assert "deadline" in end.reason and "qa" in end.reason and "security" not in end.reason.split("from")[1]
