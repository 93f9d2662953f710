"""QA: runs the offline validators of ARTIFACTS.md on each artifact set and reports per file."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from agents.qa.validators import ValidationResult, ci_runs_tests, validate
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
        check = validate_in_process if self.settings.validators == "fast" else validate
        result = await asyncio.to_thread(check, files)
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
                files=sorted(files),
                findings=findings[:2000],
                tools=result.tools,
                summary=summary,
            ),
        )
        ctx.note(NoteKind.STATUS, f"QA: {summary}")


def validate_in_process(files: dict[str, str]) -> ValidationResult:
    """The "fast" validators setting: only the checks that run in this process (Kubernetes and ECS
    schemas, HCL, JSON, Jenkinsfile structure), none of the command-line tools."""
    from agents.qa import validators
    from agents.qa.findings import sort_key
    from agents.qa.workspace import workspace

    with workspace(files) as space:
        # validate() has no switch for its subprocess tools; its job list is reused, not copied.
        _, internal = validators._jobs(space, validators.DEFAULT_KUBERNETES_VERSION, False)
        outcomes = [job() for job in internal]
    findings = sorted([*space.refused, *(f for o in outcomes for f in o.findings)], key=sort_key)
    passed = not any(f.severity.value not in ("info", "low") for f in findings)
    tools = {o.tool: o.version for o in sorted(outcomes, key=lambda o: o.tool)}
    return ValidationResult(findings=findings, tools=tools, files=space.paths, passed=passed)
