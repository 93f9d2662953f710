"""QA: runs the offline validators of ARTIFACTS.md on each artifact set and reports per file."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from agents.qa.validators import ci_runs_tests, validate
from agents.worker import Context, Worker, handles
from contracts import Envelope, EventType
from contracts.payloads import ArtifactSetCompleted, Report
from contracts.vocabulary import NoteKind


class QA(Worker):
    name: ClassVar[str] = "qa"

    @handles(EventType.ARTIFACT_SET_COMPLETED)
    async def check(self, event: Envelope, ctx: Context) -> None:
        artifacts = event.payload
        assert isinstance(artifacts, ArtifactSetCompleted)
        files = {f.path: f.content for f in artifacts.files}
        # The validators are subprocesses and CPU work: keep the event loop (and heartbeats) free.
        tools = self.settings.validators != "fast"
        result = await asyncio.to_thread(lambda: validate(files, tools=tools))
        findings = list(result.findings)
        if artifacts.service.test_command:
            findings += ci_runs_tests(files, list(artifacts.service.test_command))
        failing = [f for f in findings if f.severity.value not in ("info", "low")]
        passed = not failing
        summary = f"{len(files)} files, {len(result.tools)} validators: " + (
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
                tools=result.tools,
                summary=summary,
            ),
        )
        ctx.note(NoteKind.STATUS, f"QA: {summary}")
