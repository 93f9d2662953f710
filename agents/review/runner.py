"""Running one external tool: argument list (never a shell), captured output, a timeout."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from contracts.payloads import Finding

DEFAULT_TIMEOUT_S = 120.0


class ToolFailed(Exception):
    """The tool could not be started, timed out, or printed output we cannot read."""


def run_tool(
    argv: Sequence[str], *, cwd: Path, timeout: float = DEFAULT_TIMEOUT_S
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in ``cwd``; the finished process whatever its exit code. ToolFailed if it cannot run."""
    env = {**os.environ, "NO_COLOR": "1", "PYTHONWARNINGS": "ignore"}
    try:
        return subprocess.run(
            list(argv), cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise ToolFailed(f"timed out after {timeout:.0f}s") from exc
    except OSError as exc:
        raise ToolFailed(str(exc)) from exc


def failure_detail(done: subprocess.CompletedProcess[str]) -> str:
    """What to say when a tool's output is unreadable: stderr first, else stdout, else the exit code."""
    return done.stderr.strip() or done.stdout.strip() or f"exit code {done.returncode} and no output"


@dataclass
class Outcome:
    """One validator's batch result: findings, and the version that ran ("missing" if none)."""

    tool: str
    version: str
    findings: list[Finding] = field(default_factory=list)
