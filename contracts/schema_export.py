"""JSON Schema export of the contracts, so clients in other languages can publish events."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import TypeAdapter

from contracts.envelope import EVENT_CLASSES, AnyEvent
from contracts.subjects import event_subject

SCHEMA_DIR = Path(__file__).parent / "schema"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _dump(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_schemas() -> dict[str, str]:
    """Return ``{file name: JSON text}`` for every event type plus the union of all of them."""
    files: dict[str, str] = {}
    for event_type, cls in EVENT_CLASSES.items():
        schema = cls.model_json_schema()
        schema["$schema"] = _DIALECT
        schema["$id"] = f"{event_type.value}.schema.json"
        schema["x-subject"] = event_subject(event_type, "{task_id}")
        files[f"{event_type.value}.schema.json"] = _dump(schema)
    union = TypeAdapter(AnyEvent).json_schema()
    union["$schema"] = _DIALECT
    union["$id"] = "event.schema.json"
    union["title"] = "OrchestraEvent"
    files["event.schema.json"] = _dump(union)
    return files


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write the rendered schemas, removing stale ones; returns the written paths."""
    directory.mkdir(parents=True, exist_ok=True)
    files = render_schemas()
    for stale in directory.glob("*.schema.json"):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, text in sorted(files.items()):
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
