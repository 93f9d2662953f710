"""The agents collaborate through the bus: each flow checked for its final status, its artifacts
and its causal chain in the knowledge store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agents.devops.generate import sha256_text
from contracts import EventType, Source, new_event, new_id
from contracts.payloads import Artifact, ArtifactSetCompleted, ServiceSpec
from contracts.subjects import EVENTS_STREAM
from contracts.vocabulary import Target
from tests.faults.helpers import raw_messages, until
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


async def test_a_start_command_with_a_key_is_refused_at_planning_and_never_travels(running: Running) -> None:
    """Invariant: a start command carrying a credential literal (an AWS key id) ends failed at
    planning, naming start_command; the key is masked by the client library, so no event and no
    stored row holds it."""
    key = "AKIA" + "IOSFODNN7EXAMPLE"
    project = copy_example("fastapi-service", running.workspace)
    statuses = await running.run_task(
        "Containerize the Python FastAPI application",
        project,
        output_dir="out",
        service=ServiceSpec(
            start_command=["uvicorn", "app.main:app", "--host", "0.0.0.0", "--header", f"x-key:{key}"]
        ),
    )
    end = final(statuses)
    assert (end.state.value, end.agent) == ("failed", "architect"), end
    assert "start_command holds a secret-looking value" in end.reason and "\n" not in end.reason
    stream = b"".join(m.data or b"" for m in await raw_messages(running.client.bus.js, EVENTS_STREAM))
    assert b"x-key:[REDACTED]" in stream and key.encode() not in stream
    rows = await running.stored(statuses[0].task_id)
    assert "requirement.issued" not in {r["type"] for r in rows}


@pytest.fixture
async def reviewers(tmp_path: Path) -> AsyncIterator[Running]:
    async for r in start_orchestra(tmp_path, agents=["security", "knowledge"]):
        yield r


async def test_security_blocks_an_artifact_set_with_a_secret_literal(reviewers: Running) -> None:
    """Invariant: an artifact set whose Dockerfile holds a key literal (from a buggy or hostile
    producer) gets a failing security report with a high or critical finding that has a fix and
    does not repeat the key: reviewers see artifacts as generated, masking does not hide them."""
    running = reviewers
    key = "AKIA" + "IOSFODNN7EXAMPLE"
    content = f'FROM python:3.12-slim\nENV AWS_ACCESS_KEY_ID={key}\nCMD ["python", "-m", "app"]\n'
    artifact = Artifact(path="Dockerfile", content=content, sha256=sha256_text(content), target=Target.DOCKER)
    event = new_event(
        EventType.ARTIFACT_SET_COMPLETED,
        ArtifactSetCompleted(targets=[Target.DOCKER], files=[artifact], service=ServiceSpec(name="app")),
        task_id=new_id(),
        source=Source(agent="devops", instance="test"),
    )
    await running.client.bus.publish(event)

    async def security_report() -> dict | None:
        rows = await running.stored(event.task_id, until_terminal=False)
        return next((r for r in rows if r["type"] == "report.security"), None)

    report = (await until(security_report, within=60, what="the security report"))["payload"]
    assert report["passed"] is False
    blocking = [f for f in report["findings"] if f["severity"] in ("high", "critical")]
    assert any(f["rule"] == "SEC-SECRET-001" and f["fix"] for f in blocking), report["findings"]
    assert key not in json.dumps(report)


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
