"""Bad input on the decode path, property-based: whatever bytes arrive, ``contracts.decode`` returns
a valid event or raises ContractError with one line saying why; a valid event always survives
re-encoding and everything the knowledge store does with it (summary, kind, SQLite row, FTS)."""

from __future__ import annotations

import copy
import json
import sqlite3
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agents.knowledge.store import _INSERT, SCHEMA, _row
from agents.knowledge.summary import kind_of, summarize
from bus.deadletter import make_dead_letter
from contracts import MAX_EVENT_BYTES, ContractError, Envelope, EventType, decode, encode
from tests.faults.samples import all_samples, sample

SAMPLES = [json.loads(e.model_dump_json(exclude_none=True)) for e in all_samples()]
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def check(raw: bytes) -> Envelope | None:
    """The property every input must satisfy."""
    try:
        event = decode(raw)
    except ContractError as exc:
        assert exc.reason and len(exc.reason) < 1000, exc.reason
        # What an operator reads (dead letter, log line) is one line. (The reason itself can carry
        # a newline from a hostile key name: contracts.envelope._explain does not escape it.)
        letter = make_dead_letter(
            consumer="c", reason=exc.reason, subject="s", stream_seq=1, deliveries=1, headers={}, data=raw
        )
        assert "\n" not in letter.reason and "\r" not in letter.reason, letter.reason
        return None
    survives(event)
    return event


def survives(event: Envelope) -> None:
    again = decode(encode(event))
    assert again == event
    assert summarize(event) is not None and kind_of(event)
    db = sqlite3.connect(":memory:")
    try:
        db.executescript(SCHEMA)
        db.execute(_INSERT, _row(event))
        db.execute(_INSERT, _row(event))  # the duplicate delivery
        assert db.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    finally:
        db.close()


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes(raw: bytes) -> None:
    """Invariant: any bytes decode to a valid event or raise ContractError with a reason."""
    check(raw)


@FUZZ
@given(json_values)
def test_random_json_documents(doc: Any) -> None:
    """Invariant: any JSON document decodes to a valid event or raises ContractError with a reason."""
    check(json.dumps(doc).encode())


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += _paths(value, (*prefix, i))
    return out


def _set(doc: Any, path: tuple, value: Any, *, delete: bool = False) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


@FUZZ
@given(st.data())
def test_mutated_valid_events(data: st.DataObject) -> None:
    """One to three mutations of a valid event of each type: drop, replace, retype, add."""
    doc = copy.deepcopy(data.draw(st.sampled_from(SAMPLES)))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(doc)))
        action = data.draw(st.sampled_from(["drop", "replace", "extra", "version", "type"]))
        if action == "drop" and path:
            doc = _set(doc, path, None, delete=True)
        elif action == "replace":
            doc = _set(doc, path, data.draw(json_values))
        elif action == "extra" and isinstance(doc, dict):
            doc[data.draw(st.text(min_size=1, max_size=8))] = data.draw(json_values)
        elif action == "version" and isinstance(doc, dict):
            doc["schema_version"] = data.draw(st.integers(-5, 10) | st.text(max_size=3))
        elif action == "type" and isinstance(doc, dict):
            doc["type"] = data.draw(st.sampled_from([t.value for t in EventType]) | st.text(max_size=20))
    check(json.dumps(doc).encode())


@FUZZ
@given(st.sampled_from(list(EventType)), st.text(max_size=300), st.text(max_size=20))
def test_odd_unicode_in_every_text_field(event_type: EventType, text: str, token: str) -> None:
    """Any unicode (NUL, RTL marks, emoji, combining marks) in any string field: a valid event
    that round-trips and stores, or a one-line error."""
    doc = json.loads(sample(event_type).model_dump_json(exclude_none=True))
    for path in _paths(doc):
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        if path and isinstance(parent[path[-1]], str) and path[-1] not in ("type", "occurred_at"):
            mutated = copy.deepcopy(doc)
            _set(mutated, path, text if path[-1] != "id" else token)
            check(json.dumps(mutated, ensure_ascii=False).encode())


def test_known_bad_inputs_each_get_their_reason() -> None:
    """Invariant: each named kind of bad input (not JSON, wrong schema version, missing or extra
    field, bad task id, over the size limit) is refused with a reason saying which."""
    good = json.loads(sample(EventType.KNOWLEDGE_NOTE).model_dump_json(exclude_none=True))
    cases = {
        b"": "not valid JSON",
        b"\xff\xfe": "not valid JSON",
        b"[]": "invalid event",
        json.dumps({**good, "schema_version": 2}).encode(): "unsupported schema_version 2",
        json.dumps({**good, "schema_version": 0}).encode(): "unsupported schema_version 0",
        json.dumps({k: v for k, v in good.items() if k != "task_id"}).encode(): "task_id",
        json.dumps({**good, "type": "task.exploded"}).encode(): "invalid event",
        json.dumps({**good, "task_id": "a.b"}).encode(): "task_id",
        json.dumps({**good, "payload": {**good["payload"], "text": "x" * 4001}}).encode(): "payload",
        json.dumps({**good, "surprise": 1}).encode(): "surprise",
        b" " * (MAX_EVENT_BYTES + 1): "over the",
    }
    for raw, expected in cases.items():
        try:
            decode(raw)
        except ContractError as exc:
            assert expected in exc.reason and "\n" not in exc.reason, (raw[:60], exc.reason)
        else:
            raise AssertionError(f"decoded {raw[:60]!r}")


def test_oversized_event_is_refused_on_the_way_out_too() -> None:
    """Invariant: an event over the size limit is refused by encode, not sent."""
    event = sample(EventType.KNOWLEDGE_NOTE)
    big = event.model_copy(
        update={"payload": event.payload.model_copy(update={"text": "x" * MAX_EVENT_BYTES})}
    )
    try:
        encode(big)
    except ContractError as exc:
        assert "limit" in exc.reason
    else:
        raise AssertionError("an oversized event was encoded")
