"""The build context: the project's files plus the generated artifacts, as ``docker build`` sees it.

Artifacts win over project files of the same name (they are what gets committed next to the
source), and ``.dockerignore`` (from the merged context) filters both. ``stage`` copies exactly
what one COPY names into a staging folder and returns a digest of it, so a COPY that names a
file the context lacks fails here just as ``docker build`` fails.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agents.paths import PathEscape, safe_relative
from agents.qa.smoke.ignore import DockerIgnore, _translate


class CopyError(ValueError):
    """A COPY source is not in the build context (missing, or excluded by .dockerignore)."""


@dataclass(frozen=True)
class Staged:
    """What one COPY copies: ``root`` holds the entries; ``single_file`` names the one file
    when a lone file is copied to a path that may be a file name rather than a directory."""

    root: Path
    digest: str
    count: int
    single_file: str | None = None


class BuildContext:
    """Files of ``project`` (may be None) merged with ``artifacts`` ({relative path: text})."""

    def __init__(self, project: Path | None, artifacts: Mapping[str, str]) -> None:
        self.project = project
        self.artifacts: dict[str, str] = {}
        for name, content in artifacts.items():
            try:
                self.artifacts[safe_relative(name).as_posix()] = content
            except PathEscape:
                continue  # QA's workspace already reports unsafe artifact names
        ignore_text = self.artifacts.get(".dockerignore")
        if ignore_text is None and project is not None and (project / ".dockerignore").is_file():
            ignore_text = (project / ".dockerignore").read_text(encoding="utf-8", errors="replace")
        self.ignore = DockerIgnore(ignore_text or "")
        self._entries: dict[str, Path | str | None] | None = None

    @property
    def entries(self) -> dict[str, Path | str | None]:
        """Every path in the context after .dockerignore: a host Path (file or symlink),
        artifact text, or None for a directory. Built on first use."""
        if self._entries is None:
            self._entries = self._walk()
        return self._entries

    def _walk(self) -> dict[str, Path | str | None]:
        found: dict[str, Path | str | None] = {}
        if self.project is not None and self.project.is_dir():
            for dirpath, dirnames, filenames in os.walk(self.project):
                rel_dir = os.path.relpath(dirpath, self.project)
                rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
                kept = []
                for name in sorted(dirnames):
                    rel = f"{rel_dir}/{name}" if rel_dir else name
                    full = Path(dirpath, name)
                    if full.is_symlink():
                        filenames.append(name)  # copied as a link, never followed
                    elif not self.ignore.excluded(rel) or self.ignore.has_exceptions:
                        kept.append(name)
                        if not self.ignore.excluded(rel):
                            found[rel] = None
                dirnames[:] = kept
                for name in filenames:
                    rel = f"{rel_dir}/{name}" if rel_dir else name
                    if not self.ignore.excluded(rel):
                        found[rel] = Path(dirpath, name)
        for rel, content in self.artifacts.items():
            if self.ignore.excluded(rel):
                continue
            found[rel] = content
            parts = rel.split("/")
            for i in range(1, len(parts)):
                found.setdefault("/".join(parts[:i]), None)
        return dict(sorted(found.items()))

    def matches(self, source: str) -> list[str]:
        """Context paths one COPY source names ("." is the root, "" in the result)."""
        clean = os.path.normpath(source.replace("\\", "/")).lstrip("/")
        if clean in ("", "."):
            return [""]
        if clean.startswith(".."):
            raise CopyError(f"{source}: outside the build context")
        if any(c in clean for c in "*?["):
            regex = re.compile(_translate(clean))
            return [path for path in self.entries if regex.fullmatch(path)]
        return [clean] if clean in self.entries else []

    def stage(self, sources: list[str], dest: str, into: Path) -> Staged:
        """Copy what ``sources`` name into ``into`` (created); CopyError for a missing source."""
        into.mkdir(parents=True, exist_ok=True)
        picked: list[tuple[str, str]] = []  # (context path, path inside the staging folder)
        for source in sources:
            found = self.matches(source)
            if not found:
                raise CopyError(
                    f"COPY {source}: not found in the build context (missing, or excluded by .dockerignore)"
                )
            for path in found:
                if self.entries.get(path, None) is None:  # a directory (or the root): its contents
                    prefix = f"{path}/" if path else ""
                    picked += [(p, p[len(prefix) :]) for p in self.entries if p.startswith(prefix) and p]
                else:
                    picked.append((path, path.rsplit("/", 1)[-1]))
        single = None
        if len(sources) == 1 and len(picked) == 1 and not dest.endswith("/"):
            entry = self.entries[picked[0][0]]
            if entry is not None:
                single = picked[0][1]
        digest = hashlib.sha256()
        for path, target in sorted(picked, key=lambda p: p[1]):
            digest.update(self._materialize(path, into, target).encode())
        return Staged(root=into, digest=digest.hexdigest(), count=len(picked), single_file=single)

    def _materialize(self, path: str, into: Path, rel: str) -> str:
        """Write one entry at ``into/rel``; a line describing it (by ``rel``) for the digest."""
        entry = self.entries[path]
        target = into / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if entry is None:
            target.mkdir(exist_ok=True)
            return f"d {rel}\n"
        if isinstance(entry, str):
            target.write_text(entry, encoding="utf-8", newline="")
            target.chmod(0o644)
            return f"f {rel} 644 {hashlib.sha256(entry.encode()).hexdigest()}\n"
        mode = entry.lstat()
        if stat.S_ISLNK(mode.st_mode):
            link = os.readlink(entry)
            if target.is_symlink() or target.exists():
                target.unlink()
            os.symlink(link, target)
            return f"l {rel} {link}\n"
        shutil.copyfile(entry, target)
        target.chmod(stat.S_IMODE(mode.st_mode))
        return f"f {rel} {stat.S_IMODE(mode.st_mode):o} {_file_digest(target)}\n"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()
