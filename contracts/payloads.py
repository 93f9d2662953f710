"""Typed payloads, one per event type, and the registry that maps a type to its model."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)

from contracts.vocabulary import (
    CIProvider,
    DeploymentState,
    NoteKind,
    SecretKind,
    Severity,
    Strategy,
    Target,
)

# Size bounds: a payload that breaks them is invalid, not truncated.
Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Text = Annotated[str, StringConstraints(max_length=4_000)]
Path = Annotated[str, StringConstraints(min_length=1, max_length=1_024)]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
Digest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# A path inside the container: absolute, no spaces, quotes or '..' (checked on use).
ContainerPath = Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9_.@+-][A-Za-z0-9_./@+-]{0,254}$")]
MAX_FILE_BYTES = 256 * 1024

# RFC 3339 with seconds and a timezone, in the subset every validator reads the same way:
# [0-9] not \d (Unicode digits in Python and Rust), upper-case T and Z, at most microseconds
# (what Python keeps), years 1970-2999 (no overflow when converted to UTC), no leap second.
TIMESTAMP_PATTERN = (
    r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)


def _rfc3339(value: object) -> object:
    # pydantic's own parser also takes "12:00Z" without seconds, a space for T, "+0100": the
    # text is held to the schema's pattern first (fullmatch: no trailing newline either), then
    # parsed here, since strict mode would refuse a string handed on by this validator.
    if not isinstance(value, str):
        return value
    if not _TIMESTAMP.fullmatch(value):
        raise ValueError(
            "expected an RFC 3339 date-time with seconds and a timezone, e.g. 2026-11-26T12:00:00Z"
        )
    return datetime.fromisoformat(value)  # a date that does not exist (02-30) raises ValueError


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": TIMESTAMP_PATTERN}),
]
"""A point in time; on the wire an RFC 3339 string such as ``2026-11-26T12:00:00.123Z``."""


class Model(BaseModel):
    """Base for every contract model: closed shape (unknown keys rejected), immutable.

    Wire input is validated in pydantic's strict mode (see ``contracts.envelope.decode``), so
    every field, including ones added later, takes exactly the JSON types its JSON Schema
    names: no "8080" for 8080, no true for 1, no Unix number for a time. Python code building
    models keeps the usual conveniences (an enum's value for the enum), which cannot reach
    the wire in another form: ``encode`` writes what the schema describes.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


class EventType(StrEnum):
    TASK_REQUESTED = "task.requested"
    DECISION_RECORDED = "decision.recorded"
    REQUIREMENT_ISSUED = "requirement.issued"
    CREDENTIAL_REQUESTED = "credential.requested"
    CREDENTIAL_ISSUED = "credential.issued"
    ARTIFACT_SET_COMPLETED = "artifact_set.completed"
    REPORT_QA = "report.qa"
    REPORT_SECURITY = "report.security"
    STATUS_CHANGED = "status.changed"
    KNOWLEDGE_NOTE = "knowledge.note"


class ServiceSpec(Model):
    """What is known (or overridden) about the service to deploy. Every field is optional:
    on a requirement these are explicit overrides; detection fills in the rest."""

    name: Annotated[str, StringConstraints(pattern=r"^[a-z0-9]([-a-z0-9]{0,40}[a-z0-9])?$")] | None = None
    language: Literal["python", "go", "node"] | None = None
    language_version: Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+){0,2}$")] | None = None
    framework: Name | None = None
    package_manager: Literal["pip", "uv", "poetry", "go", "npm", "yarn", "pnpm"] | None = None
    start_command: list[Annotated[str, StringConstraints(max_length=256)]] | None = Field(None, max_length=32)
    test_command: list[Annotated[str, StringConstraints(max_length=256)]] | None = Field(None, max_length=32)
    port: int | None = Field(None, ge=1, le=65_535)
    health_path: Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9_./-]{0,127}$")] | None = None
    probe: Literal["http", "tcp"] | None = Field(
        None, description="http: probes GET health_path; tcp: probes connect to the port (no health route)."
    )
    env_vars: list[EnvName] | None = Field(None, max_length=128)
    base_image: Annotated[str, StringConstraints(max_length=256)] | None = None
    # No leading '/' or '.': a subfolder, never an absolute path; '..' segments are refused on use.
    app_dir: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,255}$")] | None = (
        Field(
            None,
            description="The app's subfolder (e.g. backend); the build context stays the project root.",
        )
    )
    build_command: list[Annotated[str, StringConstraints(max_length=256)]] | None = Field(
        None, max_length=32, description="Run once in the image build after the source is copied."
    )
    writable_paths: list[ContainerPath] | None = Field(
        None,
        max_length=16,
        description="Folders the app writes at run time (absolute, in the container): each becomes a "
        "volume on the read-only root filesystem.",
    )
    config_files: list[ContainerPath] | None = Field(
        None,
        max_length=8,
        description="Files the app reads its configuration from (absolute, in the container): each is "
        "mounted there from a secret, never baked into the image.",
    )
    allow_loopback: bool | None = Field(
        None,
        description="Generate even though the server listens on localhost only (nothing outside its "
        "container can reach it until the code binds 0.0.0.0).",
    )


class TaskRequested(Model):
    """A person or program asks for something. ``text`` is natural language; the optional
    fields are the structured form for programs and take precedence over the text."""

    text: Text = ""
    project: Path
    targets: list[Target] | None = Field(None, max_length=16)
    strategy: Strategy | None = None
    ci: CIProvider | None = None
    environments: list[Name] | None = Field(None, max_length=8)
    output_dir: Path | None = None
    service: ServiceSpec | None = None


class DecisionRecorded(Model):
    topic: Name
    decision: Text
    rationale: Text = ""


class RequirementIssued(Model):
    """What the architect asks DevOps to produce."""

    request: Text
    project: Path
    targets: list[Target] = Field(min_length=1, max_length=16)
    strategy: Strategy = Strategy.ROLLING
    ci: CIProvider = CIProvider.GITHUB
    environments: list[Name] = Field(default_factory=lambda: ["dev", "staging", "prod"], max_length=8)
    output_dir: Path | None = None
    service: ServiceSpec = Field(default_factory=ServiceSpec)


class CredentialRequested(Model):
    service: Name
    env_vars: list[EnvName] = Field(max_length=128)
    targets: list[Target] = Field(max_length=16)
    environments: list[Name] = Field(max_length=8)


class SecretRef(Model):
    """A reference to a secret: where it lives, never what it is."""

    env_var: EnvName
    environment: Name
    kind: SecretKind
    reference: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    key: Name | None = None
    rotation_days: int = Field(ge=1, le=3_650)


class CredentialIssued(Model):
    secrets: list[SecretRef] = Field(max_length=2_048)
    config_vars: list[EnvName] = Field(default_factory=list, max_length=128)
    rotation_procedure: Text = ""


class Artifact(Model):
    path: Path
    content: Annotated[str, StringConstraints(max_length=MAX_FILE_BYTES)]
    sha256: Digest
    target: Target


class ArtifactSetCompleted(Model):
    """The generated files for a project. ``project`` is the project folder relative to the
    workspace (QA builds and starts the app from it); absent in sets from older producers."""

    targets: list[Target] = Field(max_length=16)
    files: list[Artifact] = Field(max_length=256)
    service: ServiceSpec
    project: Path | None = None

    def digest(self) -> str:
        """sha256 of this set's canonical JSON: what a QA or security verdict is bound to."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()


class Finding(Model):
    file: Path
    rule: Name
    message: Text
    severity: Severity = Severity.MEDIUM
    line: int | None = Field(None, ge=0)
    fix: Text = ""
    tool: Name | None = None


class Report(Model):
    """A QA or security verdict. ``artifact_digest`` binds it to the artifact set it judged
    (``ArtifactSetCompleted.digest()`` of the set): DevOps refuses a report without it, or for
    another set than the one it generated."""

    passed: bool
    artifact_digest: Digest | None = None
    files: list[Path] = Field(default_factory=list, max_length=256)
    findings: list[Finding] = Field(default_factory=list, max_length=2_048)
    tools: dict[Name, Name] = Field(default_factory=dict)
    summary: Text = ""


class StatusChanged(Model):
    state: DeploymentState
    previous: DeploymentState | None = None
    agent: Name
    reason: Text = ""
    output_dir: Path | None = None
    files: list[Path] = Field(default_factory=list, max_length=256)
    findings: list[Finding] = Field(default_factory=list, max_length=256)


class KnowledgeNote(Model):
    kind: NoteKind
    text: Text
    agent: Name


PAYLOADS: dict[EventType, type[Model]] = {
    EventType.TASK_REQUESTED: TaskRequested,
    EventType.DECISION_RECORDED: DecisionRecorded,
    EventType.REQUIREMENT_ISSUED: RequirementIssued,
    EventType.CREDENTIAL_REQUESTED: CredentialRequested,
    EventType.CREDENTIAL_ISSUED: CredentialIssued,
    EventType.ARTIFACT_SET_COMPLETED: ArtifactSetCompleted,
    EventType.REPORT_QA: Report,
    EventType.REPORT_SECURITY: Report,
    EventType.STATUS_CHANGED: StatusChanged,
    EventType.KNOWLEDGE_NOTE: KnowledgeNote,
}
