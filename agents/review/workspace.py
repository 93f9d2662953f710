"""Artifacts on disk for the tools that need files: a private temp dir, paths kept inside it."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from agents.paths import PathEscape, safe_relative
from agents.review.findings import finding
from contracts.payloads import Finding


@dataclass
class Workspace:
    """Files written under ``root``: ``contents`` maps each accepted relative path to its text;
    ``refused`` holds a finding for each path that would escape the root or could not be written."""

    root: Path
    contents: dict[str, str] = field(default_factory=dict)
    refused: list[Finding] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        """Accepted relative paths, sorted."""
        return sorted(self.contents)


@contextmanager
def workspace(files: Mapping[str, str]) -> Iterator[Workspace]:
    """Write ``files`` into a fresh temp dir (removed on exit); refuse absolute and ``..`` paths."""
    with tempfile.TemporaryDirectory(prefix="orchestra-qa-") as tmp:
        space = Workspace(root=Path(tmp).resolve())
        for name in sorted(files):
            try:
                relative = safe_relative(name)
                target = space.root / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(files[name], encoding="utf-8", newline="")
            except PathEscape as exc:
                space.refused.append(finding(name, "unsafe-path", str(exc), tool="qa"))
                continue
            except (OSError, UnicodeError) as exc:
                space.refused.append(
                    finding(name, "unwritable-path", f"cannot write {name!r}: {exc}", tool="qa")
                )
                continue
            space.contents[relative.as_posix()] = files[name]
        yield space
