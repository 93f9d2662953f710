"""The deployment state of each task, kept in the JetStream KV bucket with optimistic concurrency.

DevOps owns it. Every replica reads and writes the same record; a write carries the revision
it read, so two replicas (or two reports handled at once) can never both win: the loser's
handler raises :class:`StateConflict`, its message is nak'ed and it retries on fresh state.
"""

from __future__ import annotations

from typing import Any

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel, ConfigDict, Field

from contracts.payloads import CredentialIssued, Report, RequirementIssued
from contracts.vocabulary import TRANSITIONS, DeploymentState


class StateConflict(RuntimeError):
    """Someone else updated the task first: retry on fresh state."""


class InvalidTransition(RuntimeError):
    pass


class TaskState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task_id: str
    state: DeploymentState
    requirement: RequirementIssued
    requirement_event: str
    last_event: str
    facts: dict[str, Any] = Field(default_factory=dict)
    awaiting: list[str] = Field(default_factory=list)
    deadline: float = 0.0
    credentials: CredentialIssued | None = None
    # Stream sequence of what the awaited agents must answer (credential request, artifact set).
    asked_seq: int | None = None
    artifact_seq: int | None = None
    artifact_digest: str | None = None  # ArtifactSetCompleted.digest() of the set devops generated
    reports: dict[str, Report] = Field(default_factory=dict)
    output_dir: str | None = None

    def move(self, to: DeploymentState) -> DeploymentState:
        """Change state along an allowed transition; returns the previous state."""
        if to not in TRANSITIONS[self.state]:
            raise InvalidTransition(f"{self.state} -> {to} is not a deployment transition")
        previous, self.state = self.state, to
        return previous

    def wait_for(self, agents: list[str], seconds: float, now: float) -> None:
        """Wait for ``agents`` for ``seconds`` from ``now`` (wall clock: the bus's clock)."""
        self.awaiting = sorted(agents)
        self.deadline = now + seconds

    def overdue(self, now: float) -> bool:
        """True when the awaited agents' deadline has passed at ``now`` (and the task is not over)."""
        return not self.state.terminal and bool(self.awaiting) and now > self.deadline


def _slim(report: Report) -> Report:
    # KV values are bounded; the full report is in the stream and the knowledge store.
    return report.model_copy(update={"findings": report.findings[:50]})


class TaskStore:
    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def get(self, task_id: str) -> tuple[TaskState, int] | None:
        try:
            entry = await self._kv.get(task_id)
        except KeyNotFoundError:
            return None
        if entry.value is None:
            return None
        return TaskState.model_validate_json(entry.value), int(entry.revision or 0)

    async def create(self, state: TaskState) -> bool:
        """Create the record; False if it already exists (a redelivered requirement)."""
        try:
            await self._kv.create(state.task_id, state.model_dump_json().encode())
        except KeyWrongLastSequenceError:
            return False
        except Exception as exc:  # older servers answer an existing key with a generic API error
            if "wrong last sequence" in str(exc).lower():
                return False
            raise
        return True

    async def update(self, state: TaskState, revision: int) -> None:
        state.reports = {k: _slim(v) for k, v in state.reports.items()}
        try:
            await self._kv.update(state.task_id, state.model_dump_json().encode(), last=revision)
        except KeyWrongLastSequenceError:
            raise StateConflict(f"task {state.task_id} changed concurrently") from None

    async def keys(self) -> list[str]:
        try:
            return list(await self._kv.keys())
        except Exception:  # "no keys found" is an error in nats-py
            return []
