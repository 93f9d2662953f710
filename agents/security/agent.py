"""Security: container, Kubernetes and CI rules, secret scanning and checkov; HIGH and CRITICAL
findings block (``Severity.blocking``)."""

from __future__ import annotations

import asyncio
from typing import ClassVar

from agents.security.checkov import available as checkov_available
from agents.security.checkov import run_checkov
from agents.security.rules import passed as rules_passed
from agents.security.rules import scan
from agents.worker import Context, Worker, handles
from contracts import Envelope, EventType
from contracts.payloads import ArtifactSetCompleted, Finding, Report
from contracts.vocabulary import NoteKind


class Security(Worker):
    name: ClassVar[str] = "security"

    @handles(EventType.ARTIFACT_SET_COMPLETED)
    async def audit(self, event: Envelope, ctx: Context) -> None:
        artifacts = event.payload
        assert isinstance(artifacts, ArtifactSetCompleted)
        files = {f.path: f.content for f in artifacts.files}
        findings: list[Finding] = await asyncio.to_thread(self._audit, files)
        blocking = [f for f in findings if f.severity.blocking]
        passed = rules_passed(findings)
        summary = f"{len(findings)} finding(s), {len(blocking)} blocking (high or critical)"
        ctx.emit(
            EventType.REPORT_SECURITY,
            Report(
                passed=passed,
                artifact_digest=artifacts.digest(),
                files=sorted(files),
                findings=findings[:2000],
                summary=summary,
            ),
        )
        ctx.note(NoteKind.STATUS, f"Security: {'passed' if passed else 'blocked'} - {summary}")

    def _audit(self, files: dict[str, str]) -> list[Finding]:
        findings = list(scan(files))
        if self.settings.security_checkov and checkov_available():
            findings += run_checkov(files)
        return findings
