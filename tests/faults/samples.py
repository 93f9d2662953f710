"""One valid event of every type: the seeds that fuzzing mutates."""

from __future__ import annotations

import hashlib

from contracts import Envelope, EventType, Source, new_event, new_id
from contracts.payloads import (
    Artifact,
    ArtifactSetCompleted,
    CredentialIssued,
    CredentialRequested,
    DecisionRecorded,
    Finding,
    KnowledgeNote,
    Report,
    RequirementIssued,
    SecretRef,
    ServiceSpec,
    StatusChanged,
    TaskRequested,
)
from contracts.vocabulary import DeploymentState, NoteKind, SecretKind, Severity, Target

SRC = Source(agent="fuzz", instance="f1")
DOCKERFILE = "FROM python:3.12-slim\nUSER 10001\n"

PAYLOADS = {
    EventType.TASK_REQUESTED: TaskRequested(
        text="Containerize the Python FastAPI application", project="app"
    ),
    EventType.DECISION_RECORDED: DecisionRecorded(topic="platform", decision="kubernetes", rationale="web"),
    EventType.REQUIREMENT_ISSUED: RequirementIssued(
        request="containerize", project="app", targets=[Target.DOCKER]
    ),
    EventType.CREDENTIAL_REQUESTED: CredentialRequested(
        service="app", env_vars=["DATABASE_URL"], targets=[Target.K8S], environments=["dev"]
    ),
    EventType.CREDENTIAL_ISSUED: CredentialIssued(
        secrets=[
            SecretRef(
                env_var="DATABASE_URL",
                environment="dev",
                kind=SecretKind.K8S_SECRET,
                reference="app-secrets",
                key="database-url",
                rotation_days=90,
            )
        ]
    ),
    EventType.ARTIFACT_SET_COMPLETED: ArtifactSetCompleted(
        targets=[Target.DOCKER],
        files=[
            Artifact(
                path="Dockerfile",
                content=DOCKERFILE,
                sha256=hashlib.sha256(DOCKERFILE.encode()).hexdigest(),
                target=Target.DOCKER,
            )
        ],
        service=ServiceSpec(name="app", port=8000),
    ),
    EventType.REPORT_QA: Report(
        passed=False,
        files=["Dockerfile"],
        findings=[Finding(file="Dockerfile", rule="DL3008", message="pin versions", severity=Severity.LOW)],
    ),
    EventType.REPORT_SECURITY: Report(passed=True, summary="0 findings"),
    EventType.STATUS_CHANGED: StatusChanged(state=DeploymentState.READY, agent="devops", reason="done"),
    EventType.KNOWLEDGE_NOTE: KnowledgeNote(kind=NoteKind.EDIT, text="Edit: Dockerfile", agent="devops"),
}


def sample(event_type: EventType, task_id: str | None = None) -> Envelope:
    return new_event(event_type, PAYLOADS[event_type], task_id=task_id or new_id(), source=SRC)


def all_samples(task_id: str | None = None) -> list[Envelope]:
    assert set(PAYLOADS) == set(EventType), "a new event type needs a sample here"
    return [sample(t, task_id) for t in EventType]
