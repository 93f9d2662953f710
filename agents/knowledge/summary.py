"""The searchable text of an event: what a person would type to find it."""

from __future__ import annotations

from contracts import Envelope
from contracts.payloads import (
    ArtifactSetCompleted,
    CredentialIssued,
    CredentialRequested,
    DecisionRecorded,
    KnowledgeNote,
    Report,
    RequirementIssued,
    StatusChanged,
    TaskRequested,
)


def kind_of(event: Envelope) -> str:
    """The note kind of an event: edit, decision, status, completion (or the event family)."""
    p = event.payload
    if isinstance(p, KnowledgeNote):
        return p.kind.value
    if isinstance(p, DecisionRecorded):
        return "decision"
    if isinstance(p, StatusChanged):
        return "completion" if p.state.terminal else "status"
    if isinstance(p, ArtifactSetCompleted):
        return "edit"
    return str(event.type).split(".")[0]


def summarize(event: Envelope) -> str:
    p = event.payload
    agent = event.source.agent
    match p:
        case TaskRequested():
            return f"task requested: {p.text} project {p.project}"
        case DecisionRecorded():
            return f"{agent} decision {p.topic}: {p.decision}. {p.rationale}"
        case RequirementIssued():
            return (
                f"requirement for devops: {', '.join(p.targets)} strategy {p.strategy} ci {p.ci}: {p.request}"
            )
        case CredentialRequested():
            return f"credentials requested for {p.service}: {' '.join(p.env_vars)}"
        case CredentialIssued():
            refs = " ".join(f"{s.env_var}@{s.environment}:{s.kind}" for s in p.secrets[:64])
            return f"credential references issued: {refs}"
        case ArtifactSetCompleted():
            return f"edit: {agent} generated " + " ".join(f.path for f in p.files)
        case Report():
            findings = "; ".join(f"{f.file} {f.rule} {f.message}" for f in p.findings[:50])
            verdict = "passed" if p.passed else "failed"
            return f"{event.type} {verdict}: {p.summary} {findings}"
        case StatusChanged():
            return f"status {p.state} by {p.agent}: {p.reason}"
        case KnowledgeNote():
            return f"{p.kind}: {p.text}"
    return str(event.type)
