"""Which of this machine's interpreters stands in for a stage's base image.

The sandbox does not pull images: the machine's operating system is the base, and for a
language image (``python:3.12-slim``, ``node:22``, ``golang:1.23``) the machine's own
interpreter of that language takes the image's place, the same major.minor when one is
installed (PATH, pyenv, nvm), else the nearest one, reported as a version difference. A
language with no interpreter here gives ``missing`` (the smoke boot is then skipped, saying so).
"""

from __future__ import annotations

import functools
import glob
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Top-level directories that belong to the operating system: the sandbox shows them (copy-on-write).
OS_TOPS = ("usr", "etc", "var", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
_OS_IMAGES = ("alpine", "debian", "ubuntu", "busybox", "scratch", "static", "base", "cc", "static-debian12")
_FAMILIES = re.compile(r"^(python|pypy|node|golang)(?:[0-9]*(?:[-_.].*)?)$")
_FAMILY_OF = {"python": "python", "pypy": "python", "node": "node", "golang": "go"}
_VERSION = re.compile(r"^v?(\d+(?:\.\d+){0,2})")


@dataclass(frozen=True)
class Toolchain:
    """The machine's stand-in for one base image.

    family: python | node | go | os. image_version: the version the image tag names (if any).
    version / executable: the interpreter chosen here. folders: its install folder when outside
    the OS folders (the sandbox then shows it too, copy-on-write). env: the image's default environment.
    missing: why there is no stand-in (None when there is one).
    """

    family: str
    image: str
    image_version: str | None = None
    version: str | None = None
    executable: str | None = None
    folders: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    missing: str | None = None

    @property
    def identity(self) -> str:
        """What the layers built on this stand-in depend on (part of every cache key)."""
        return f"{self.family}:{self.executable}:{self.version}"

    @property
    def other_minor(self) -> bool:
        """True when the machine's major.minor is not the image's (a version requirement of the
        project may then refuse the stand-in)."""
        wanted = (self.image_version or "").split(".")[:2]
        return len(wanted) == 2 and (self.version or "").split(".")[:2] != wanted

    @property
    def differs(self) -> bool:
        """True when the image names a version and the machine's is not it (at the precision
        the tag names: ``python:3.12`` is matched by 3.12.1, ``python:3.12.8`` is not)."""
        if not (self.image_version and self.version):
            return False
        parts = self.image_version.split(".")
        return self.version.split(".")[: len(parts)] != parts


def image_name(image: str) -> tuple[str, str]:
    """``docker.io/library/python:3.12-slim@sha256:..`` -> ("python", "3.12-slim")."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    name, _, tag = last.partition(":")
    return name.lower(), tag


def for_image(image: str) -> Toolchain:
    """The stand-in for ``image`` (cached per image reference)."""
    return _for_image(image)


@functools.lru_cache(maxsize=64)
def _for_image(image: str) -> Toolchain:
    name, tag = image_name(image)
    family_match = _FAMILIES.match(name)
    family = _FAMILY_OF[family_match[1]] if family_match else None
    wanted_match = _VERSION.match(tag)
    wanted = wanted_match[1] if wanted_match else None
    if family is None:
        if name in _OS_IMAGES or name.startswith(("distroless", "static")):
            return Toolchain(family="os", image=image, env={"PATH": DEFAULT_PATH})
        return Toolchain(family="os", image=image, missing=f"no local stand-in for base image {image}")
    probe = {"python": _python, "node": _node, "go": _go}[family]
    found = probe(wanted)
    if found is None:
        return Toolchain(
            family=family, image=image, image_version=wanted, missing=f"no {family} toolchain on this machine"
        )
    executable, prefix, version = found
    folders = () if _under_os(prefix) else (prefix,)
    return Toolchain(
        family=family,
        image=image,
        image_version=wanted,
        version=version,
        executable=executable,
        folders=folders,
        env=_image_env(family, folders),
    )


def _image_env(family: str, folders: tuple[str, ...]) -> dict[str, str]:
    """The image's default environment; an interpreter installed elsewhere adds its bin folder
    last, so what ``pip install`` puts there (uv, poetry...) is found as in the image."""
    path = DEFAULT_PATH + "".join(f":{folder}/bin" for folder in folders)
    if family == "python":
        return {"PATH": path, "LANG": "C.UTF-8"}
    if family == "go":
        return {"PATH": f"/go/bin:/usr/local/go/bin:{path}", "GOPATH": "/go"}
    return {"PATH": path}


def _under_os(path: str) -> bool:
    parts = Path(path).parts
    return len(parts) > 1 and parts[1] in OS_TOPS


def _same_minor(version: str | None) -> str:
    return ".".join((version or "").split(".")[:2])


def _python(wanted: str | None) -> tuple[str, str, str] | None:
    minor = _same_minor(wanted)
    candidates: list[str] = []
    if minor:
        pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
        candidates += [shutil.which(f"python{minor}") or ""]
        candidates += sorted(glob.glob(f"{pyenv}/versions/{minor}.*/bin/python{minor}"), reverse=True)
        candidates += [f"/usr/bin/python{minor}", f"/usr/local/bin/python{minor}"]
    preferred = [c for c in candidates if c]
    fallback = [getattr(sys, "_base_executable", sys.executable), shutil.which("python3") or ""]
    script = (
        "import json, sys; print(json.dumps([getattr(sys, '_base_executable', sys.executable),"
        " sys.base_prefix, '%d.%d.%d' % sys.version_info[:3]]))"
    )
    for candidate in [*preferred, *fallback]:
        found = _probe(candidate, ("-I", "-c", script))
        if found and (candidate in fallback or _same_minor(found[2]) == minor):
            executable, prefix, version = found
            return os.path.realpath(executable), prefix, version
    return None


def _node(wanted: str | None) -> tuple[str, str, str] | None:
    major = (wanted or "").split(".")[0]
    nvm = os.environ.get("NVM_DIR", os.path.expanduser("~/.nvm"))
    preferred = sorted(glob.glob(f"{nvm}/versions/node/v{major}.*/bin/node"), reverse=True) if major else []
    script = "console.log(JSON.stringify([process.execPath, process.versions.node]))"
    for candidate in [*preferred, shutil.which("node") or ""]:
        found = _probe(candidate, ("-e", script))
        if found:
            executable = os.path.realpath(found[0])
            return executable, str(Path(executable).parent.parent), found[1]
    return None


def _go(wanted: str | None) -> tuple[str, str, str] | None:
    go = shutil.which("go")
    if not go:
        return None
    try:
        done = subprocess.run(
            [go, "env", "GOROOT", "GOVERSION"], capture_output=True, text=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.split()
    if done.returncode != 0 or len(lines) < 2:
        return None
    return os.path.realpath(go), lines[0], lines[1].removeprefix("go")


@functools.lru_cache(maxsize=32)
def _probe(executable: str, argv: tuple[str, ...]) -> list[str] | None:
    """Run ``executable argv`` (a tiny script printing JSON); its answer, or None if it fails."""
    if not executable or not os.access(executable, os.X_OK):
        return None
    try:
        done = subprocess.run(
            [executable, *argv], capture_output=True, text=True, timeout=20, check=False, env=_clean_env()
        )
        value = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        return None
    return [str(v) for v in value] if isinstance(value, list) else None


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "NODE_", "VIRTUAL_ENV"))}
