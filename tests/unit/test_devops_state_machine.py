"""DevOps's state machine on the stub broker, DevOps alone: the test plays the architect, the
credential manager, QA and security by publishing their events, and reads what DevOps emits, writes
to the task-state bucket and dead-letters.

requirement -> credentials -> artifact set -> reports -> ready | failed; a deadline that passes (the
broker's clock moved, not waited for); forged, duplicate, late and unknown-task answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agents.credential_policy import issue
from bus.runtime import Bus
from bus.stub import StubBroker
from contracts import Envelope, EventType, new_id
from contracts.payloads import (
    ArtifactSetCompleted,
    CredentialRequested,
    Finding,
    Report,
    RequirementIssued,
    StatusChanged,
)
from contracts.subjects import durable_name
from contracts.vocabulary import Severity, Target
from tests.unit.conftest import copy_example, event

DEVOPS_QA = durable_name("devops", EventType.REPORT_QA)
DEVOPS_SECURITY = durable_name("devops", EventType.REPORT_SECURITY)


def states(broker: StubBroker, task_id: str) -> list[str]:
    return [e.payload.state.value for e in broker.events(EventType.STATUS_CHANGED, task_id)]


def record(broker: StubBroker, task_id: str) -> dict[str, Any]:
    return json.loads(broker.kv()[task_id])


def the(broker: StubBroker, event_type: EventType, task_id: str) -> Envelope:
    [found] = broker.events(event_type, task_id)
    return found


class Task:
    """One task driven through DevOps by the test, which answers in the other agents' place."""

    def __init__(self, broker: StubBroker, client: Bus, workspace: Path) -> None:
        self.broker, self.client = broker, client
        self.id = new_id()
        self.project = copy_example("fastapi-service", workspace)

    async def send(
        self,
        event_type: EventType,
        payload: Any,
        *,
        by: str,
        caused_by: Envelope | None = None,
        skip_delays: bool = True,
    ) -> Envelope:
        """Publish as agent ``by`` and wait until DevOps has handled it."""
        sent = event(event_type, payload, self.id, by=by, caused_by=caused_by)
        await self.client.publish(sent)
        await self.broker.run_until_idle(skip_delays=skip_delays)
        return sent

    async def require(self, *, skip_delays: bool = True, **fields: Any) -> Envelope:
        requirement = RequirementIssued(
            request="Containerize the Python FastAPI application",
            project=self.project,
            targets=[Target.DOCKER],
            output_dir="out",
            **fields,
        )
        return await self.send(
            EventType.REQUIREMENT_ISSUED, requirement, by="architect", skip_delays=skip_delays
        )

    async def answer_credentials(self) -> Envelope:
        asked = the(self.broker, EventType.CREDENTIAL_REQUESTED, self.id)
        assert isinstance(asked.payload, CredentialRequested)
        return await self.send(
            EventType.CREDENTIAL_ISSUED, issue(asked.payload), by="credentials", caused_by=asked
        )

    def artifact_set(self) -> Envelope:
        return the(self.broker, EventType.ARTIFACT_SET_COMPLETED, self.id)

    def report(
        self, passed: bool = True, *, digest: str | None = None, findings: list[Finding] | None = None
    ) -> Report:
        artifacts = self.artifact_set().payload
        assert isinstance(artifacts, ArtifactSetCompleted)
        return Report(
            passed=passed,
            artifact_digest=digest or artifacts.digest(),
            files=[f.path for f in artifacts.files],
            findings=findings or [],
            summary="checked",
        )


@pytest.fixture
async def task(broker: StubBroker, client: Bus, workspace: Path, agents: Callable[..., Any]) -> Task:
    await agents("devops")
    return Task(broker, client, workspace)


async def test_requirement_credentials_artifacts_reports_ready(task: Task, workspace: Path) -> None:
    broker = task.broker
    await task.require()
    assert states(broker, task.id) == ["generating"]
    assert record(broker, task.id)["awaiting"] == ["credentials"]
    asked = the(broker, EventType.CREDENTIAL_REQUESTED, task.id)
    assert asked.source.agent == "devops" and asked.payload.service == "fastapi-service"

    await task.answer_credentials()
    assert states(broker, task.id) == ["generating", "validating"]
    artifacts = task.artifact_set().payload
    assert "Dockerfile" in [f.path for f in artifacts.files]
    saved = record(broker, task.id)
    assert saved["awaiting"] == ["qa", "security"] and saved["artifact_digest"] == artifacts.digest()

    await task.send(EventType.REPORT_QA, task.report(), by="qa", caused_by=task.artifact_set())
    assert states(broker, task.id)[-1] == "validating" and record(broker, task.id)["awaiting"] == ["security"]
    await task.send(EventType.REPORT_SECURITY, task.report(), by="security", caused_by=task.artifact_set())

    assert states(broker, task.id) == ["generating", "validating", "ready"]
    ready = broker.events(EventType.STATUS_CHANGED, task.id)[-1].payload
    assert isinstance(ready, StatusChanged) and "Dockerfile" in [Path(f).name for f in ready.files]
    assert (workspace / "out/Dockerfile").is_file()
    assert record(broker, task.id)["state"] == "ready"
    assert broker.dead_letters() == []


async def test_a_blocking_security_finding_fails_the_task_with_it(task: Task, workspace: Path) -> None:
    await task.require()
    await task.answer_credentials()
    finding = Finding(file="Dockerfile", rule="root-user", message="runs as root", severity=Severity.HIGH)
    await task.send(EventType.REPORT_QA, task.report(), by="qa")
    await task.send(EventType.REPORT_SECURITY, task.report(False, findings=[finding]), by="security")
    failed = task.broker.events(EventType.STATUS_CHANGED, task.id)[-1].payload
    assert failed.state.value == "failed" and failed.reason.startswith("security blocked")
    assert [f.rule for f in failed.findings] == ["root-user"]
    assert not (workspace / "out").exists()


async def test_a_project_outside_the_workspace_fails_at_once(task: Task) -> None:
    task.project = "../elsewhere"
    await task.require()
    assert states(task.broker, task.id) == ["generating", "failed"]
    assert (
        "project inspection failed"
        in task.broker.events(EventType.STATUS_CHANGED, task.id)[-1].payload.reason
    )
    assert record(task.broker, task.id)["state"] == "failed"


async def test_a_silent_credential_manager_fails_the_task_at_its_deadline(task: Task) -> None:
    """Nobody answers the credential request: once the broker's clock passes the deadline the
    sweeper fails the task naming the silent agent (no credential manager ever ran)."""
    broker = task.broker
    await task.require()
    broker.advance(30)
    await broker.run_until_idle()
    assert states(broker, task.id) == ["generating"]  # half the deadline: still waiting

    broker.advance(31)  # past the 60 s credentials deadline
    failed = await broker.wait_for(
        lambda: [
            e for e in broker.events(EventType.STATUS_CHANGED, task.id) if e.payload.state.value == "failed"
        ]
    )
    assert failed[0].payload.reason == "deadline passed: no answer from credentials (state generating)"
    await broker.wait_for(lambda: record(broker, task.id)["state"] == "failed")  # stored after the event


async def test_reviewers_that_stay_silent_are_named_when_validation_times_out(task: Task) -> None:
    broker = task.broker
    await task.require()
    await task.answer_credentials()
    await task.send(EventType.REPORT_QA, task.report(), by="qa")
    broker.advance(601)
    failed = await broker.wait_for(
        lambda: [
            e for e in broker.events(EventType.STATUS_CHANGED, task.id) if e.payload.state.value == "failed"
        ]
    )
    assert failed[0].payload.reason == "deadline passed: no answer from security (state validating)"


async def test_forged_reports_are_dead_lettered_and_change_nothing(task: Task) -> None:
    broker = task.broker
    await task.require()
    await task.answer_credentials()
    # Signed "security" on a QA report: only qa publishes report.qa.
    await task.send(EventType.REPORT_QA, task.report(), by="security")
    # From qa, but judging some other artifact set.
    await task.send(EventType.REPORT_QA, task.report(digest="0" * 64), by="qa")
    letters = broker.dead_letters(DEVOPS_QA)
    assert len(letters) == 2
    assert "only qa publishes it" in letters[0].reason
    assert "not the artifact set devops generated" in letters[1].reason
    assert states(broker, task.id) == ["generating", "validating"]
    assert record(broker, task.id)["awaiting"] == ["qa", "security"]


async def test_duplicate_and_late_answers_are_harmless(task: Task) -> None:
    broker = task.broker
    requirement = await task.require()
    await task.answer_credentials()
    report = await task.send(EventType.REPORT_QA, task.report(), by="qa")
    await task.client.publish(report)  # the same event again: stored once
    await task.send(EventType.REPORT_QA, task.report(False), by="qa")  # a second verdict: too late
    await task.send(EventType.REPORT_SECURITY, task.report(), by="security")
    assert states(broker, task.id) == ["generating", "validating", "ready"]
    assert len(broker.events(EventType.REPORT_QA, task.id)) == 2
    await task.answer_credentials()  # credentials again, after the task is over: ignored
    await task.send(EventType.REQUIREMENT_ISSUED, requirement.payload, by="architect")  # a second requirement
    assert states(broker, task.id) == ["generating", "validating", "ready"]
    [letter] = broker.dead_letters(durable_name("devops", EventType.REQUIREMENT_ISSUED))
    assert f"task {task.id} already has requirement {requirement.id}" in letter.reason
    assert broker.dead_letters(DEVOPS_QA) == []


async def test_an_answer_about_an_unknown_task_waits_then_is_dead_lettered(task: Task) -> None:
    """A report about a task DevOps has no record of waits in the stream (a record could still
    appear) and is dead-lettered once it is older than the horizon; meanwhile other tasks go on."""
    broker = task.broker
    stray = event(EventType.REPORT_SECURITY, Report(passed=True, summary="?"), new_id(), by="security")
    await task.client.publish(stray)
    await task.require(skip_delays=False)  # no time passes: the stray report holds up nothing
    assert states(broker, task.id) == ["generating"]
    assert broker.dead_letters() == [] and broker.consumer(DEVOPS_SECURITY).redeliver
    await broker.run_until_idle()  # now the clock jumps over the deferrals
    [letter] = broker.dead_letters(DEVOPS_SECURITY)
    assert f"no record of task {stray.task_id}" in letter.reason
    assert broker.consumer(DEVOPS_SECURITY).counts == {}
