"""The first layer of a stage built on a language image: the machine's interpreter made to look
like the image's.

Python images have ``/usr/local/bin/python`` and ``pip`` on a fresh interpreter: ``pip install``
works system-wide (no PEP 668 marker) and nothing else is installed. The layer gives the same:
wrappers in /usr/local/bin that exec the real interpreter (so ``python -m venv`` records the real
home), the "externally managed" marker hidden, and, when the interpreter's install folder holds
packages of its own (a pyenv version someone installed into), its ``bin`` and ``site-packages``
made opaque with only pip/setuptools kept, so a missing dependency of the app is never found
there by accident. Built on the host side with overlayfs' own markers (whiteouts, opaque dirs).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

from agents.qa.smoke.toolchains import Toolchain

ADAPTER_VERSION = "2"
_KEEP_SITE = ("pip", "setuptools", "_distutils_hack", "distutils-precedence.pth", "pkg_resources", "wheel")
_KEEP_BIN = ("python", "pip", "pydoc", "idle", "2to3")
_PATHS = (
    "import json, sys, sysconfig; print(json.dumps([sysconfig.get_path('purelib'),"
    " sysconfig.get_path('stdlib'), '%d.%d' % sys.version_info[:2]]))"
)


class AdapterError(RuntimeError):
    """The interpreter could not be inspected."""


def python_layer(toolchain: Toolchain, layer: Path) -> None:
    """Fill ``layer`` (made by Sandbox.new_layer) with the python image's look; see the module docstring."""
    executable = str(toolchain.executable)
    try:
        done = subprocess.run([executable, "-I", "-c", _PATHS], capture_output=True, text=True, timeout=30)
        purelib, stdlib, minor = json.loads(done.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise AdapterError(f"cannot inspect {executable}: {exc}") from None
    bin_dir = os.path.dirname(executable)
    local_bin = layer / "host" / "usr" / "local" / "bin"
    local_bin.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3", f"python{minor}"):
        _wrapper(local_bin / name, executable)
    for name in ("pip", "pip3", f"pip{minor}"):
        _wrapper(local_bin / name, executable, "-m", "pip")
    marker = Path(stdlib) / "EXTERNALLY-MANAGED"
    if marker.exists():
        _whiteout(_in_layer(layer, str(marker)))
    for folder in toolchain.folders:  # an install of its own: show it fresh, as in the image
        if purelib.startswith(folder + "/"):
            _opaque_copy(Path(purelib), _in_layer(layer, purelib), _KEEP_SITE)
        if bin_dir.startswith(folder + "/"):
            _opaque_copy(Path(bin_dir), _in_layer(layer, bin_dir), _KEEP_BIN)


def _in_layer(layer: Path, path: str) -> Path:
    """Where a change to the machine path ``path`` goes in ``layer`` (host/<shown folder>/...)."""
    return layer / "host" / path.lstrip("/")


def _wrapper(path: Path, executable: str, *args: str) -> None:
    command = " ".join([executable, *args])
    path.write_text(f'#!/bin/sh\nexec {command} "$@"\n', encoding="utf-8")
    path.chmod(0o755)


def _whiteout(path: Path) -> None:
    """Hide a machine file in the stage (overlayfs whiteout: a 0/0 character device)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def _opaque_copy(source: Path, target: Path, keep: tuple[str, ...]) -> None:
    """``target`` becomes an opaque folder (hides everything below it) holding only the entries
    of ``source`` whose names start with one of ``keep``."""
    target.mkdir(parents=True, exist_ok=True)
    os.setxattr(target, "trusted.overlay.opaque", b"y")
    for entry in sorted(source.iterdir()):
        if not entry.name.startswith(keep):
            continue
        if entry.is_symlink() or not entry.is_dir():
            shutil.copy2(entry, target / entry.name, follow_symlinks=False)
        else:
            shutil.copytree(entry, target / entry.name, symlinks=True)
