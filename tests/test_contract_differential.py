"""Python accepts exactly what the published JSON Schema accepts.

Invariant: for every document drawn from contracts/schema/event.schema.json, and for every
near miss of one (a type swapped, a length one past a bound, a wrong schema_version, a bad
timestamp, a key dropped or added), the reference validator (``jsonschema``, draft 2020-12,
formats checked, patterns in ECMA-262 as JSON Schema specifies) and ``contracts.decode`` give
the same verdict. The fast run draws a few hundred documents; the ``slow`` run thousands.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import regress
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema.validators import extend

from contracts import ContractError, decode
from tests.schema_documents import (
    BAD_TIMESTAMPS,
    GOOD_TIMESTAMPS,
    documents,
    load,
    near_misses,
    python_verdict,
    schema_files,
    unknown_keywords,
)

FAST_EXAMPLES = 300
SLOW_EXAMPLES = 4000


@cache
def _regex(pattern: str) -> regress.Regex:
    return regress.Regex(pattern, "u")


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: dict) -> Iterator[Any]:
    """``pattern`` with ECMA-262 semantics: Python's ``re`` lets ``$`` match before a final
    newline, so ``"id\\n"`` would pass ``^[A-Za-z0-9_-]{1,64}$`` there and nowhere else."""
    if validator.is_type(instance, "string") and _regex(pattern).find(instance) is None:
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaValidator = extend(jsonschema.Draft202012Validator, {"pattern": _ecma_pattern})


@cache
def validator() -> Any:
    schema = load("event.schema.json")
    EcmaValidator.check_schema(schema)
    return EcmaValidator(schema, format_checker=jsonschema.FormatChecker())


def schema_verdict(doc: Any) -> tuple[bool, str]:
    error = jsonschema.exceptions.best_match(validator().iter_errors(doc))
    while error is not None and error.context:  # oneOf: say why the branch of its type failed
        error = jsonschema.exceptions.best_match(error.context)
    return (error is None, "" if error is None else f"{error.json_path}: {error.message}"[:300])


def same_verdict(doc: Any) -> bool:
    """Assert both sides agree on ``doc``; returns the verdict."""
    by_schema, why_schema = schema_verdict(doc)
    by_python, why_python = python_verdict(doc)
    assert by_schema == by_python, (
        f"schema {'accepts' if by_schema else 'rejects'} ({why_schema}) but decode "
        f"{'accepts' if by_python else 'rejects'} ({why_python}): {json.dumps(doc)[:600]}"
    )
    return by_schema


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
def test_thousands_of_documents_get_the_same_verdict() -> None:
    """Invariant: as above, on thousands of documents and near misses."""
    valid = run(documents(), SLOW_EXAMPLES)
    broken = run(near_misses(), SLOW_EXAMPLES)
    print(f"\ndifferential: documents {dict(valid)}, near misses {dict(broken)}")
    assert valid[True] > valid[False] and broken[False] > broken[True] > 0


def test_the_one_documented_difference_lone_surrogates() -> None:
    """Invariant: JSON text may escape a lone UTF-16 surrogate ("\\ud800"), which JSON Schema
    validators see as a one-character string; decode refuses it as not valid JSON, since it is
    no Unicode text (I-JSON, RFC 7493) and could not be stored or re-encoded. README says so."""
    raw = json.dumps(NOTE).replace('"text": "x"', '"text": "\\ud800"').encode()
    assert b"\\ud800" in raw
    assert schema_verdict(json.loads(raw))[0]
    with pytest.raises(ContractError, match="not valid JSON"):
        decode(raw)
