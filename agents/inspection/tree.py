"""Read-only access to a project directory that never leaves it.

Inspection reads untrusted checkouts: a symlink that points outside the root is treated as absent,
large and binary files are skipped, and every file looked at is recorded for error messages.

Reading is bounded, so a checkout of any size costs bounded time and memory: at most
MAX_SOURCE_FILES source files per scan, each at most MAX_SOURCE_BYTES, at most MAX_SOURCE_TOTAL bytes
in all, and the directory walk stops after MAX_WALK_ENTRIES names. What was left out is counted and
stated (:meth:`ProjectTree.skipped`) so the facts say what they were not based on.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agents.paths import PathEscape, resolve_inside

# Budgets, from the real projects this was tried on (the largest: 106 sources, 400 KB in all, 33 KB
# for the largest file) with a wide margin: far above any hand-written service, far below what
# blocks a worker (5,000 files of 1 MB took 4.9 GB and minutes when everything was read).
MAX_READ_BYTES = 1024 * 1024  # a manifest (package.json, pyproject.toml) larger than this is not used
MAX_SOURCE_BYTES = 256 * 1024  # a larger source file is generated, minified or data: not scanned
MAX_SOURCE_FILES = 2_000  # source files scanned per language
MAX_SOURCE_TOTAL = 16 * 1024 * 1024  # bytes of source text held at once by one scan
MAX_WALK_ENTRIES = 100_000  # file names looked at by one walk (counting what is over the budget)
# Directories that hold dependencies, build output or VCS data, never the app's own code.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".venv",
        "venv",
        "env",
        "node_modules",
        "__pycache__",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        "dist",
        "build",
        "vendor",
        "site-packages",
        ".next",
        "coverage",
        "bower_components",
        "jspm_packages",
        "third_party",
    }
)
TEST_DIRS = frozenset({"tests", "test", "__tests__", "testdata", "spec"})


class ProjectTree:
    """Files under ``root``; paths in and out are POSIX strings relative to the root."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.looked_at: list[str] = []
        self._over_budget = 0  # source files past MAX_SOURCE_FILES (the largest count of one walk)
        self._walk_cut = False  # a walk stopped at MAX_WALK_ENTRIES
        self._too_large: set[str] = set()  # source files over MAX_SOURCE_BYTES
        self._over_total: set[str] = set()  # source files past MAX_SOURCE_TOTAL

    def _inside(self, rel: str) -> Path | None:
        try:
            return resolve_inside(self.root, rel)
        except (PathEscape, OSError):
            return None

    def exists(self, rel: str) -> bool:
        """Whether ``rel`` is a regular file inside the root (a symlink out of it counts as absent)."""
        self._note(rel)
        path = self._inside(rel)
        return path is not None and path.is_file()

    def read(self, rel: str) -> str | None:
        """The text of ``rel``, or None when absent, outside the root, too large or not UTF-8."""
        self._note(rel)
        return self._read(rel)

    def _read(self, rel: str, limit: int = MAX_READ_BYTES) -> str | None:
        path = self._inside(rel)
        if path is None or not path.is_file():
            return None
        try:
            if path.stat().st_size > limit:
                return None
            with path.open("rb") as handle:
                data = handle.read(limit + 1)  # bounded even if the file grew since stat()
            return None if len(data) > limit else data.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def toml(self, rel: str) -> dict[str, Any]:
        """Parsed TOML of ``rel``; an absent or malformed file reads as empty."""
        text = self.read(rel)
        if text is None:
            return {}
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return {}

    def files(self, *suffixes: str, include_tests: bool = False) -> Iterator[str]:
        """Source files with one of ``suffixes``, sorted, skipping dependency and build folders;
        at most MAX_SOURCE_FILES (the rest are counted, see :meth:`skipped`)."""
        found: list[str] = []
        over = seen = 0
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames[:] = sorted(
                d
                for d in dirnames
                if d not in SKIP_DIRS and not d.startswith(".") and (include_tests or d not in TEST_DIRS)
            )
            rel_dir = Path(dirpath).relative_to(self.root)
            for name in sorted(filenames):
                if name.endswith(suffixes) and (include_tests or not _is_test_file(name)):
                    if len(found) < MAX_SOURCE_FILES:
                        found.append((rel_dir / name).as_posix())
                    else:
                        over += 1
            seen += len(filenames) + len(dirnames)
            if seen >= MAX_WALK_ENTRIES:
                self._walk_cut = True
                break
        self._over_budget = max(self._over_budget, over)
        yield from found

    def listing(self, rel: str, limit: int = 10) -> list[str]:
        """Up to ``limit`` files below the folder ``rel`` (hidden ones such as .gitkeep left out),
        relative to the root; empty when ``rel`` is not a folder inside the project."""
        folder = self._inside(rel)
        if folder is None or not folder.is_dir():
            return []
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if not name.startswith("."):
                    found.append((Path(dirpath) / name).relative_to(self.root).as_posix())
                    if len(found) >= limit:
                        return found
        return found

    def sources(self, *suffixes: str) -> Iterator[tuple[str, str]]:
        """(path, text) of every readable non-test source file with one of ``suffixes``, within
        the per-file and total budgets (what is left out is counted, see :meth:`skipped`)."""
        total = 0
        for rel in self.files(*suffixes):
            path = self._inside(rel)
            try:
                size = path.stat().st_size if path is not None else 0
            except OSError:
                continue
            if size > MAX_SOURCE_BYTES:
                self._too_large.add(rel)
                continue
            if total + size > MAX_SOURCE_TOTAL:
                self._over_total.add(rel)
                continue
            text = self._read(rel, MAX_SOURCE_BYTES)
            if text is not None:
                total += size
                yield rel, text

    def skipped(self) -> list[str]:
        """What the budgets left out, as assumption lines (empty when everything was read)."""
        lines = []
        if self._over_budget:
            more = "at least " if self._walk_cut else ""
            lines.append(
                f"skipped {more}{self._over_budget:,} source files over the {MAX_SOURCE_FILES:,}-file budget"
            )
        if self._walk_cut:
            lines.append(f"stopped the walk after {MAX_WALK_ENTRIES:,} names: the rest was not read")
        if self._too_large:
            first = sorted(self._too_large)[0]
            lines.append(
                f"skipped {len(self._too_large):,} source files over {MAX_SOURCE_BYTES // 1024:,} KiB each "
                f"(generated, minified or data; e.g. {first})"
            )
        if self._over_total:
            lines.append(
                f"skipped {len(self._over_total):,} source files over the "
                f"{MAX_SOURCE_TOTAL // (1024 * 1024):,} MiB read budget"
            )
        if lines:
            lines.append(
                "environment variables, ports and routes in skipped files are not detected: "
                "pass env_vars, port or health_path explicitly if the service needs them"
            )
        return lines

    def _note(self, rel: str) -> None:
        if rel not in self.looked_at:
            self.looked_at.append(rel)


def _is_test_file(name: str) -> bool:
    return (
        name.startswith("test_")
        or name.endswith(("_test.py", "_test.go", ".test.js", ".spec.js", ".test.ts", ".spec.ts"))
        or name == "conftest.py"
    )
