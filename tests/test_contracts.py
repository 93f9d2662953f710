"""Contracts: round trips, strict rejection, sizes, versions, and the committed JSON Schema files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from contracts import MAX_EVENT_BYTES, ContractError, EventType, Source, decode, encode, new_event, new_id
from contracts.envelope import EVENT_CLASSES, same_event
from contracts.ids import derived_id, is_id
from contracts.payloads import KnowledgeNote, StatusChanged, TaskRequested
from contracts.schema_export import SCHEMA_DIR, render_schemas
from contracts.subjects import ROUTES, event_subject, owners
from contracts.text import single_line
from contracts.vocabulary import SUCCESS_STATES, TRANSITIONS, DeploymentState, NoteKind, Severity

SRC = Source(agent="cli", instance="test")


def task_event(**payload) -> object:
    body = {"text": "Deploy to Kubernetes", "project": "examples/fastapi-service", **payload}
    return new_event(EventType.TASK_REQUESTED, TaskRequested(**body), task_id=new_id(), source=SRC)


def test_round_trip_keeps_every_field() -> None:
    event = task_event(targets=["k8s"], strategy="canary")
    back = decode(encode(event))
    assert back == event
    assert type(back).__name__ == "TaskRequestedEvent"
    assert back.subject() == event_subject(EventType.TASK_REQUESTED, event.task_id)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d.update(schema_version=2), "unsupported schema_version 2"),
        (lambda d: d["payload"].update(surprise=1), "Extra inputs are not permitted"),
        (lambda d: d.pop("task_id"), "task_id"),
        (lambda d: d.update(type="task.unknown"), "type"),
        (lambda d: d.update(task_id="a.b"), "task_id"),
        (lambda d: d["payload"].update(text="x" * 5000), "text"),
        (lambda d: d["payload"].update(targets=["moon"]), "targets"),
    ],
)
def test_invalid_events_are_rejected_with_a_reason(mutate, reason) -> None:
    doc = json.loads(encode(task_event()))
    mutate(doc)
    with pytest.raises(ContractError) as err:
        decode(json.dumps(doc).encode())
    assert reason in err.value.reason


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d.update(schema_version=True), "schema_version: Input should be a valid integer"),
        (lambda d: d.update(schema_version="1"), "schema_version: Input should be a valid integer"),
        (lambda d: d.update(occurred_at=1_764_158_400), "occurred_at: Input should be a valid datetime"),
        (
            lambda d: d.update(occurred_at="2026-11-26T12:00Z"),
            "occurred_at: Value error, expected an RFC 3339",
        ),
        (lambda d: d["payload"].update(service={"port": "8080"}), "port: Input should be a valid integer"),
        (lambda d: d["payload"].update(service={"port": 8080.5}), "port: Input should be a valid integer"),
        (lambda d: d["payload"].update(targets="k8s"), "targets"),
        (lambda d: d["payload"].update(text=None), "text: Input should be a valid string"),
    ],
)
def test_wire_values_are_not_coerced(mutate, reason) -> None:
    """Invariant: off the wire a value must have the JSON type the schema names (issue 12: these
    were coerced and the task reached ready)."""
    doc = json.loads(encode(task_event()))
    mutate(doc)
    with pytest.raises(ContractError) as err:
        decode(json.dumps(doc).encode())
    assert reason in err.value.reason


def test_integral_numbers_are_integers_as_json_schema_says() -> None:
    """Invariant: 8080.0 and 8.08e3 are the integer 8080 (JSON has one number type); decode
    reads them as such instead of refusing what every JSON Schema validator accepts."""
    doc = json.loads(encode(task_event(service={"port": 8080})))
    raw = (
        json.dumps(doc)
        .replace('"port": 8080', '"port": 8.08e3')
        .replace('"schema_version": 1', '"schema_version": 1.0')
    )
    assert "8.08e3" in raw and "1.0" in raw
    event = decode(raw.encode())
    assert event.payload.service.port == 8080 and event.schema_version == 1


def test_python_callers_keep_their_conveniences() -> None:
    """Invariant: strictness is for the wire; code may still pass an enum's value or a datetime."""
    event = task_event(targets=["k8s"], strategy="canary", service={"port": 8080})
    assert decode(encode(event)) == event


@pytest.mark.parametrize("raw", [b"", b"\xff\xfe", b"[]", b"null", b'{"type": 1}', "é".encode() * 10])
def test_garbage_is_a_contract_error_not_a_crash(raw: bytes) -> None:
    with pytest.raises(ContractError):
        decode(raw)


def test_oversized_payloads_are_refused_both_ways() -> None:
    with pytest.raises(ContractError, match="over the"):
        decode(b"{" + b" " * MAX_EVENT_BYTES + b"}")
    big = new_event(
        EventType.KNOWLEDGE_NOTE,
        KnowledgeNote(kind=NoteKind.EDIT, text="x" * 4000, agent="a"),
        task_id="t",
        source=SRC,
    )
    assert len(encode(big)) < MAX_EVENT_BYTES


def test_ids_are_sortable_and_derived_ids_are_stable() -> None:
    a, b = new_id(), new_id()
    assert is_id(a) and is_id(b) and len(a) == 26
    assert derived_id(a, "x") == derived_id(a, "x") != derived_id(a, "y")
    assert derived_id(a, "x")[:10] == a[:10]


@pytest.mark.parametrize(
    "parent",
    ["3f2b8c1e-9a4d-4e2f-8b7a-1c2d3e4f5a6b", "order_42", "X", "0" * 64, new_id()],
    ids=["uuid", "word", "one-char", "max-length", "ulid"],
)
def test_derived_ids_depend_on_the_whole_parent_whatever_its_form(parent: str) -> None:
    """Invariant: a follow-up id is a function of (parent, salt, key) only: the same on every call
    (a redelivery re-emits it), a valid id of its own, and different for another parent, salt or key."""
    child = derived_id(parent, "architect:0")
    assert child == derived_id(parent, "architect:0") and is_id(child)
    assert child != derived_id(parent + "0", "architect:0")
    assert child != derived_id(parent, "architect:1")
    keyed = derived_id(parent, "architect:0", b"deployment-key-1")
    assert keyed == derived_id(parent, "architect:0", b"deployment-key-1") and is_id(keyed)
    assert keyed not in (child, derived_id(parent, "architect:0", b"deployment-key-2"))
    # Follow-ups of one parent share a prefix (they sort together), a ULID parent's time prefix.
    assert child[:10] == derived_id(parent, "devops:3")[:10]
    assert keyed[:10] == derived_id(parent, "devops:3", b"deployment-key-1")[:10]
    if is_id(parent):
        assert child[:10] == keyed[:10] == parent[:10]


def test_same_event_ignores_only_time_and_instance() -> None:
    a = new_event(
        EventType.KNOWLEDGE_NOTE,
        KnowledgeNote(kind=NoteKind.EDIT, text="x", agent="a"),
        task_id="t",
        source=SRC,
    )
    again = a.model_copy(
        update={
            "occurred_at": a.occurred_at.replace(year=2030),
            "source": Source(agent=SRC.agent, instance="other"),
        }
    )
    assert same_event(a, again)
    assert not same_event(
        a, a.model_copy(update={"payload": KnowledgeNote(kind=NoteKind.EDIT, text="y", agent="a")})
    )
    assert not same_event(a, a.model_copy(update={"source": Source(agent="mallory", instance=SRC.instance)}))
    assert not same_event(a, a.model_copy(update={"causation_id": "c"}))
    assert not same_event(a, a.model_copy(update={"task_id": "u"}))


def test_owned_event_types_come_from_the_subject_table() -> None:
    assert owners(EventType.REPORT_QA) == {"qa"}
    assert owners(EventType.REPORT_SECURITY) == {"security"}
    assert owners(EventType.DECISION_RECORDED) == {"architect", "devops", "security"}
    assert owners(EventType.TASK_REQUESTED) is None and owners(EventType.KNOWLEDGE_NOTE) is None
    for route in ROUTES.values():
        for event_type in route.publishes:
            assert route.agent in (owners(event_type) or {route.agent})


def test_every_state_reaches_a_terminal_one() -> None:
    for state in DeploymentState:
        seen, frontier = set(), {state}
        while frontier:
            s = frontier.pop()
            seen.add(s)
            frontier |= set(TRANSITIONS[s]) - seen
        assert any(s.terminal for s in seen), state


def test_terminal_and_success_states_are_defined_once() -> None:
    """Success is a terminal state with no way onward but a roll-back; the rest of the terminal ones fail."""
    assert {s for s in DeploymentState if s.succeeded} == {DeploymentState.READY, DeploymentState.DEPLOYED}
    assert {s for s in DeploymentState if s.terminal} == {
        DeploymentState.READY,
        DeploymentState.DEPLOYED,
        DeploymentState.FAILED,
        DeploymentState.ROLLED_BACK,
    }
    assert all(s.terminal and TRANSITIONS[s] <= {DeploymentState.ROLLED_BACK} for s in SUCCESS_STATES)


def test_severity_thresholds_qa_fails_above_low_security_blocks_at_high() -> None:
    assert [s.value for s in Severity if s.failing] == ["medium", "high", "critical"]
    assert [s.value for s in Severity if s.blocking] == ["high", "critical"]


def test_single_line_folds_every_line_break_and_run_of_white_space() -> None:
    assert single_line("  a\nb\r\n\tc\u2028d  ") == "a b c d"


def test_an_event_id_is_fresh_or_the_one_given() -> None:
    """new_event is the one way events are made: a follow-up passes the id derived from its cause."""
    note = KnowledgeNote(kind=NoteKind.STATUS, text="x", agent="qa")
    fresh = new_event(EventType.KNOWLEDGE_NOTE, note, task_id="t", source=SRC)
    assert is_id(fresh.id)
    derived = derived_id(fresh.id, "qa:0")
    follow = new_event(
        EventType.KNOWLEDGE_NOTE, note, task_id="t", source=SRC, causation_id=fresh.id, event_id=derived
    )
    assert (follow.id, follow.causation_id, type(follow)) == (derived, fresh.id, type(fresh))


def test_status_payload_requires_a_known_state() -> None:
    with pytest.raises(ValueError):
        StatusChanged(state="exploded", agent="devops")


def test_committed_schema_files_match_the_models() -> None:
    """Fails when a model or the subject table changed without `orchestra contracts export`
    (make schema): the JSON Schemas and asyncapi.json."""
    rendered = render_schemas()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in SCHEMA_DIR.glob("*.json")}
    assert on_disk == rendered


def test_schema_files_validate_a_real_event() -> None:
    import jsonschema

    schema = json.loads((SCHEMA_DIR / "event.schema.json").read_text())
    jsonschema.validate(json.loads(encode(task_event())), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"type": "task.requested"}, schema)


def test_every_event_type_has_a_model_and_a_consumer() -> None:
    assert set(EVENT_CLASSES) == set(EventType)
    consumed = {t for r in ROUTES.values() if r.agent != "knowledge" for t in r.consumes}
    # status.changed and knowledge.note are for people and the knowledge store.
    assert set(EventType) - consumed == {
        EventType.STATUS_CHANGED,
        EventType.KNOWLEDGE_NOTE,
        EventType.DECISION_RECORDED,
    }


def test_contracts_export_writes_the_schemas_and_the_asyncapi_document(tmp_path: Path) -> None:
    """Invariant: `orchestra contracts export --dir D` writes every published file (the JSON
    Schemas and asyncapi.json) exactly as rendered, and removes a stale one."""
    (tmp_path / "gone.schema.json").write_text("{}")
    exe = Path(sys.executable).with_name("orchestra")
    done = subprocess.run(
        [str(exe), "contracts", "export", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    written = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("*.json")}
    assert written == render_schemas()
    assert "asyncapi.json" in written
