"""Notes, kept in memory."""

from fastapi import APIRouter

router = APIRouter(prefix="/notes", tags=["notes"])
NOTES: dict[int, str] = {1: "first note"}


@router.get("/{note_id}")
def read_note(note_id: int) -> dict[str, object]:
    return {"id": note_id, "text": NOTES.get(note_id, "")}
