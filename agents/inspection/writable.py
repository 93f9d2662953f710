"""Where the app may write: a volume for each folder it writes, on a read-only root filesystem.

Every generated runtime keeps the root filesystem read-only (Kubernetes, ECS, Compose prod) and
runs as a numeric non-root user, so a folder the app writes must be a volume: an emptyDir in
Kubernetes and Helm, a named volume in Compose, a bind-mount volume in ECS; the image creates
the folder owned by the app user and declares it a ``VOLUME`` (Docker and ECS then start each
new volume as a copy of it, owner included). A folder that holds the app's code cannot be a
volume (it would hide the code), so:

* a Go binary runs from a working directory chosen so that its relative paths land in a
  ``/data`` volume (``../gorm.db`` from ``/data/run`` is ``/data/gorm.db``);
* a SQLite file given as the default of a variable is moved there by setting the variable;
* otherwise the working directory is made the app user's (Compose development works) and the
  assumption says that a read-only root filesystem rejects the write, and how to fix it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from agents.inspection.detect.writes import Write

DATA = "/data"
# Folders a volume must never cover: the system's, and what the image needs to start.
SYSTEM = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/opt", "/proc", "/sys", "/dev", "/run", "/var")
_PLAIN = re.compile(r"/[A-Za-z0-9_.@+-][A-Za-z0-9_./@+-]{0,254}")  # what a contract's path allows
_CODE_SUFFIXES = (".py", ".js", ".mjs", ".cjs", ".ts", ".go")
# Working directories tried for a Go binary, in order (the binary itself lives in /app).
_RUN_DIRS = ("/app", DATA, f"{DATA}/run", f"{DATA}/run/run")


@dataclass
class Plan:
    """The writable folders (absolute), the binary's working directory when it moves, whether the
    working directory itself must belong to the app user, values set so a database file lands in
    a volume, and what to tell the user."""

    volumes: tuple[str, ...] = ()
    run_dir: str | None = None
    writable_workdir: bool = False
    env: dict[str, str] = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)


def plan(
    writes: Iterable[Write],
    *,
    app_root: str,
    code_root: str,
    movable: bool,
    bound_env: Iterable[str] = (),
    sql_backing: bool = False,
    files_under: Callable[[str], list[str]] = lambda rel: [],
    requested: Iterable[str] = (),
) -> Plan:
    """Volumes for ``writes`` of an app whose folder is ``app_root`` in the image (its working
    directory) and whose code is under ``code_root``; ``movable``: the working directory may move
    (a Go binary). Writes a configured value replaces are dropped: the default of a variable
    bound to a backing service, a SQLite fallback next to a SQL database service. ``files_under``
    lists the project's files under a folder (relative to ``app_root``); ``requested`` are folders
    the user named (absolute, or relative to the working directory)."""
    bound = set(bound_env)
    kept = [w for w in writes if not (w.env and w.env in bound) and not (w.sqlite and sql_backing)]
    result = Plan()
    folders: dict[str, str] = {}  # folder -> why
    workdir = app_root
    if movable:
        workdir = next(
            (d for d in _RUN_DIRS if all(_good(_folder(w, d, app_root), code_root) for w in kept)), app_root
        )
        if workdir != app_root:
            result.run_dir = workdir
            result.assumptions.append(
                f"the binary runs in {workdir}, inside the {DATA} volume, so that "
                + ", ".join(f"{w.path} ({w.where})" for w in kept if w.base == "cwd")
                + f" lands in {DATA} (its code opens paths relative to its working directory)"
            )
    for write in kept:
        folder = _folder(write, workdir, app_root)
        if folder == "/tmp" or folder.startswith("/tmp/"):
            continue  # already a volume everywhere
        if not _PLAIN.fullmatch(folder):
            result.assumptions.append(f"{write.path} ({write.where}) is no plain path: no volume for it")
            continue
        if _good(folder, code_root) and not _holds_code(folder, app_root, files_under):
            folders.setdefault(folder, f"{write.what} {write.path} ({write.where})")
        elif write.env and write.sqlite:
            name = posixpath.basename(write.path)
            result.env[write.env] = f"sqlite:///{DATA}/{name}" if write.url else f"{DATA}/{name}"
            folders.setdefault(DATA, f"{write.what} {write.path} ({write.where})")
            result.assumptions.append(
                f"{write.env} defaults to the SQLite file {write.path} next to the code ({write.where}): "
                f"set to {result.env[write.env]} so the database is in the {DATA} volume"
            )
        else:
            result.writable_workdir = True
            result.assumptions.append(
                f"the app writes {write.what} {write.path} ({write.where}) at {folder}, beside its code, "
                "which no volume can cover: the image gives the app user its working directory "
                "(Compose development works), but the read-only root filesystem of Kubernetes, ECS and "
                "Compose prod rejects the write; make the path configurable and point it at a folder "
                "passed with --writable-path"
            )
    for path in requested:
        folder = posixpath.normpath(posixpath.join(workdir, path))
        folders.setdefault(folder, "asked for with --writable-path")
    result.volumes = _outermost(folders)
    for folder in result.volumes:
        why = folders[folder]
        content = [f for f in files_under(_relative(folder, app_root)) if f] if folder != DATA else []
        note = (
            f"; the image's files there ({', '.join(content[:3])}) seed Docker and ECS volumes, but a "
            "Kubernetes emptyDir starts empty"
            if content
            else ""
        )
        result.assumptions.append(f"{folder} is a writable volume ({why}){note}")
    if any(w.sqlite for w in kept):
        result.assumptions.append(
            "SQLite on a volume: each replica (pod, task) has its own database, lost when it is replaced; "
            "use a database service, or one replica with a persistent volume, for data that must last"
        )
    return result


def _folder(write: Write, workdir: str, app_root: str) -> str:
    """The absolute folder that must be writable for ``write``."""
    anchor = {"cwd": workdir, "app": app_root, "abs": "/"}[write.base]
    path = posixpath.normpath(posixpath.join(anchor, write.path))
    return posixpath.dirname(path) if write.kind == "file" else path


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _good(folder: str, code_root: str) -> bool:
    """A volume may be mounted at ``folder``: not over the code, the system or the root."""
    return folder != "/" and not any(_within(protected, folder) for protected in (code_root, *SYSTEM))


def covers_code(path: str, app_root: str) -> bool:
    """A volume at ``path`` (absolute, or relative to ``app_root``) would hide code or the system."""
    return not _good(posixpath.normpath(posixpath.join(app_root, path)), app_root)


def _relative(folder: str, app_root: str) -> str:
    return posixpath.relpath(folder, app_root) if _within(folder, app_root) else ""


def _holds_code(folder: str, app_root: str, files_under: Callable[[str], list[str]]) -> bool:
    rel = _relative(folder, app_root)
    return bool(rel) and any(f.endswith(_CODE_SUFFIXES) for f in files_under(rel))


def _outermost(folders: dict[str, str]) -> tuple[str, ...]:
    """Each folder once, none inside another (one volume covers what is below it)."""
    ordered = sorted(folders)
    return tuple(f for f in ordered if not any(o != f and _within(f, o) for o in ordered))


def volume_name(path: str) -> str:
    """A DNS-1123 name for the volume at ``path`` (Kubernetes, Compose and ECS accept it)."""
    slug = "-".join(part for part in path.strip("/").lower().replace("_", "-").split("/") if part)
    cleaned = "".join(c if c.isalnum() or c == "-" else "-" for c in slug).strip("-")
    return cleaned[:63].rstrip("-") or "data"
