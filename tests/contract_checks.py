"""The verdicts of three validators on one JSON document: ``contracts.decode``, the reference
Python validator (``jsonschema``, draft 2020-12, formats checked, patterns read as ECMA-262 as
JSON Schema specifies) and Ajv (strict, ajv-formats, run by node from tests/node). Shared by the
differential tests."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import regress
from hypothesis import HealthCheck, given, settings
from jsonschema.validators import extend

from contracts import ContractError, decode
from contracts.schema_export import SCHEMA_DIR
from tests.schema_documents import documents, load, near_misses

NODE_DIR = Path(__file__).resolve().parent / "node"


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
    """Whether the reference validator accepts ``doc``, and why not."""
    error = jsonschema.exceptions.best_match(validator().iter_errors(doc))
    while error is not None and error.context:  # oneOf: say why the branch of its type failed
        error = jsonschema.exceptions.best_match(error.context)
    return (error is None, "" if error is None else f"{error.json_path}: {error.message}"[:300])


def python_verdict(doc: Any) -> tuple[bool, str]:
    """Whether ``contracts.decode`` accepts ``doc`` sent as JSON, and its reason if not."""
    try:
        decode(json.dumps(doc, ensure_ascii=False).encode())
    except ContractError as exc:
        return False, exc.reason
    return True, ""


def same_verdict(doc: Any) -> bool:
    """Assert the reference validator and decode agree on ``doc``; returns the verdict."""
    by_schema, why_schema = schema_verdict(doc)
    by_python, why_python = python_verdict(doc)
    assert by_schema == by_python, (
        f"schema {'accepts' if by_schema else 'rejects'} ({why_schema}) but decode "
        f"{'accepts' if by_python else 'rejects'} ({why_python}): {json.dumps(doc)[:600]}"
    )
    return by_schema


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


def ajv_verdicts(docs: list[Any]) -> list[bool]:
    """Ajv's verdict on each document against event.schema.json (one node run for all)."""
    lines = "\n".join(json.dumps(doc) for doc in docs) + "\n"
    result = node("check_schemas.mjs", str(SCHEMA_DIR), "--corpus", stdin=lines)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    verdicts = [line == "true" for line in result.stdout.splitlines() if line in ("true", "false")]
    assert len(verdicts) == len(docs)
    return verdicts


def ajv_agrees(docs: list[Any]) -> None:
    """Assert Ajv's verdict equals decode's for each document, and that both verdicts occur."""
    verdicts = ajv_verdicts(docs)
    for doc, by_ajv in zip(docs, verdicts, strict=True):
        by_python, why = python_verdict(doc)
        assert by_ajv == by_python, f"Ajv {by_ajv}, decode {by_python} ({why}): {json.dumps(doc)[:600]}"
    assert 0 < sum(verdicts) < len(verdicts)
