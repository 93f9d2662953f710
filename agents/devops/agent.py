"""DevOps: owns each task's deployment state; inspects, asks for credential references,
generates the artifact set, waits for QA and security, then writes the files (or fails)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import structlog

from agents.lifecycle import StateConflict, TaskState, TaskStore
from agents.paths import PathEscape, resolve_inside
from agents.worker import Context, Worker, handles
from bus.errors import Unavailable
from contracts import ContractError, Envelope, EventType, decode
from contracts.envelope import EVENT_CLASSES
from contracts.ids import derived_id
from contracts.limits import check_payload_size, checked
from contracts.payloads import (
    Artifact,
    ArtifactSetCompleted,
    CredentialIssued,
    CredentialRequested,
    Finding,
    Report,
    RequirementIssued,
    ServiceSpec,
    StatusChanged,
)
from contracts.subjects import EVENTS_STREAM
from contracts.vocabulary import DeploymentState, NoteKind

log = structlog.get_logger("agents.devops")
S = DeploymentState
REVIEWERS = {EventType.REPORT_QA: "qa", EventType.REPORT_SECURITY: "security"}
_LOCAL_RETRIES = 8


class TaskNotReady(Unavailable):
    """An answer arrived before the task's state was recorded (the events that caused it are
    published before the state is written, and a crash can widen that gap to a redelivery):
    held and retried in place, never dead-lettered. The deadline sweeper bounds the wait."""


class UnknownTask(RuntimeError):
    """An answer about a task DevOps has no record of, long after any record could still appear:
    failed like any handler error (retried, then dead-lettered), not held."""


class DevOps(Worker):
    name: ClassVar[str] = "devops"

    async def start(self) -> None:
        self.tasks = TaskStore(await self.bus.tasks_kv())
        await super().start()
        self._sweeper = asyncio.create_task(self._sweep_deadlines(), name="devops:deadlines")

    async def stop(self) -> None:
        self._sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sweeper

    # -- requirement -> credential request ------------------------------------------------

    @handles(EventType.REQUIREMENT_ISSUED)
    async def on_requirement(self, event: Envelope, ctx: Context) -> None:
        from agents.devops.inspect import InspectionError, inspect_project

        req = event.payload
        assert isinstance(req, RequirementIssued)
        existing = await self.tasks.get(event.task_id)
        if existing is not None and existing[0].requirement_event != event.id:
            log.warning("devops.duplicate_requirement", state=existing[0].state)
            return
        state = TaskState(
            task_id=event.task_id,
            state=S.PLANNING,
            requirement=req,
            requirement_event=event.id,
            last_event=event.id,
        )
        state.move(S.GENERATING)
        ctx.status(S.GENERATING, S.PLANNING, f"devops inspecting {req.project} for {', '.join(req.targets)}")
        try:
            project = resolve_inside(self.settings.workspace, req.project, what="project path")
            # Reading the project is file I/O and CPU: off the event loop, so heartbeats go on.
            facts = await asyncio.to_thread(inspect_project, project, req.service)
        except (InspectionError, PathEscape, OSError) as exc:
            self._fail(ctx, state, f"project inspection failed: {exc}")
            await ctx.flush()
            await self.tasks.create(state)
            return
        state.facts = facts.model_dump(mode="json")
        ctx.emit(
            EventType.CREDENTIAL_REQUESTED,
            CredentialRequested(
                service=facts.name,
                env_vars=list(facts.env_vars),
                targets=req.targets,
                environments=req.environments,
            ),
        )
        state.wait_for(["credentials"], self.settings.credentials_deadline_s)
        await ctx.flush()
        await self.tasks.create(state)

    # -- credential references -> artifact set ------------------------------------------------

    @handles(EventType.CREDENTIAL_ISSUED)
    async def on_credentials(self, event: Envelope, ctx: Context) -> None:
        issued = event.payload
        assert isinstance(issued, CredentialIssued)
        state, revision = await self._load(event)
        if state.state is not S.GENERATING or "credentials" not in state.awaiting:
            return  # a late or repeated answer
        state.credentials = issued
        state.last_event = event.id
        try:
            files, service = self._render(state)
        except Exception as exc:  # a target the generator cannot produce: say so, never placeholders
            self._fail(ctx, state, f"artifact generation failed: {exc}")
            await ctx.flush()
            await self.tasks.update(state, revision)
            return
        ctx.emit(
            EventType.ARTIFACT_SET_COMPLETED,
            ArtifactSetCompleted(
                targets=state.requirement.targets,
                files=files,
                service=service,
                project=state.requirement.project,
            ),
        )
        ctx.note(NoteKind.EDIT, f"Edit: {len(files)} files - " + ", ".join(f.path for f in files))
        previous = state.move(S.VALIDATING)
        ctx.status(S.VALIDATING, previous, f"{len(files)} artifacts generated; waiting for QA and security")
        acks = await ctx.flush()
        state.artifact_seq = acks[0].seq  # the artifact set was emitted first
        state.wait_for(["qa", "security"], self.settings.validation_deadline_s)
        await self.tasks.update(state, revision)

    def _render(self, state: TaskState) -> tuple[list[Artifact], ServiceSpec]:
        from agents.devops.facts import ProjectFacts
        from agents.devops.generate import generate
        from agents.devops.spec import AppSpec

        req = state.requirement
        facts = ProjectFacts.model_validate(state.facts)
        creds = state.credentials or CredentialIssued(secrets=[])
        spec = AppSpec(
            facts=facts,
            targets=tuple(req.targets),
            strategy=req.strategy,
            ci=req.ci,
            environments=tuple(req.environments),
            secrets=tuple(creds.secrets),
            config_vars=tuple(creds.config_vars),
        )
        files = [
            checked(
                f"artifact {g.path}",
                lambda g=g: Artifact(path=g.path, content=g.content, sha256=g.sha256, target=g.target),
            )
            for g in generate(spec)
        ]
        service = facts.to_spec()
        # The set travels as one event: refuse it here, in one line, rather than at publish time.
        whole = ArtifactSetCompleted(targets=req.targets, files=files, service=service)
        check_payload_size(whole, "artifact set")
        return files, service

    # -- QA and security reports -> ready | failed ------------------------------------------

    @handles(EventType.REPORT_QA)
    async def on_qa(self, event: Envelope, ctx: Context) -> None:
        await self._on_report(event, ctx)

    @handles(EventType.REPORT_SECURITY)
    async def on_security(self, event: Envelope, ctx: Context) -> None:
        await self._on_report(event, ctx)

    async def _on_report(self, event: Envelope, ctx: Context) -> None:
        """QA and security answer at about the same time and race for the task's record: the loser
        re-reads and re-applies at once (a few times) rather than waiting for a redelivery."""
        for attempt in range(_LOCAL_RETRIES):
            ctx.reset()  # a retry re-emits the same ids; anything already published de-duplicates
            try:
                await self._apply_report(event, ctx)
                return
            except (StateConflict, TaskNotReady):
                if attempt == _LOCAL_RETRIES - 1:
                    raise  # nak: the consumer's back-off takes over
                await asyncio.sleep(0.02 * (attempt + 1))

    async def _apply_report(self, event: Envelope, ctx: Context) -> None:
        report = event.payload
        assert isinstance(report, Report)
        reviewer = REVIEWERS[EventType(str(event.type))]
        state, revision = await self._load(event)
        if state.state is S.GENERATING:
            # The artifact set is out (there is a report on it) but the state does not say so yet.
            raise TaskNotReady(f"report on task {event.task_id} before its artifact set was recorded")
        if state.state is not S.VALIDATING or reviewer not in state.awaiting:
            return  # a late or repeated report
        state.reports[reviewer] = report
        state.awaiting = [a for a in state.awaiting if a != reviewer]
        state.last_event = event.id
        if not state.awaiting:
            await self._conclude(state, ctx)
        await ctx.flush()
        await self.tasks.update(state, revision)

    async def _conclude(self, state: TaskState, ctx: Context) -> None:
        failed = {name: r for name, r in state.reports.items() if not r.passed}
        if failed:
            findings = [
                f for r in failed.values() for f in r.findings if f.severity.value not in ("info", "low")
            ]
            reason = "; ".join(
                f"{'QA failed' if name == 'qa' else 'security blocked'}: {r.summary}"
                for name, r in sorted(failed.items())
            )
            self._fail(ctx, state, reason, findings=findings)
            return
        try:
            written, out_dir = await self._write(state)
        except (PathEscape, OSError, ValueError) as exc:
            self._fail(ctx, state, f"writing artifacts failed: {exc}")
            return
        previous = state.move(S.READY)
        state.output_dir = str(out_dir)
        ctx.status(
            S.READY,
            previous,
            f"QA and security passed; {len(written)} files written to {out_dir}",
            output_dir=str(out_dir),
            files=written[:256],
        )
        ctx.note(NoteKind.COMPLETION, f"Task complete: {len(written)} artifacts in {out_dir}")

    async def _write(self, state: TaskState) -> tuple[list[str], Path]:
        from agents.devops.generate import GeneratedFile, write_artifacts

        assert state.artifact_seq is not None
        raw = await self.bus.js.get_msg(EVENTS_STREAM, state.artifact_seq)
        try:
            artifact_set = decode(raw.data or b"").payload
        except ContractError as exc:
            raise ValueError(f"stored artifact set unreadable: {exc.reason}") from None
        assert isinstance(artifact_set, ArtifactSetCompleted)
        req = state.requirement
        out_dir = resolve_inside(self.settings.workspace, req.output_dir or req.project, what="output dir")
        files = [
            GeneratedFile(path=a.path, content=a.content, target=a.target, sha256=a.sha256)
            for a in artifact_set.files
        ]
        result = await asyncio.to_thread(write_artifacts, files, out_dir, force=False, dry_run=False)
        return [str(p) for p in result.written], out_dir

    # -- helpers ---------------------------------------------------------------------------

    def _fail(
        self, ctx: Context, state: TaskState, reason: str, *, findings: list[Finding] | None = None
    ) -> None:
        previous = state.move(S.FAILED)
        state.awaiting = []
        ctx.status(S.FAILED, previous, reason, findings=(findings or [])[:256])
        ctx.note(NoteKind.STATUS, f"Status: deployment failed - {reason}")

    async def _load(self, event: Envelope) -> tuple[TaskState, int]:
        found = await self.tasks.get(event.task_id)
        if found is None:
            # The record follows the requirement within one redelivery of it; an answer that still
            # finds none after that is about no task of ours, and must not hold a lane forever.
            horizon = max(2 * self.bus.config.ack_wait_s, self.settings.credentials_deadline_s)
            age = abs((datetime.now(UTC) - event.occurred_at).total_seconds())
            if age > horizon:
                raise UnknownTask(f"no record of task {event.task_id} {age:.0f}s after this {event.type}")
            raise TaskNotReady(f"no state yet for task {event.task_id}")
        return found

    async def _sweep_deadlines(self) -> None:
        """Fail tasks whose awaited agent never answered, naming that agent."""
        while True:
            await asyncio.sleep(self.settings.sweep_interval_s)
            try:
                for task_id in await self.tasks.keys():
                    found = await self.tasks.get(task_id)
                    if found and found[0].overdue:
                        await self._expire(*found)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an outage: try again next round
                log.warning("devops.sweep_failed", error=str(exc) or type(exc).__name__)

    async def _expire(self, state: TaskState, revision: int) -> None:
        silent = ", ".join(state.awaiting)
        reason = f"deadline passed: no answer from {silent} (state {state.state.value})"
        previous = state.move(S.FAILED)
        state.awaiting = []
        event = EVENT_CLASSES[EventType.STATUS_CHANGED](
            id=derived_id(state.last_event, f"deadline:{previous.value}"),
            type=EventType.STATUS_CHANGED,
            task_id=state.task_id,
            causation_id=state.last_event,
            source=self.source,
            occurred_at=datetime.now(UTC),
            payload=StatusChanged(state=S.FAILED, previous=previous, agent=self.name, reason=reason),
        )
        await self.bus.publish(event)
        with contextlib.suppress(StateConflict):
            await self.tasks.update(state, revision)
        log.warning("devops.deadline", task_id=state.task_id, silent=silent)
