"""The published contract files as other ecosystems read them: Ajv (JSON Schema 2020-12, strict
mode, ajv-formats) compiles every schema and agrees with ``contracts.decode`` document by
document; the official AsyncAPI parser accepts asyncapi.json. Needs node and the packages of
tests/node (``make test`` runs ``npm ci`` there)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from contracts.payloads import EventType
from contracts.schema_export import ASYNCAPI_FILE, SCHEMA_DIR
from contracts.subjects import ROUTES, event_subject
from tests.schema_documents import documents, near_misses, python_verdict

NODE_DIR = Path(__file__).resolve().parent / "node"
FAST_DOCUMENTS = 400
SLOW_DOCUMENTS = 3000


def node(script: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run one of the tests/node scripts; fails (not skips) when node or its packages are missing."""
    exe = shutil.which("node")
    assert exe, "node is not installed (Node 18+ is needed for the contract checks)"
    assert (NODE_DIR / "node_modules").is_dir(), f"run `npm ci` in {NODE_DIR} (make test does)"
    return subprocess.run(
        [exe, str(NODE_DIR / script), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


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


def corpus(examples: int) -> list[Any]:
    """``examples`` documents drawn from the schema and as many near misses."""
    drawn: list[Any] = []
    for strategy in (documents(), near_misses()):

        @settings(
            max_examples=examples,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(strategy)
        def collect(doc: Any) -> None:
            drawn.append(doc)

        collect()
    return drawn


def ajv_agrees(docs: list[Any]) -> int:
    """Assert Ajv's verdict equals decode's for each document; returns how many were checked."""
    lines = "\n".join(json.dumps(doc) for doc in docs) + "\n"
    result = node("check_schemas.mjs", str(SCHEMA_DIR), "--corpus", stdin=lines)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    verdicts = [line == "true" for line in result.stdout.splitlines() if line in ("true", "false")]
    assert len(verdicts) == len(docs)
    for doc, by_ajv in zip(docs, verdicts, strict=True):
        by_python, why = python_verdict(doc)
        assert by_ajv == by_python, f"Ajv {by_ajv}, decode {by_python} ({why}): {json.dumps(doc)[:600]}"
    assert 0 < sum(verdicts) < len(verdicts)
    return len(docs)


def test_ajv_and_decode_give_the_same_verdict() -> None:
    """Invariant: for schema documents and their near misses, Ajv strict + ajv-formats and
    contracts.decode agree (the third validator next to jsonschema in the differential test)."""
    ajv_agrees(corpus(FAST_DOCUMENTS))


@pytest.mark.slow
def test_ajv_and_decode_agree_on_thousands_of_documents() -> None:
    """Invariant: as above, on thousands of documents."""
    checked = ajv_agrees(corpus(SLOW_DOCUMENTS))
    print(f"\najv differential: {checked} documents")


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
