"""Keeping paths inside their root: project folders, output folders, artifact names.

The one definition of path safety: the architect and DevOps resolve project and output folders with
:func:`resolve_inside`, inspection reads a checkout through it, and every artifact name is checked
by :func:`safe_relative` before QA, the smoke boot or DevOps writes it anywhere.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath


class PathEscape(ValueError):
    """A path that would leave its root (``..``, absolute, or through a symlink)."""


def resolve_inside(root: Path, path: str | Path, *, what: str = "path") -> Path:
    """Resolve ``path`` (relative to ``root`` unless absolute) and refuse it if it leaves ``root``.

    Symlinks are resolved first, so a link pointing outside the root is refused too.
    """
    root_resolved = Path(root).resolve()
    candidate = Path(path)
    full = (candidate if candidate.is_absolute() else root_resolved / candidate).resolve()
    if full != root_resolved and root_resolved not in full.parents:
        raise PathEscape(f"{what} {str(path)!r} is outside {root_resolved}")
    return full


def safe_relative(name: str, *, what: str = "artifact name") -> PurePosixPath:
    """Validate a relative file name, written one way: POSIX, not absolute, no ``..``, ``.`` or empty
    part (so no leading, trailing or doubled ``/``), no backslash or NUL."""
    if not name or "\\" in name or "\x00" in name:
        raise PathEscape(f"{what} {name!r} is not a clean relative path")
    # The text's own parts: PurePosixPath would drop "." and "" parts ("a/./b", "a//b") silently.
    if any(part in ("..", ".", "") for part in name.split("/")):
        raise PathEscape(f"{what} {name!r} escapes its root or is not a file path")
    return PurePosixPath(name)
