"""Running commands inside a stage's filesystem without a container engine.

Why a private mount namespace and not a path mapping: the generated artifacts use absolute
container paths (/app, /opt/venv, /out/server...) inside file contents that tools write
(virtualenv shebangs, pyvenv.cfg, npm bin links). Rewriting paths would break exactly the
things the smoke boot must prove; a chroot onto an overlay keeps every path as the image has
it, so a cached virtualenv built at /opt/venv keeps working at /opt/venv on the next run.

A *layer* is a folder holding what one instruction changed: ``host/<folder>/`` for changes over
a machine folder the sandbox shows (/usr, /etc, /var..., and the interpreter's install folder
when it lives elsewhere, e.g. /root/.pyenv/versions/3.12.1) and ``root/`` for every other path.
A stage is a list of layers (bottom first); ``agents/qa/smoke/enter.py`` stacks them with
overlayfs over the machine's folders, so nothing on the machine is ever written (a
``pip install`` into the interpreter lands in the layer). Needs root (CAP_SYS_ADMIN).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agents.qa.smoke.toolchains import OS_TOPS

ENTER = Path(__file__).with_name("enter.py")
SETUP_FAILED = 197
FROM_VIEW = "/.orchestra-from"  # where a COPY --from source (or staged context files) is shown
_SKELETON_DIRS = ("dev", "proc", "sys", "run", "opt", "root", "home", "srv", "mnt", "media", FROM_VIEW[1:])
LAYOUT_VERSION = "1"  # bump when the layer layout changes: old cache entries stop matching


class SandboxUnavailable(RuntimeError):
    """The machine cannot host the sandbox (no privileges, no overlayfs): not the project's fault."""


@dataclass(frozen=True)
class Finished:
    """A finished sandboxed command: exit code, seconds, and the tail of its output."""

    code: int
    seconds: float
    output: str
    timed_out: bool = False


def host_tops() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(real OS folders under /, OS folders that are symlinks) on this machine."""
    tops = tuple(t for t in OS_TOPS if os.path.isdir(f"/{t}") and not os.path.islink(f"/{t}"))
    links = tuple(t for t in OS_TOPS if os.path.islink(f"/{t}"))
    return tops, links


def read_file(layers: Sequence[Path], path: str) -> str | None:
    """The text of ``path`` (under an OS folder, e.g. /etc/passwd, or outside the machine's
    folders) as a stage with ``layers`` sees it: top layer first, then the machine."""
    relative = path.lstrip("/")
    top = relative.split("/", 1)[0]
    tops = host_tops()[0]
    for layer in reversed(layers):
        candidate = layer / ("host" if top in tops else "root") / relative
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8", errors="replace")
    host = Path("/", relative)
    return host.read_text(encoding="utf-8", errors="replace") if top in tops and host.is_file() else None


@dataclass
class Sandbox:
    """Sandboxes under ``cache`` (layers and scratch space share its filesystem, as overlayfs
    requires) showing the OS folders and ``folders`` (absolute: interpreter installs) copy-on-write."""

    cache: Path
    folders: tuple[str, ...] = ()
    scratch: Path = field(init=False)
    _count: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.cache = self.cache.resolve()
        (self.cache / "runs").mkdir(parents=True, exist_ok=True)
        self.scratch = Path(os.path.realpath(self.cache / "runs" / f"{os.getpid()}-{time.time_ns()}"))
        self.scratch.mkdir()
        self.skeleton = self._skeleton()

    @property
    def tops(self) -> tuple[str, ...]:
        """Machine folders shown copy-on-write, relative to / (OS folders first)."""
        return (*host_tops()[0], *(f.strip("/") for f in self.folders))

    def new_layer(self, path: Path) -> Path:
        """Create an empty layer folder (``root/`` and ``host/<folder>/`` for each shown folder)."""
        (path / "root").mkdir(parents=True, exist_ok=True)
        for top in self.tops:
            (path / "host" / top).mkdir(parents=True, exist_ok=True)
        return path

    def in_layer(self, layer: Path, path: str) -> Path:
        """Where the absolute container ``path`` lives in ``layer``: ``host/<folder>/...`` under a
        machine folder the sandbox shows, ``root/...`` otherwise."""
        relative = path.strip("/")
        top = relative.split("/", 1)[0]
        return layer / ("host" if top in self.tops else "root") / relative

    def find(self, layers: Sequence[Path], path: str) -> Path | None:
        """The folder ``path`` of a stage with ``layers``: the top-most layer holding it, else the
        machine's own under a shown folder; None when the stage has no such folder."""
        for layer in reversed(layers):
            candidate = self.in_layer(layer, path)
            if candidate.is_dir() and not candidate.is_symlink():
                return candidate
        relative = path.strip("/")
        if relative.split("/", 1)[0] in self.tops and Path("/", relative).is_dir():
            return Path("/", relative)
        return None

    def close(self) -> None:
        """Remove this sandbox's scratch folder (mounts died with their namespaces)."""
        shutil.rmtree(self.scratch, ignore_errors=True)

    def _skeleton(self) -> Path:
        tops, links = host_tops()
        key = hashlib.sha256(json.dumps([LAYOUT_VERSION, tops, links, self.folders]).encode()).hexdigest()[
            :16
        ]
        path = self.cache / "skeleton" / key
        if path.is_dir():
            return path
        partial = self.scratch / "skeleton"
        for name in (*tops, *_SKELETON_DIRS):
            (partial / name).mkdir(parents=True, exist_ok=True)
        (partial / "tmp").mkdir(mode=0o1777)
        (partial / "tmp").chmod(0o1777)
        for link in links:
            os.symlink(os.readlink(f"/{link}"), partial / link)
        for folder in self.folders:
            (partial / folder.lstrip("/")).mkdir(parents=True, exist_ok=True)
        for dirpath, _, _ in os.walk(partial):
            os.chmod(dirpath, 0o1777 if dirpath.endswith("/tmp") else 0o755)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            partial.rename(path)
        except OSError:  # another smoke boot made the same skeleton first
            shutil.rmtree(partial, ignore_errors=True)
        return path

    def _rel(self, path: Path | str) -> str:
        return os.path.relpath(path, self.cache) if str(path).startswith(str(self.cache)) else str(path)

    def view(self, layers: Sequence[Path], upper: Path | None) -> dict[str, object]:
        """The mounts of one stage: ``layers`` (bottom first) below ``upper`` (None: read-only)."""
        self._count += 1
        work = self.scratch / "work" / str(self._count)
        stack = list(reversed(layers))

        def one(sub: str, base: str) -> dict[str, object]:
            lower = [self._rel(layer / sub) for layer in stack if _nonempty(layer / sub)] + [base]
            entry: dict[str, object] = {"lower": lower}
            if upper is not None:
                (work / sub).mkdir(parents=True, exist_ok=True)
                entry |= {"upper": self._rel(upper / sub), "work": self._rel(work / sub)}
            return entry

        return {
            "root": one("root", self._rel(self.skeleton)),
            "tops": [{"name": top, **one(f"host/{top}", f"/{top}")} for top in self.tops],
        }

    def argv(
        self,
        layers: Sequence[Path],
        upper: Path | None,
        command: Sequence[str],
        *,
        env: dict[str, str],
        cwd: str = "/",
        uid: int = 0,
        gid: int = 0,
        source: dict[str, object] | None = None,
        caches: Sequence[tuple[Path, str]] = (),
        host_files: Sequence[str] = ("/etc/resolv.conf",),
    ) -> list[str]:
        """The argv that runs ``command`` in the stage. ``source``: a read-only view shown at
        /.orchestra-from; ``caches``: (host folder, path) pairs mounted read-write."""
        mountpoint = self.scratch / "mnt" / str(self._count + 1)
        mountpoint.mkdir(parents=True)
        spec = {
            "base": str(self.cache),
            "mountpoint": self._rel(mountpoint),
            **self.view(layers, upper),
            "caches": [{"source": str(h), "target": t} for h, t in caches],
            "host_files": list(host_files),
            "argv": list(command),
            "env": env,
            "cwd": cwd,
            "uid": uid,
            "gid": gid,
        }
        if source is not None:
            spec["view"] = {"at": FROM_VIEW, **source}
        spec_path = self.scratch / f"spec-{self._count}.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        return [sys.executable, "-I", "-S", str(ENTER), str(spec_path)]

    def run(self, argv: list[str], *, timeout: float, log: Path) -> Finished:
        """Run a sandbox argv to completion (its own process group, killed at ``timeout``)."""
        started = time.monotonic()
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                code = proc.wait(timeout=max(timeout, 0.1))
                timed_out = False
            except subprocess.TimeoutExpired:
                stop_group(proc, grace=2.0)
                code, timed_out = proc.returncode if proc.returncode is not None else -9, True
        output = tail(log)
        if code == SETUP_FAILED and "orchestra-sandbox:" in output:
            raise SandboxUnavailable(output.strip().splitlines()[-1])
        return Finished(code=code, seconds=time.monotonic() - started, output=output, timed_out=timed_out)


def _nonempty(path: Path) -> bool:
    try:
        with os.scandir(path) as entries:
            return any(True for _ in entries)
    except OSError:
        return False


def tail(log: Path, lines: int = 25, limit: int = 4_000) -> str:
    """The last ``lines`` lines of a log file (at most ``limit`` characters)."""
    try:
        with log.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    text = "\n".join(data.rstrip().splitlines()[-lines:])
    return text[-limit:]


def stop_group(proc: subprocess.Popen[bytes], *, grace: float) -> bool:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds; True if SIGTERM sufficed."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
        stopped = True
    except subprocess.TimeoutExpired:
        stopped = False
    with contextlib.suppress(ProcessLookupError):  # also whatever the command left in its group
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return stopped
