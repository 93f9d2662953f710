"""Line numbers for validator messages that only give a data path.

Schema validators report *where in the data* an error is (``$.services.app``, a jsonschema
``path`` deque, botocore's ``.containerDefinitions[0].cpu``); people need a line. YAML (and JSON,
read as YAML) is composed into nodes, which remember their position, and the path is walked
down those nodes. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import yaml

# `.key`, `[0]`, `["key"]` or `['key']` segments of a JSON path (a leading `$` is skipped).
_SEGMENT = re.compile(r"""\.([^.\[\]]+)|\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]|\['((?:[^'\\]|\\.)*)'\]""")
_UNEXPECTED = re.compile(r"'([^']+)' was unexpected")


def parse_path(path: str) -> list[str | int]:
    """Split ``$.jobs.test.steps[0]`` / ``.containerDefinitions[0].cpu`` into ``["jobs", ..., 0]``."""
    parts: list[str | int] = []
    for match in _SEGMENT.finditer(path.removeprefix("$")):
        key, index, dquoted, squoted = match.groups()
        if index is not None:
            parts.append(int(index))
        else:
            parts.append(key if key is not None else (dquoted if dquoted is not None else squoted))
    return parts


def documents(content: str) -> Iterator[tuple[Any, yaml.Node]]:
    """Yield ``(data, node)`` for each YAML document, parsed once (safe loader). Raises yaml.YAMLError."""
    loader = yaml.SafeLoader(content)
    try:
        while loader.check_node():
            node = loader.get_node()
            yield loader.construct_document(node), node
    finally:
        loader.dispose()


def first_mapping(content: str) -> tuple[dict[Any, Any], yaml.Node] | None:
    """The first YAML document when it is a mapping, with its node; None for anything else
    (not YAML, empty, a list): rules that inspect a mapping have nothing to say about those."""
    try:
        parsed = next(documents(content), None)
    except yaml.YAMLError:
        return None
    if parsed is None or not isinstance(parsed[0], dict):
        return None
    return parsed


def node_line(
    node: yaml.Node | None, path: Iterable[str | int], *, unexpected: str | None = None
) -> int | None:
    """1-based line of the deepest node reached along ``path`` (None without a node).

    ``unexpected`` is a validator message: an ``'x' was unexpected`` key is looked up in the
    object the path ends at, so an unknown field points at its own line rather than its parent's.
    """
    if node is None:
        return None
    current, line = node, node.start_mark.line + 1
    steps = list(path)
    if unexpected and (match := _UNEXPECTED.search(unexpected)):
        steps.append(match.group(1))
    for step in steps:
        found = _child(current, step)
        if found is None:
            break
        # A mapping entry is shown on its key's line, a list item on its own.
        anchor, current = found
        line = anchor.start_mark.line + 1
    return line


def _child(node: yaml.Node, step: str | int) -> tuple[yaml.Node, yaml.Node] | None:
    if isinstance(node, yaml.SequenceNode) and isinstance(step, int):
        return (node.value[step], node.value[step]) if 0 <= step < len(node.value) else None
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == str(step):
                return key, value
    return None


def line_in(
    content: str, path: Iterable[str | int], *, document: int = 0, unexpected: str | None = None
) -> int | None:
    """Line of ``path`` inside document number ``document`` of a YAML/JSON text; None if unparsable."""
    try:
        for index, (_, node) in enumerate(documents(content)):
            if index == document:
                return node_line(node, path, unexpected=unexpected)
    except yaml.YAMLError:
        return None
    return None


def error_line(error: Exception) -> int | None:
    """1-based line of a YAML/JSON/HCL parse error, when the exception carries one."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    line = getattr(error, "lineno", None) or getattr(error, "line", None)
    return int(line) if isinstance(line, int) and line > 0 else None
