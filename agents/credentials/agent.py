"""The credential manager: answers credential requests with references, never values."""

from __future__ import annotations

from typing import ClassVar

from agents.credential_policy import issue
from agents.worker import Context, Worker, handles
from contracts import Envelope, EventType
from contracts.payloads import CredentialRequested
from contracts.vocabulary import NoteKind


class Credentials(Worker):
    name: ClassVar[str] = "credentials"

    @handles(EventType.CREDENTIAL_REQUESTED)
    async def references(self, event: Envelope, ctx: Context) -> None:
        request = event.payload
        assert isinstance(request, CredentialRequested)
        issued = issue(request)
        ctx.emit(EventType.CREDENTIAL_ISSUED, issued)
        names = sorted({s.env_var for s in issued.secrets})
        ctx.note(
            NoteKind.DECISION,
            f"Credentials: {len(names)} secret(s) for {request.service} by reference "
            f"({', '.join(names) or 'none'}); config vars {', '.join(issued.config_vars) or 'none'}",
        )
