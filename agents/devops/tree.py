"""Read-only access to a project directory that never leaves it.

Inspection reads untrusted checkouts: a symlink that points outside the root is treated as absent,
large and binary files are skipped, and every file looked at is recorded for error messages.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MAX_READ_BYTES = 1024 * 1024
MAX_SOURCE_FILES = 5_000
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
    }
)
TEST_DIRS = frozenset({"tests", "test", "__tests__", "testdata", "spec"})


class ProjectTree:
    """Files under ``root``; paths in and out are POSIX strings relative to the root."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.looked_at: list[str] = []

    def _inside(self, rel: str) -> Path | None:
        path = self.root / rel
        try:
            resolved = path.resolve()
        except OSError:
            return None
        if not resolved.is_relative_to(self.root):
            return None
        return resolved

    def exists(self, rel: str) -> bool:
        """Whether ``rel`` is a regular file inside the root (a symlink out of it counts as absent)."""
        self._note(rel)
        path = self._inside(rel)
        return path is not None and path.is_file()

    def read(self, rel: str) -> str | None:
        """The text of ``rel``, or None when absent, outside the root, too large or not UTF-8."""
        self._note(rel)
        return self._read(rel)

    def _read(self, rel: str) -> str | None:
        path = self._inside(rel)
        if path is None or not path.is_file():
            return None
        try:
            if path.stat().st_size > MAX_READ_BYTES:
                return None
            return path.read_text(encoding="utf-8")
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
        """Source files with one of ``suffixes``, sorted, skipping dependency and build folders."""
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames[:] = sorted(
                d
                for d in dirnames
                if d not in SKIP_DIRS and not d.startswith(".") and (include_tests or d not in TEST_DIRS)
            )
            rel_dir = Path(dirpath).relative_to(self.root)
            for name in sorted(filenames):
                if name.endswith(suffixes) and (include_tests or not _is_test_file(name)):
                    found.append((rel_dir / name).as_posix())
                    if len(found) >= MAX_SOURCE_FILES:
                        yield from found
                        return
        yield from found

    def sources(self, *suffixes: str) -> Iterator[tuple[str, str]]:
        """(path, text) of every readable non-test source file with one of ``suffixes``."""
        for rel in self.files(*suffixes):
            text = self._read(rel)
            if text is not None:
                yield rel, text

    def _note(self, rel: str) -> None:
        if rel not in self.looked_at:
            self.looked_at.append(rel)


def _is_test_file(name: str) -> bool:
    return (
        name.startswith("test_")
        or name.endswith(("_test.py", "_test.go", ".test.js", ".spec.js", ".test.ts", ".spec.ts"))
        or name == "conftest.py"
    )
