"""Imports point one way: contracts <- bus <- agents, and inside agents, libraries under the agents.

Every module's imports are read with ``ast`` (at module level, inside functions and under
``TYPE_CHECKING`` alike: a deferred import is still a dependency) and checked against the layers:

- ``contracts`` imports nothing of ours but itself;
- ``bus`` imports only contracts;
- a library (``LIBRARIES``) imports only contracts and the libraries it declares, each declared
  before it, so the libraries form one direction too;
- the agent base (``BASE``: worker, settings, ...) imports contracts, bus and the base;
- an agent package (a folder of agents/ with an ``agent.py``) imports contracts, bus, the base,
  the libraries and itself, never another agent's package: what two agents share is a library;
- the CLI (``agents.cli``) may import anything.

A module of ours that is in no layer fails the test: a new module says where it sits by joining one.
Pure file reading: no imports of the project, no server.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("contracts", "bus", "agents")

# library -> the libraries below it that it may import (each declared earlier in this table).
LIBRARIES: dict[str, tuple[str, ...]] = {
    "agents.paths": (),
    "agents.credential_policy": (),
    "agents.report": (),
    "agents.review": ("agents.paths",),
    "agents.inspection": ("agents.paths",),
}
# What every agent runs on: the worker base, settings, logging, health, discovery, the task store.
BASE = (
    "agents.worker",
    "agents.settings",
    "agents.logs",
    "agents.health",
    "agents.discovery",
    "agents.idkey",
    "agents.lifecycle",
    "agents.runner",
)
CLI = "agents.cli"


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    path: str
    line: int


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    """Every module of our packages, by dotted name."""
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "node_modules" not in path.parts
    }


def _ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


def imports() -> Iterator[Import]:
    """Every import of one of our modules by one of our modules (absolute imports only: we use no others)."""
    known = modules()
    for importer, path in known.items():
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=rel)):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from agents.devops import backing` imports the module agents.devops.backing.
                names = [
                    f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in known else node.module
                    for alias in node.names
                ]
            else:
                assert not isinstance(node, ast.ImportFrom), f"{rel}:{node.lineno}: relative import"
                continue
            for name in names:
                if _ours(name):
                    yield Import(importer, name, rel, node.lineno)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@functools.cache
def agent_packages() -> frozenset[str]:
    """``agents.<name>`` for every folder of agents/ that holds an agent (an ``agent.py``)."""
    return frozenset(f"agents.{path.parent.name}" for path in (ROOT / "agents").glob("*/agent.py"))


def layer(name: str) -> str | None:
    """The layer of a module: contracts, bus, a library's name, base, cli, an agent package, or None."""
    if _within(name, "contracts") or _within(name, "bus"):
        return name.split(".")[0]
    if name == "agents":
        return "base"  # the empty package itself
    for group in (*LIBRARIES, CLI, *agent_packages()):
        if _within(name, group):
            return group
    return "base" if any(_within(name, module) for module in BASE) else None


def below(importer: str) -> set[str]:
    """The layers a module of layer ``importer`` may import besides its own."""
    if importer == "contracts":
        return set()
    if importer == "bus":
        return {"contracts"}
    if importer in LIBRARIES:
        return {"contracts", *LIBRARIES[importer]}
    if importer == "base":
        return {"contracts", "bus"}
    return {"contracts", "bus", "base", *LIBRARIES}  # an agent package


def allowed(importer: str, imported: str) -> bool:
    """Whether a module of layer ``importer`` may import one of layer ``imported``."""
    return importer in (CLI, imported) or imported in below(importer)


def test_every_module_is_in_a_layer() -> None:
    missing = sorted(name for name in modules() if layer(name) is None)
    assert not missing, "put these in a layer of tests/test_layers.py: " + ", ".join(missing)


def test_libraries_are_declared_in_one_direction() -> None:
    """A library may only name libraries declared before it: no cycles, one order to read them in."""
    seen: list[str] = []
    for library, lower in LIBRARIES.items():
        assert set(lower) <= set(seen), f"{library} names a library not declared before it: {lower}"
        seen.append(library)


@pytest.mark.parametrize(
    ("importer", "imported", "ok"),
    [
        ("agents.security.rules", "agents.qa.findings", False),  # sideways, between agents
        ("agents.architect.agent", "agents.devops.inspect", False),
        ("agents.security.rules", "agents.review.findings", True),  # an agent on a library
        ("agents.review.workspace", "agents.paths", True),  # a library on one declared below it
        ("agents.paths", "agents.review.findings", False),  # ... and not the other way
        ("agents.review.checkov", "bus.errors", False),  # libraries stay off the bus
        ("agents.review.checkov", "agents.worker", False),
        ("agents.worker", "agents.qa.agent", False),  # the base knows no agent
        ("bus.consumer", "agents.worker", False),
        ("bus.consumer", "contracts.subjects", True),
        ("contracts.payloads", "bus.errors", False),
        ("agents.qa.agent", "agents.cli.main", False),
        ("agents.cli.main", "agents.qa.agent", True),  # the CLI may import anything
    ],
)
def test_the_rules_say_which_way_imports_may_point(importer: str, imported: str, ok: bool) -> None:
    assert allowed(layer(importer), layer(imported)) is ok  # type: ignore[arg-type]


def test_imports_point_down_the_layers() -> None:
    wrong = set()
    for found in imports():
        source, target = layer(found.importer), layer(found.imported)
        if source is None or target is None:
            continue  # reported by test_every_module_is_in_a_layer
        if not allowed(source, target):
            wrong.add(f"{found.path}:{found.line}: {source} imports {found.imported} ({target})")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))
