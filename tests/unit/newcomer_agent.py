"""A minimal agent for the registry tests (not registered): it notes every artifact set it sees."""

from __future__ import annotations

from typing import ClassVar

from agents.worker import Context, Worker, handles
from contracts import Envelope, EventType
from contracts.vocabulary import NoteKind


class Newcomer(Worker):
    name: ClassVar[str] = "newcomer"

    @handles(EventType.ARTIFACT_SET_COMPLETED)
    async def seen(self, event: Envelope, ctx: Context) -> None:
        ctx.note(NoteKind.STATUS, f"newcomer saw an artifact set for task {event.task_id}")
