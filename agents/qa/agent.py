"""QA: runs the offline validators (docs/artifacts.md) on each artifact set and reports per file,
then proves the set works with a smoke boot (agents.qa.smoke): install, start, port, health."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

import structlog

from agents.paths import PathEscape, resolve_inside
from agents.qa.smoke import SmokeOptions, SmokeResult, smoke_boot
from agents.qa.smoke.report import skipped
from agents.qa.validators import ci_runs_tests, validate
from agents.worker import Context, Worker, handles
from contracts import Envelope, EventType
from contracts.payloads import ArtifactSetCompleted, Report
from contracts.vocabulary import NoteKind

log = structlog.get_logger("agents.qa")
# Smoke boots run for minutes: their own threads, so they never hold the default executor's
# threads that every agent of the process shares (validators, file writes).
_SMOKE_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="qa-smoke")


class QA(Worker):
    name: ClassVar[str] = "qa"

    @handles(EventType.ARTIFACT_SET_COMPLETED)
    async def check(self, event: Envelope, ctx: Context) -> None:
        artifacts = event.payload
        assert isinstance(artifacts, ArtifactSetCompleted)
        files = {f.path: f.content for f in artifacts.files}
        # The validators are subprocesses and CPU work, the smoke boot a whole build: both off the
        # event loop (and side by side), so heartbeats keep the message in progress meanwhile.
        tools = self.settings.validators != "fast"
        validation = asyncio.to_thread(lambda: validate(files, tools=tools))
        if self.settings.smoke_boot:
            loop = asyncio.get_running_loop()
            smoke = loop.run_in_executor(_SMOKE_POOL, self._smoke, artifacts, files)
            result, smoked = await asyncio.gather(validation, smoke)
        else:
            result, smoked = await validation, None
        findings = list(result.findings)
        tool_versions = dict(result.tools)
        if smoked is not None:
            findings += smoked.findings
            tool_versions["smoke-boot"] = smoked.tool
        if artifacts.service.test_command:
            findings += ci_runs_tests(files, list(artifacts.service.test_command))
        failing = [f for f in findings if f.severity.failing]
        passed = not failing
        summary = f"{len(files)} files, {len(tool_versions)} validators: " + (
            "all passed"
            if passed
            else f"{len(failing)} finding(s) in {len({f.file for f in failing})} file(s)"
        )
        ctx.emit(
            EventType.REPORT_QA,
            Report(
                passed=passed,
                artifact_digest=artifacts.digest(),
                files=sorted(files),
                findings=findings[:2000],
                tools=tool_versions,
                summary=summary,
            ),
        )
        ctx.note(NoteKind.STATUS, f"QA: {summary}")

    def _smoke(self, artifacts: ArtifactSetCompleted, files: dict[str, str]) -> SmokeResult:
        """The smoke boot of one artifact set (runs in a smoke thread)."""
        project: Path | None = None
        if artifacts.project:
            try:
                project = resolve_inside(self.settings.workspace, artifacts.project, what="project path")
            except PathEscape as exc:
                return SmokeResult([skipped(str(exc))])
        options = SmokeOptions(
            cache=self.settings.smoke_cache,
            timeout_s=self.settings.smoke_timeout_s,
            start_timeout_s=self.settings.smoke_start_timeout_s,
            engine=self.settings.smoke_engine,
        )
        try:
            return smoke_boot(files, project, options, env_vars=artifacts.service.env_vars or ())
        except Exception as exc:  # a bug of ours must not fail (or retry) the review: report it
            log.exception("qa.smoke_boot_crashed")
            return SmokeResult([skipped(f"internal error: {type(exc).__name__}: {exc}")])
