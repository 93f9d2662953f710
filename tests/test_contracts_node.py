"""The published contract files as other ecosystems read them: Ajv (JSON Schema 2020-12, strict
mode, ajv-formats) compiles every schema and agrees with ``contracts.decode`` document by
document; the official AsyncAPI parser accepts asyncapi.json. Needs node and the packages of
tests/node (``make test`` runs ``npm ci`` there)."""

from __future__ import annotations

import json
from pathlib import Path

from contracts.payloads import EventType
from contracts.schema_export import ASYNCAPI_FILE, SCHEMA_DIR
from contracts.subjects import ROUTES, event_subject
from tests.contract_checks import ajv_agrees, corpus, node

FAST_DOCUMENTS = 400


def test_every_schema_compiles_in_ajv_strict_mode() -> None:
    """Invariant: Ajv 2020 in strict mode (no unknown keywords, no loose types) with ajv-formats
    compiles every published schema file."""
    result = node("check_schemas.mjs", str(SCHEMA_DIR))
    assert result.returncode == 0, result.stdout + result.stderr
    compiled = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("ok ")}
    assert compiled == {p.name for p in SCHEMA_DIR.glob("*.schema.json")}


def test_ajv_strict_refuses_what_issue_12_found(tmp_path: Path) -> None:
    """Invariant: the check is meaningful: the keywords the schemas used to carry (x-subject,
    OpenAPI's discriminator) make strict Ajv refuse the file."""
    schema = json.loads((SCHEMA_DIR / "event.schema.json").read_text())
    schema["discriminator"] = {"propertyName": "type", "mapping": {}}
    (tmp_path / "event.schema.json").write_text(json.dumps(schema))
    task = json.loads((SCHEMA_DIR / "task.requested.schema.json").read_text())
    (tmp_path / "task.requested.schema.json").write_text(json.dumps({**task, "x-subject": "s"}))
    result = node("check_schemas.mjs", str(tmp_path))
    assert result.returncode == 1
    assert 'unknown keyword: "discriminator"' in result.stdout
    assert 'unknown keyword: "x-subject"' in result.stdout


def test_ajv_and_decode_give_the_same_verdict() -> None:
    """Invariant: for schema documents and their near misses, Ajv strict + ajv-formats and
    contracts.decode agree (the slow differential test runs thousands through all three)."""
    ajv_agrees(corpus(FAST_DOCUMENTS))


def test_the_asyncapi_document_passes_the_official_parser() -> None:
    """Invariant: @asyncapi/parser accepts asyncapi.json with no error or warning."""
    result = node("check_asyncapi.mjs", str(SCHEMA_DIR / ASYNCAPI_FILE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok " in result.stdout and "AsyncAPI 3.0.0" in result.stdout, result.stdout


def test_the_asyncapi_parser_refuses_a_broken_document(tmp_path: Path) -> None:
    """Invariant: the parser check is meaningful: a payload schema with a bad type and an
    operation on a channel that does not exist are refused."""
    doc = json.loads((SCHEMA_DIR / ASYNCAPI_FILE).read_text())
    doc["components"]["schemas"]["Source"]["type"] = "thing"
    doc["operations"]["architect.receive.task.requested"]["channel"]["$ref"] = "#/channels/nowhere"
    broken = tmp_path / "asyncapi.json"
    broken.write_text(json.dumps(doc))
    result = node("check_asyncapi.mjs", str(broken))
    assert result.returncode == 1 and "refused" in result.stdout, result.stdout


def test_the_asyncapi_document_follows_the_subject_table() -> None:
    """Invariant: one channel per event type on its subject, and per agent one receive operation
    per consumed type and one send operation per published type (contracts.subjects.ROUTES)."""
    doc = json.loads((SCHEMA_DIR / ASYNCAPI_FILE).read_text())
    assert doc["asyncapi"] == "3.0.0"
    assert {k: c["address"] for k, c in doc["channels"].items()} == {
        t.value: event_subject(t, "{task_id}") for t in EventType
    }
    for route in ROUTES.values():
        for action, types in (("receive", route.consumes), ("send", route.publishes)):
            for event_type in types:
                op = doc["operations"][f"{route.agent}.{action}.{event_type.value}"]
                assert op["action"] == action
                assert op["channel"] == {"$ref": f"#/channels/{event_type.value}"}
    agents = {key.split(".")[0] for key in doc["operations"]}
    assert agents == {*ROUTES, "client"}
