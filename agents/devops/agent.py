"""DevOps: owns each task's deployment state; inspects, asks for credential references,
generates the artifact set, waits for QA and security, then writes the files (or fails)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import ClassVar

import structlog

from agents.devops.silence import Liveness
from agents.lifecycle import StateConflict, TaskState, TaskStore
from agents.paths import PathEscape, resolve_inside
from agents.worker import Context, Worker, handles
from bus.errors import Deferred, Reject
from contracts import ContractError, Envelope, EventType, decode, new_event
from contracts.limits import check_payload_size, checked
from contracts.payloads import (
    Artifact,
    ArtifactSetCompleted,
    CredentialIssued,
    CredentialRequested,
    Finding,
    Report,
    RequirementIssued,
    StatusChanged,
)
from contracts.subjects import EVENTS_STREAM
from contracts.vocabulary import DeploymentState, NoteKind

log = structlog.get_logger("agents.devops")
S = DeploymentState
REVIEWERS = {EventType.REPORT_QA: "qa", EventType.REPORT_SECURITY: "security"}
_LOCAL_RETRIES = 8


class TaskNotReady(Deferred):
    """An answer arrived before the task's state was recorded (the events that caused it are
    published before the state is written, and a crash can widen that gap to a redelivery). It
    waits in the stream, not in a handler lane (nak with delay), for as long as a record could
    still appear; then it is dead-lettered."""


class NoRecordYet(Deferred):
    """An answer about a task DevOps has no record of (yet): it waits in the stream at once, never in
    a lane, for as long as a record could still appear (the requirement's redelivery after a crash);
    then it is dead-lettered."""


class DevOps(Worker):
    name: ClassVar[str] = "devops"

    async def start(self) -> None:
        self.tasks = TaskStore(await self.bus.tasks_kv())
        self.liveness = Liveness(self.bus.js, self.bus.clock)
        self._finished: set[str] = set()  # tasks seen terminal: the sweeper skips them
        await super().start()
        self._stopping = asyncio.Event()
        self._sweeper = asyncio.create_task(self._sweep_deadlines(), name="devops:deadlines")

    async def stop(self) -> None:
        # The flag as well as the cancel: on Python 3.11 asyncio.wait_for (inside nats-py's KV
        # calls) can swallow a cancellation that lands as its call completes, and the sweeper
        # would loop on; it checks the flag between tasks. The wait is bounded either way.
        self._stopping.set()
        self._sweeper.cancel()
        await asyncio.wait({self._sweeper}, timeout=10)

    # -- requirement -> credential request ------------------------------------------------

    @handles(EventType.REQUIREMENT_ISSUED)
    async def on_requirement(self, event: Envelope, ctx: Context) -> None:
        from agents.inspection.inspect import InspectionError, inspect_project

        req = event.payload
        assert isinstance(req, RequirementIssued)
        existing = await self.tasks.get(event.task_id)
        if existing is not None and existing[0].requirement_event != event.id:
            # A task is planned once: another requirement for it never touches its state.
            raise Reject(
                f"task {event.task_id} already has requirement {existing[0].requirement_event} "
                f"(state {existing[0].state.value})"
            )
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
        request = ctx.emit(
            EventType.CREDENTIAL_REQUESTED,
            CredentialRequested(
                service=facts.name,
                env_vars=list(facts.env_vars),
                targets=req.targets,
                environments=req.environments,
            ),
        )
        asked = ctx.outbox.index(request)
        state.wait_for(["credentials"], self.settings.credentials_deadline_s, self.bus.clock.time())
        acks = await ctx.flush()
        state.asked_seq = acks[asked].seq  # what the credential manager must answer
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
            artifact_set = self._render(state)
        except Exception as exc:  # a target the generator cannot produce: say so, never placeholders
            self._fail(ctx, state, f"artifact generation failed: {exc}")
            await ctx.flush()
            await self.tasks.update(state, revision)
            return
        files = artifact_set.files
        ctx.emit(EventType.ARTIFACT_SET_COMPLETED, artifact_set)
        ctx.note(NoteKind.EDIT, f"Edit: {len(files)} files - " + ", ".join(f.path for f in files))
        previous = state.move(S.VALIDATING)
        ctx.status(S.VALIDATING, previous, f"{len(files)} artifacts generated; waiting for QA and security")
        acks = await ctx.flush()
        # The artifact set was emitted first. The publisher returns the PubAck of *our* set even
        # when someone pre-published something under its id, so this sequence is ours.
        state.artifact_seq = state.asked_seq = acks[0].seq
        state.artifact_digest = artifact_set.digest()  # every verdict must name this set
        state.wait_for(["qa", "security"], self.settings.validation_deadline_s, self.bus.clock.time())
        await self.tasks.update(state, revision)

    def _render(self, state: TaskState) -> ArtifactSetCompleted:
        from agents.devops.generate import generate
        from agents.devops.spec import AppSpec
        from agents.inspection.facts import ProjectFacts

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
        # QA's smoke boot builds the image from the project: the set names it.
        whole = ArtifactSetCompleted(
            targets=req.targets, files=files, service=facts.to_spec(), project=req.project
        )
        # The set travels as one event: refuse it here, in one line, rather than at publish time.
        check_payload_size(whole, "artifact set")
        return whole

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
                    raise  # nak: the consumer's back-off (or the deferral) takes over
                await asyncio.sleep(0.02 * (attempt + 1))

    async def _apply_report(self, event: Envelope, ctx: Context) -> None:
        report = event.payload
        assert isinstance(report, Report)
        reviewer = REVIEWERS[EventType(str(event.type))]
        state, revision = await self._load(event)
        if state.state is S.GENERATING:
            # The artifact set is out (there is a report on it) but the state does not say so yet.
            raise TaskNotReady(
                f"report on task {event.task_id} before its artifact set was recorded",
                self._horizon_left(event),
            )
        if state.artifact_digest and report.artifact_digest != state.artifact_digest:
            # A verdict on some other set (a forged or replayed one), or on none: never ours.
            judged = report.artifact_digest[:12] if report.artifact_digest else "no artifact set"
            raise Reject(
                f"{reviewer} report on task {event.task_id} judges {judged}, "
                f"not the artifact set devops generated ({state.artifact_digest[:12]})"
            )
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
            findings = [f for r in failed.values() for f in r.findings if f.severity.failing]
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
        if (
            not isinstance(artifact_set, ArtifactSetCompleted)
            or artifact_set.digest() != state.artifact_digest
        ):
            raise ValueError(f"stream sequence {state.artifact_seq} is not the artifact set devops generated")
        req = state.requirement
        out_dir = resolve_inside(self.settings.workspace, req.output_dir or req.project, what="output dir")
        files = [
            GeneratedFile(path=a.path, content=a.content, target=a.target, sha256=a.sha256)
            for a in artifact_set.files
        ]

        def checked_write():  # CPU and disk: off the event loop
            refuse_secrets({f.path: f.content for f in files})
            return write_artifacts(files, out_dir, force=False, dry_run=False)

        result = await asyncio.to_thread(checked_write)
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
            # finds none after that is about no task of ours. Meanwhile it waits in the stream.
            left = self._horizon_left(event)
            if left <= 0:
                raise Reject(f"no record of task {event.task_id} this long after its {event.type}")
            raise NoRecordYet(f"no record of task {event.task_id} yet", left)
        return found

    def _horizon_left(self, event: Envelope) -> float:
        """Seconds a record of the event's task may still take to appear (0 when past)."""
        horizon = max(2 * self.bus.config.ack_wait_s, self.settings.credentials_deadline_s)
        age = abs((self.bus.clock.now() - event.occurred_at).total_seconds())
        return max(horizon - age, 0.0)

    def _window(self, agent: str) -> float:
        return (
            self.settings.credentials_deadline_s
            if agent == "credentials"
            else self.settings.validation_deadline_s
        )

    async def _sweep_deadlines(self) -> None:
        """Fail tasks whose awaited agent fell silent (agents/devops/silence.py), naming it."""
        while not self._stopping.is_set():
            await asyncio.sleep(self.settings.sweep_interval_s)
            self.liveness.new_round()
            try:
                for task_id in await self.tasks.keys():
                    if self._stopping.is_set():
                        return
                    if task_id in self._finished:
                        continue
                    found = await self.tasks.get(task_id)
                    if found is None:
                        continue
                    state = found[0]
                    if state.state.terminal:
                        self._finished.add(task_id)
                    elif state.overdue(self.bus.clock.time()):
                        silent = [a for a in state.awaiting if await self._silent(state, a)]
                        # Read again: an answer recorded since the first read (then acked, which
                        # is what the consumer state showed) means nobody was silent.
                        fresh = await self.tasks.get(task_id) if silent else None
                        if fresh is not None and fresh[1] == found[1]:
                            await self._expire(*fresh, silent=silent)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # an outage: try again next round
                log.warning("devops.sweep_failed", error=str(exc) or type(exc).__name__)

    async def _silent(self, state: TaskState, agent: str) -> bool:
        window = self._window(agent)
        return await self.liveness.silent(agent, state.asked_seq, state.deadline - window, window)

    async def _expire(self, state: TaskState, revision: int, *, silent: list[str]) -> None:
        names = ", ".join(silent)
        reason = f"deadline passed: no answer from {names} (state {state.state.value})"
        previous = state.move(S.FAILED)
        state.awaiting = []
        event = new_event(
            EventType.STATUS_CHANGED,
            StatusChanged(state=S.FAILED, previous=previous, agent=self.name, reason=reason),
            task_id=state.task_id,
            source=self.source,
            causation_id=state.last_event,
            event_id=self.derive_id(state.last_event, f"deadline:{previous.value}"),
            occurred_at=self.bus.clock.now(),
        )
        await self.bus.publish(event)
        with contextlib.suppress(StateConflict):
            await self.tasks.update(state, revision)
        log.warning("devops.deadline", task_id=state.task_id, silent=names)


def refuse_secrets(files: dict[str, str]) -> None:
    """Raise ValueError when a file holds a literal secret (the security agent's own detectors):
    DevOps never writes one, whatever verdict reached it."""
    from agents.review.secrets_scan import scan

    blocking = [f for f in scan(files) if f.severity.blocking]
    if blocking:
        first = blocking[0]
        more = f" (+{len(blocking) - 1} more)" if len(blocking) > 1 else ""
        raise ValueError(f"refused: {first.file} line {first.line}: {first.message}{more}")
