"""JSON Schema and AsyncAPI export of the contracts, so clients in other languages can publish
and follow events."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import TypeAdapter

from contracts.asyncapi import asyncapi_document
from contracts.envelope import EVENT_CLASSES, AnyEvent
from contracts.payloads import EventType
from contracts.subjects import event_subject

SCHEMA_DIR = Path(__file__).parent / "schema"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"
ASYNCAPI_FILE = "asyncapi.json"


def _dump(schema: dict) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def event_schemas() -> dict[EventType, dict]:
    """The JSON Schema of each event type's envelope (with its payload), as dicts."""
    schemas = {}
    for event_type, cls in EVENT_CLASSES.items():
        schema = cls.model_json_schema()
        schema["$schema"] = _DIALECT
        schema["$id"] = f"{event_type.value}.schema.json"
        # Standard keywords only (validators in strict mode refuse others, e.g. x-subject);
        # the subjects are described properly in asyncapi.json.
        schema["$comment"] = f"Published on {event_subject(event_type, '{task_id}')}"
        schemas[event_type] = schema
    return schemas


def union_schema() -> dict:
    """Any event: one of the per-type schemas, told apart by their ``type`` const."""
    union = TypeAdapter(AnyEvent).json_schema()
    # pydantic adds OpenAPI's `discriminator`, which JSON Schema does not define; oneOf alone
    # says the same, since each branch requires its own `type` value.
    union.pop("discriminator", None)
    union["$schema"] = _DIALECT
    union["$id"] = "event.schema.json"
    union["title"] = "OrchestraEvent"
    return union


def render_schemas() -> dict[str, str]:
    """Return ``{file name: JSON text}`` of every published contract file: the JSON Schema of
    each event type, of any event (``event.schema.json``) and the AsyncAPI document."""
    schemas = event_schemas()
    files = {f"{t.value}.schema.json": _dump(s) for t, s in schemas.items()}
    files["event.schema.json"] = _dump(union_schema())
    files[ASYNCAPI_FILE] = _dump(asyncapi_document(schemas))
    return files


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write the rendered schemas, removing stale ones; returns the written paths."""
    directory.mkdir(parents=True, exist_ok=True)
    files = render_schemas()
    for stale in directory.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, text in sorted(files.items()):
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
