"""`orchestra report`: performance metrics from a real knowledge store file."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from agents.cli.main import app
from agents.knowledge.store import KnowledgeStore
from agents.report import compute, failure_cause
from contracts import EventType, Source
from contracts.envelope import EVENT_CLASSES, Envelope
from contracts.ids import new_id
from contracts.payloads import (
    Artifact,
    ArtifactSetCompleted,
    Model,
    Report,
    ServiceSpec,
    StatusChanged,
    TaskRequested,
)
from contracts.vocabulary import DeploymentState, Target
from tests.orchestra_fixtures import copy_example, start_orchestra

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
S = DeploymentState


def event(kind: EventType, payload: Model, task_id: str, at_s: float, agent: str) -> Envelope:
    return EVENT_CLASSES[kind](
        id=new_id(),
        type=kind,
        task_id=task_id,
        source=Source(agent=agent, instance="test:1"),
        occurred_at=T0 + timedelta(seconds=at_s),
        payload=payload,
    )


def status(task_id: str, at_s: float, state: DeploymentState, agent: str, reason: str = "") -> Envelope:
    return event(
        EventType.STATUS_CHANGED, StatusChanged(state=state, agent=agent, reason=reason), task_id, at_s, agent
    )


def task_events(
    task_id: str, start: float, *, gen: float, qa: float, sec: float, end: DeploymentState, reason: str = ""
):
    """One task's events: requested at ``start``, generating 1 s later, stages of the given lengths."""
    artifacts = ArtifactSetCompleted(
        targets=[Target.DOCKER],
        files=[Artifact(path="Dockerfile", content="FROM x\n", sha256="0" * 64, target=Target.DOCKER)],
        service=ServiceSpec(),
    )
    generating = start + 1
    validating = generating + gen
    return [
        event(
            EventType.TASK_REQUESTED,
            TaskRequested(text="Containerize", project="p"),
            task_id,
            start,
            "client",
        ),
        status(task_id, start + 0.1, S.RECEIVED, "architect"),
        status(task_id, generating, S.GENERATING, "devops"),
        event(EventType.ARTIFACT_SET_COMPLETED, artifacts, task_id, validating, "devops"),
        status(task_id, validating, S.VALIDATING, "devops"),
        event(EventType.REPORT_SECURITY, Report(passed=True), task_id, validating + sec, "security"),
        status(task_id, validating + qa, end, "devops", reason),
    ]


async def test_report_from_stored_events_counts_rates_stages_and_groups_failures(tmp_path: Path) -> None:
    rows: list[Envelope] = []
    for i in range(18):
        rows += task_events(f"ok{i}", i * 10, gen=2, qa=4, sec=3, end=S.READY)
    rows += task_events(
        "qa1", 200, gen=2, qa=4, sec=3, end=S.FAILED, reason="QA failed: 2 finding(s) in Dockerfile"
    )
    rows += task_events(
        "qa2", 210, gen=2, qa=4, sec=3, end=S.FAILED, reason="QA failed: 1 finding(s) in compose"
    )
    rows.append(
        event(EventType.TASK_REQUESTED, TaskRequested(text="Deploy", project="p"), "open", 220, "client")
    )
    store = await KnowledgeStore.open(tmp_path / "k.sqlite3")
    try:
        await store.add_batch(rows)
        report = compute(await store.events())
    finally:
        await store.close()

    assert (report.tasks, report.finished, report.succeeded, report.failed, report.in_progress) == (
        21,
        20,
        18,
        2,
        1,
    )
    assert report.success_rate == pytest.approx(0.9)
    assert report.meets_target is False
    # First request at 0 s, last end at 210 + 1 + 2 + 4 = 217 s.
    assert report.window_s == pytest.approx(217)
    assert report.tasks_per_hour == pytest.approx(20 / 217 * 3600)
    stages = report.stages
    assert stages["generation"].p50_s == pytest.approx(2)  # type: ignore[union-attr]
    assert stages["validation"].mean_s == pytest.approx(4)  # type: ignore[union-attr]
    assert stages["security"].max_s == pytest.approx(3)  # type: ignore[union-attr]
    assert stages["total"].tasks == 20 and stages["total"].p95_s == pytest.approx(7)  # type: ignore[union-attr]
    assert [(g.cause, g.agent, g.tasks) for g in report.failures] == [("QA failed", "devops", 2)]
    assert failure_cause("deadline passed: no answer from qa (state validating)") == "deadline passed"
    assert failure_cause("I do not understand 'a sandwich'. I understand: docker") == (
        "I do not understand '…'. I understand"
    )


async def cli(*args: str) -> Result:
    """Run the CLI (it has its own event loop, so in a thread)."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


@pytest.mark.nats
async def test_orchestra_report_after_a_real_flow(tmp_path: Path) -> None:
    async for running in start_orchestra(tmp_path):
        project = copy_example("fastapi-service", running.workspace)
        good = await running.run_task(
            "Containerize the Python FastAPI application", project, output_dir="out"
        )
        bad = await running.run_task("make me a sandwich", project)
        await running.stored(good[0].task_id)
        await running.stored(bad[0].task_id)
        db = running.settings.knowledge_db

    result = await cli("report", "--db", str(db), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    ended_ready = good[-1].payload.state.value == "ready"  # type: ignore[union-attr]
    assert data["finished"] == 2 and data["succeeded"] == int(ended_ready)
    assert data["stages"]["total"]["tasks"] == 2
    if ended_ready:
        assert data["stages"]["generation"]["tasks"] == 1 and data["stages"]["security"]["tasks"] == 1
    assert any(g["agent"] == "architect" for g in data["failures"])

    table = await cli("report", "--db", str(db))
    assert table.exit_code == 0
    assert "Deployment success rate" in table.output and "Failure reasons" in table.output
    missing = await cli("report", "--db", str(tmp_path / "nope.sqlite3"))
    assert missing.exit_code != 0 and "no knowledge store" in missing.output
