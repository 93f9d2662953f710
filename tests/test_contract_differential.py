"""Python accepts exactly what the published JSON Schema accepts.

Invariant: for every document drawn from contracts/schema/event.schema.json, and for every
near miss of one (a type swapped, a length one past a bound, a wrong schema_version, a bad
timestamp, a key dropped or added), the reference validator (``jsonschema``, draft 2020-12,
formats checked, patterns in ECMA-262 as JSON Schema specifies) and ``contracts.decode`` give
the same verdict; the ``slow`` run adds Ajv as a third validator on thousands of documents.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import ContractError, decode
from tests.contract_checks import ajv_agrees, corpus, python_verdict, same_verdict, schema_verdict
from tests.schema_documents import (
    BAD_TIMESTAMPS,
    GOOD_TIMESTAMPS,
    documents,
    load,
    near_misses,
    schema_files,
    unknown_keywords,
)

FAST_EXAMPLES = 300
SLOW_EXAMPLES = 3000


def run(strategy: st.SearchStrategy[Any], examples: int) -> Counter[bool]:
    """Draw ``examples`` documents, check each, and count the verdicts."""
    verdicts: Counter[bool] = Counter()

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(strategy)
    def check(doc: Any) -> None:
        verdicts[same_verdict(doc)] += 1

    check()
    return verdicts


NOTE = {
    "id": "E1",
    "type": "knowledge.note",
    "task_id": "T1",
    "source": {"agent": "a", "instance": "i"},
    "occurred_at": "2026-11-26T12:00:00Z",
    "payload": {"kind": "edit", "text": "x", "agent": "a"},
}


def test_the_reference_validator_checks_formats_and_ecma_patterns() -> None:
    """Invariant: the comparison is meaningful: the reference validator refuses a date that does
    not exist (formats are checked) and a token with a trailing newline (ECMA ``$``)."""
    good = NOTE
    assert schema_verdict(good)[0] and python_verdict(good)[0]
    assert not schema_verdict({**good, "occurred_at": "2026-02-30T12:00:00Z"})[0]
    assert not schema_verdict({**good, "task_id": "T1\n"})[0]


@pytest.mark.parametrize("path", schema_files(), ids=lambda p: p.name)
def test_the_generator_knows_every_keyword_the_schemas_use(path: Path) -> None:
    """Invariant: a keyword a new field brings into the schemas (uniqueItems, exclusiveMinimum...)
    is taught to tests/schema_documents.py, or documents would silently ignore it."""
    assert unknown_keywords(load(path.name)) == set()


@pytest.mark.parametrize("stamp", BAD_TIMESTAMPS + GOOD_TIMESTAMPS)
def test_timestamps(stamp: str) -> None:
    """Invariant: each listed timestamp form gets the same verdict from both sides."""
    doc = {**NOTE, "occurred_at": stamp}
    assert same_verdict(doc) == (stamp in GOOD_TIMESTAMPS)


def test_schema_documents_get_the_same_verdict() -> None:
    """Invariant: documents drawn from the schema: same verdict (and most are valid)."""
    verdicts = run(documents(), FAST_EXAMPLES)
    assert verdicts[True] > verdicts[False], verdicts


def test_near_misses_get_the_same_verdict() -> None:
    """Invariant: near misses of schema documents: same verdict (and most are invalid)."""
    verdicts = run(near_misses(), FAST_EXAMPLES)
    assert verdicts[False] > verdicts[True] > 0, verdicts


@pytest.mark.slow
def test_thousands_of_documents_get_the_same_verdict_from_three_validators() -> None:
    """Invariant: on thousands of schema documents and as many near misses, jsonschema, Ajv
    (strict, ajv-formats) and decode give the same verdict."""
    docs = corpus(SLOW_EXAMPLES)
    valid = sum(same_verdict(doc) for doc in docs)
    ajv_agrees(docs)
    print(f"\ndifferential: {len(docs)} documents, {valid} valid, {len(docs) - valid} invalid")
    assert 0 < valid < len(docs)


def test_the_one_documented_difference_lone_surrogates() -> None:
    """Invariant: JSON text may escape a lone UTF-16 surrogate ("\\ud800"), which JSON Schema
    validators see as a one-character string; decode refuses it as not valid JSON, since it is
    no Unicode text (I-JSON, RFC 7493) and could not be stored or re-encoded. README says so."""
    raw = json.dumps(NOTE).replace('"text": "x"', '"text": "\\ud800"').encode()
    assert b"\\ud800" in raw
    assert schema_verdict(json.loads(raw))[0]
    with pytest.raises(ContractError, match="not valid JSON"):
        decode(raw)
