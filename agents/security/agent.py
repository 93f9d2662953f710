"""Security: container, Kubernetes and CI rules, secret scanning and checkov; HIGH findings block."""

from __future__ import annotations

import asyncio
from typing import ClassVar

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
        passed = not blocking
        summary = f"{len(findings)} finding(s), {len(blocking)} blocking (high or critical)"
        ctx.emit(
            EventType.REPORT_SECURITY,
            Report(passed=passed, files=sorted(files), findings=findings[:2000], summary=summary),
        )
        ctx.note(NoteKind.STATUS, f"Security: {'passed' if passed else 'blocked'} - {summary}")

    def _audit(self, files: dict[str, str]) -> list[Finding]:
        return list(scan(files))
