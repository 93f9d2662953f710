"""Each agent's main path on the stub broker: its input event in, its events out; then all of them
together taking a task from ``task.requested`` to ``ready`` with no server."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from agents.devops.generate import generate
from agents.devops.spec import AppSpec
from agents.inspection.inspect import inspect_project
from bus.runtime import Bus
from bus.stub import StubBroker
from contracts import EventType, new_id
from contracts.payloads import (
    Artifact,
    ArtifactSetCompleted,
    CredentialRequested,
    KnowledgeNote,
    TaskRequested,
)
from contracts.subjects import RPC_KNOWLEDGE_HISTORY, RPC_KNOWLEDGE_SEARCH
from contracts.vocabulary import NoteKind, SecretKind, Target
from tests.unit.conftest import copy_example, event

TEXT = "Containerize the Python FastAPI application"


def artifact_set(project: Path) -> ArtifactSetCompleted:
    """What DevOps generates for the project's Docker target."""
    facts = inspect_project(project, None)
    files = generate(AppSpec(facts=facts, targets=(Target.DOCKER,)))
    return ArtifactSetCompleted(
        targets=[Target.DOCKER],
        files=[Artifact(path=g.path, content=g.content, sha256=g.sha256, target=g.target) for g in files],
        service=facts.to_spec(),
        project=project.name,
    )


async def test_the_architect_plans_a_task_into_decisions_and_a_requirement(
    broker: StubBroker, client: Bus, workspace: Path, agents: Callable[..., Any]
) -> None:
    await agents("architect")
    project = copy_example("fastapi-service", workspace)
    task = event(EventType.TASK_REQUESTED, TaskRequested(text=TEXT, project=project), new_id(), by="client")
    await client.publish(task)
    await broker.run_until_idle()
    statuses = [e.payload.state.value for e in broker.events(EventType.STATUS_CHANGED, task.task_id)]
    assert statuses == ["received", "planning"]
    topics = {e.payload.topic for e in broker.events(EventType.DECISION_RECORDED, task.task_id)}
    assert {"platform", "health", "strategy", "environments"} <= topics
    [requirement] = broker.events(EventType.REQUIREMENT_ISSUED, task.task_id)
    assert requirement.causation_id == task.id and Target.DOCKER in requirement.payload.targets


async def test_the_credential_manager_answers_with_references_only(
    broker: StubBroker, client: Bus, agents: Callable[..., Any]
) -> None:
    await agents("credentials")
    request = CredentialRequested(
        service="api", env_vars=["DATABASE_URL", "LOG_LEVEL"], targets=[Target.K8S], environments=["prod"]
    )
    asked = event(EventType.CREDENTIAL_REQUESTED, request, new_id(), by="devops")
    await client.publish(asked)
    await broker.run_until_idle()
    [issued] = broker.events(EventType.CREDENTIAL_ISSUED, asked.task_id)
    [secret] = issued.payload.secrets
    assert (secret.env_var, secret.environment, secret.kind) == (
        "DATABASE_URL",
        "prod",
        SecretKind.EXTERNAL_SECRET,
    )
    assert issued.payload.config_vars == ["LOG_LEVEL"] and issued.causation_id == asked.id


async def test_qa_and_security_review_an_artifact_set(
    broker: StubBroker, client: Bus, workspace: Path, agents: Callable[..., Any]
) -> None:
    await agents("qa", "security")
    artifacts = artifact_set(workspace / copy_example("fastapi-service", workspace))
    sent = event(EventType.ARTIFACT_SET_COMPLETED, artifacts, new_id(), by="devops")
    await client.publish(sent)
    await broker.run_until_idle(timeout_s=60)
    for report_type in (EventType.REPORT_QA, EventType.REPORT_SECURITY):
        [report] = broker.events(report_type, sent.task_id)
        assert report.payload.passed, report.payload.summary
        assert report.payload.artifact_digest == artifacts.digest() and report.causation_id == sent.id
    assert broker.dead_letters() == []


async def test_the_knowledge_subscriber_stores_every_event_and_answers_searches(
    broker: StubBroker, client: Bus, agents: Callable[..., Any]
) -> None:
    await agents("knowledge")
    task_id = new_id()
    for text in ("Edit: Dockerfile - production image", "Decision: rolling deployment"):
        note = KnowledgeNote(kind=NoteKind.EDIT, text=text, agent="devops")
        await client.publish(event(EventType.KNOWLEDGE_NOTE, note, task_id, by="devops"))
    await broker.run_until_idle()
    hits = await client.request(RPC_KNOWLEDGE_SEARCH, {"query": "Dockerfile"})
    assert [h["task_id"] for h in hits] == [task_id]
    history = await client.request(RPC_KNOWLEDGE_HISTORY, {"task": task_id})
    assert len(history["events"]) == 2


async def test_the_whole_orchestra_takes_a_task_to_ready_without_a_server(
    broker: StubBroker, client: Bus, workspace: Path, agents: Callable[..., Any]
) -> None:
    await agents("knowledge", "architect", "devops", "credentials", "qa", "security")
    project = copy_example("fastapi-service", workspace)
    task = event(
        EventType.TASK_REQUESTED,
        TaskRequested(text=TEXT, project=project, targets=[Target.DOCKER], output_dir="out"),
        new_id(),
        by="client",
    )
    await client.publish(task)
    await broker.run_until_idle(timeout_s=60)
    statuses = [e.payload.state.value for e in broker.events(EventType.STATUS_CHANGED, task.task_id)]
    assert statuses == ["received", "planning", "generating", "validating", "ready"]
    assert (workspace / "out/Dockerfile").is_file()
    assert broker.dead_letters() == []
    history = await client.request(RPC_KNOWLEDGE_HISTORY, {"task": task.task_id})
    assert len(history["events"]) == len(broker.events(task_id=task.task_id))
