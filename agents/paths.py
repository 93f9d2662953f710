"""Keeping paths inside their root: project folders, output folders, artifact names."""

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
    """Validate a relative artifact name: no absolute path, no ``..``, no empty parts."""
    if not name or "\\" in name or "\x00" in name:
        raise PathEscape(f"{what} {name!r} is not a clean relative path")
    pure = PurePosixPath(name)
    # "." (or "a/.") names a folder, not a file: PurePosixPath drops the dot, so check the text.
    dotted = any(part == "." for part in name.split("/"))
    if pure.is_absolute() or dotted or any(p in ("..", "") for p in pure.parts) or name.endswith("/"):
        raise PathEscape(f"{what} {name!r} escapes its root or is not a file path")
    return pure
