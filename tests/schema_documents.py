"""Hypothesis strategies for JSON documents read off the published JSON Schemas, not the models.

``documents()`` draws documents the schema describes; ``near_misses()`` draws a document and
then breaks it a little (a type swapped, a length one over a bound, a wrong version, a bad
timestamp, a key dropped or added). tests/contract_checks.py runs them through the validators.

Only the keywords the exported schemas use are understood: that is checked, so a new keyword
in the schemas fails loudly here instead of silently generating nothing interesting.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from contracts.schema_export import SCHEMA_DIR

Json = Any

KNOWN_KEYWORDS = frozenset(
    {
        "$schema", "$id", "$comment", "$defs", "$ref", "title", "description", "default",
        "type", "properties", "required", "additionalProperties", "propertyNames", "items",
        "minItems", "maxItems", "minLength", "maxLength", "pattern", "format", "minimum",
        "maximum", "enum", "const", "anyOf", "oneOf",
    }
)  # fmt: skip

# Lengths around the bounds the contracts use (1, 26, 64, 128, 256, 512, 1024, 4000).
BOUNDARY_LENGTHS = (0, 1, 2, 25, 26, 27, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 513)
LONG_LENGTHS = (1023, 1024, 1025, 3999, 4000, 4001)
# One char each, but 1, 2 and 4 UTF-8 bytes and 1 or 2 UTF-16 units: lengths count code points.
LENGTH_CHARS = ("a", "é", "😀")
BOUNDARY_COUNTS = (0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33)

GOOD_TIMESTAMPS = (
    "2026-11-26T12:00:00Z",
    "2026-11-26T12:00:00.123Z",
    "2026-11-26T12:00:00.123456+05:30",
    "2024-02-29T23:59:59-08:00",
    "1970-01-01T00:00:00Z",
)
BAD_TIMESTAMPS = (
    "2026-11-26T12:00Z",  # no seconds
    "2026-11-26T12:00:00",  # no timezone
    "2026-11-26 12:00:00Z",  # space, not T
    "2026-11-26t12:00:00z",  # lower case
    "2026-11-26T12:00:00+0100",  # offset without colon
    "2026-11-26T12:00:00.1234567Z",  # more than microseconds
    "2026-11-26T24:00:00Z",
    "2026-11-26T23:59:60Z",  # leap second
    "2026-02-30T12:00:00Z",
    "2023-02-29T12:00:00Z",
    "2026-13-01T12:00:00Z",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59-01:00",
    "2026-11-26T12:00:00+24:00",
    "\uff12\uff10\uff12\uff16-11-26T12:00:00Z",  # full-width digits
    "2026-11-26T12:00:00Z\n",
    "20261126T120000Z",
    "",
)
BAD_VERSIONS = (0, 2, -1, 1.0, 2.0, 1.5, True, False, "1", "", None, [1], {"v": 1})


def load(name: str) -> dict:
    """A committed schema file, parsed."""
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


def schema_files() -> list[Path]:
    return sorted(SCHEMA_DIR.glob("*.schema.json"))


def _walk(node: Json) -> list[dict]:
    out = []
    if isinstance(node, dict):
        out.append(node)
        for key, value in node.items():
            if key in ("properties", "$defs"):
                for sub in value.values():
                    out += _walk(sub)
            elif key not in ("default", "const", "enum"):
                out += _walk(value)
    elif isinstance(node, list):
        for value in node:
            out += _walk(value)
    return out


def unknown_keywords(schema: dict) -> set[str]:
    """Keywords used in ``schema`` that these strategies do not understand."""
    return {k for node in _walk(schema) for k in node} - KNOWN_KEYWORDS


def _resolve(root: dict, node: dict) -> dict:
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target: Any = root
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def _timestamps() -> st.SearchStrategy[str]:
    """RFC 3339 date-times in the forms clients really send (Z, offsets, fractions)."""
    stamp = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2999, 12, 31))

    def fmt(args: tuple) -> str:
        value, digits, offset = args
        text = value.strftime("%Y-%m-%dT%H:%M:%S")
        if digits:
            text += "." + f"{value.microsecond:06d}"[:digits]
        return text + offset

    return st.tuples(
        stamp, st.sampled_from([0, 3, 6]), st.sampled_from(["Z", "+00:00", "-05:00", "+13:45"])
    ).map(fmt)


def _string(node: dict) -> st.SearchStrategy[str]:
    if node.get("format") == "date-time":
        return _timestamps()
    if "pattern" in node:
        # fullmatch: the string is what the anchored pattern allows, with no trailing newline
        # (Python's `$` would allow one; ECMA-262, the dialect JSON Schema names, does not).
        return st.from_regex(node["pattern"], fullmatch=True)
    low, high = node.get("minLength", 0), node.get("maxLength", 40)
    return st.text(min_size=low, max_size=max(low, min(high, 40)))


@cache
def _strategy_cached(root_key: str, pointer: str) -> st.SearchStrategy[Json]:
    root = _ROOTS[root_key]
    node: Any = root
    for part in pointer.split("/")[1:]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return _build(root_key, root, node, pointer)


_ROOTS: dict[str, dict] = {}


def _sub(root_key: str, pointer: str) -> st.SearchStrategy[Json]:
    return st.deferred(lambda: _strategy_cached(root_key, pointer))


def _build(root_key: str, root: dict, node: dict, pointer: str) -> st.SearchStrategy[Json]:
    if "$ref" in node:
        return _sub(root_key, node["$ref"][1:])
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            return st.one_of([_sub(root_key, f"{pointer}/{key}/{i}") for i in range(len(node[key]))])
    # propertyNames carries string keywords without "type" (keys are always strings).
    kind = node.get("type", "string" if {"minLength", "maxLength", "pattern"} & set(node) else None)
    if kind == "string":
        return _string(node)
    if kind == "integer":
        return st.integers(node.get("minimum", -(2**31)), node.get("maximum", 2**31))
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        low = node.get("minItems", 0)
        high = max(low, min(node.get("maxItems", 3), 3))
        return st.lists(_sub(root_key, f"{pointer}/items"), min_size=low, max_size=high)
    if kind == "object":
        return _object(root_key, node, pointer)
    raise AssertionError(f"no strategy for {pointer}: {node}")


def _object(root_key: str, node: dict, pointer: str) -> st.SearchStrategy[Json]:
    props = node.get("properties", {})
    required = set(node.get("required", []))
    fields = {
        name: st.tuples(
            st.just(True) if name in required else st.booleans(),
            _sub(root_key, f"{pointer}/properties/{name.replace('~', '~0').replace('/', '~1')}"),
        )
        for name in props
    }
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        keys = _sub(root_key, f"{pointer}/propertyNames") if "propertyNames" in node else st.text(max_size=20)
        more = st.dictionaries(keys, _sub(root_key, f"{pointer}/additionalProperties"), max_size=3)
    else:
        more = st.just({})

    def build(args: tuple) -> dict:
        chosen, added = args
        doc = dict(added)
        doc.update({k: v for k, (keep, v) in chosen.items() if keep})
        return doc

    return st.tuples(st.fixed_dictionaries(fields), more).map(build)


def documents(name: str = "event.schema.json") -> st.SearchStrategy[Json]:
    """Documents drawn from the schema file ``name`` (most are valid; a date that does not exist
    can slip through a pattern, which the differential test treats like any other document)."""
    _ROOTS.setdefault(name, load(name))
    return _sub(name, "")


# ---- near misses -------------------------------------------------------------------------------


def paths(doc: Json, prefix: tuple = ()) -> list[tuple]:
    """Every location in ``doc`` (the root included), as key/index tuples."""
    out = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            out += paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            out += paths(value, (*prefix, i))
    return out


def _get(doc: Json, path: tuple) -> Json:
    for key in path:
        doc = doc[key]
    return doc


def _near_values(value: Json) -> st.SearchStrategy[Json]:
    """Values close to ``value``: same type at a boundary, or the same content in another type."""
    common = st.sampled_from([None, True, 0, 1, -1, 1.5, "", "1", [], {}])
    if isinstance(value, bool):
        return st.sampled_from([not value, int(value), str(value).lower(), None]) | common
    if isinstance(value, int):
        return (
            st.sampled_from(
                [
                    value + 1,
                    value - 1,
                    -value,
                    float(value),
                    value + 0.5,
                    str(value),
                    0,
                    65535,
                    65536,
                    3650,
                    3651,
                ]
            )
            | st.integers(-(2**64), 2**64)
            | common
        )
    if isinstance(value, str):
        lengths = st.sampled_from(BOUNDARY_LENGTHS + LONG_LENGTHS)
        return (
            st.tuples(st.sampled_from(LENGTH_CHARS), lengths).map(lambda a: a[0] * a[1])
            | st.sampled_from(
                [
                    value + "\n",
                    value + ".x",
                    value + " ",
                    value.upper(),
                    value + "٣",  # an Arabic-Indic digit: \d in Python and Rust, not in ECMA
                    value + "*",
                    value[:-1],
                    value * 2,
                ]
            )
            | st.sampled_from(BAD_TIMESTAMPS + GOOD_TIMESTAMPS)
            | common
        )
    if isinstance(value, list):
        return (
            st.sampled_from(BOUNDARY_COUNTS).map(lambda n: (value * n)[:n] if value else [None] * n)
            | st.just([*value, value[0]] if value else ["x"])
            | common
        )
    if isinstance(value, dict):
        return st.just({**value, "surprise": 1}) | common
    return common


@st.composite
def near_misses(draw: st.DrawFn, name: str = "event.schema.json") -> Json:
    """A schema document with one to three small changes (a type swap, a boundary length, a
    wrong version, a bad timestamp, a dropped or added key)."""
    doc = copy.deepcopy(draw(documents(name)))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["value", "value", "drop", "version", "timestamp", "extra"]))
        if kind == "version" and isinstance(doc, dict):
            doc["schema_version"] = draw(st.sampled_from(BAD_VERSIONS))
        elif kind == "timestamp" and isinstance(doc, dict):
            doc["occurred_at"] = draw(st.sampled_from(BAD_TIMESTAMPS + GOOD_TIMESTAMPS))
        elif kind == "extra":
            where = draw(st.sampled_from([p for p in paths(doc) if isinstance(_get(doc, p), dict)] or [()]))
            target = _get(doc, where)
            if isinstance(target, dict):
                target[draw(st.sampled_from(["surprise", "", "ID", "payload", "x-y"]))] = 1
        else:
            path = draw(st.sampled_from(paths(doc)))
            if not path:
                continue
            parent = _get(doc, path[:-1])
            if kind == "drop":
                del parent[path[-1]]
            else:
                parent[path[-1]] = draw(_near_values(parent[path[-1]]))
    return doc
