"""Peak RSS and time of inspecting a project with thousands of large sources.

The project is the FastAPI example plus ``--files`` generated modules of ``--size`` bytes of plain
Python each. They are hard links to one file, so 5,000 x 1 MB costs 1 MB of disk while every
read still returns a megabyte. Inspection runs in a child process (``inspect_project``, as the
architect and DevOps call it); its peak RSS is the child's ru_maxrss.

    .venv/bin/python -m bench.inspect_memory --files 5000 --size 1000000
    .venv/bin/python -m bench.inspect_memory --files 5000 --size 200000   # under the per-file bound
    PYTHONPATH=/other/checkout .venv/bin/python -m bench.inspect_memory --files 300   # other code
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi-service"
_LINE = 'def handler_{n:05d}(request):\n    return {{"status": "ok", "value": compute(request, {n})}}\n\n'
_CHILD = """
import sys, time
from pathlib import Path
from agents.inspection.inspect import inspect_project
started = time.perf_counter()
facts = inspect_project(Path(sys.argv[1]))
print(f"{time.perf_counter() - started:.2f}")
for line in facts.assumptions:
    print(line)
"""


def make_project(root: Path, files: int, size: int) -> Path:
    """The example project plus ``files`` hard links to one generated module of ``size`` bytes."""
    project = root / "big-service"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__"))
    text = "".join(_LINE.format(n=n) for n in range(size // 40 + 1)).encode()[:size]
    generated = project / "app" / "generated"
    generated.mkdir()
    first = generated / "module_00000.py"
    first.write_bytes(text)
    for i in range(1, files):
        os.link(first, generated / f"module_{i:05d}.py")
    return project


def inspect_in_child(project: Path) -> tuple[float, float, list[str]]:
    """(seconds, peak RSS in MiB, assumptions) of inspecting ``project`` in a fresh interpreter."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(project)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=project.parent,  # not this checkout: PYTHONPATH (or the installed package) decides the code
    )
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"inspection failed (exit {proc.returncode})")
    lines = out.splitlines()
    return float(lines[0]), usage.ru_maxrss / 1024, lines[1:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5_000)
    parser.add_argument("--size", type=int, default=1_000_000, help="bytes per generated module")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-inspect-") as tmp:
        started = time.perf_counter()
        project = make_project(Path(tmp), args.files, args.size)
        print(f"project: {args.files:,} x {args.size:,} bytes ({time.perf_counter() - started:.1f}s to make)")
        seconds, rss_mib, assumptions = inspect_in_child(project)
    print(f"inspection: {seconds:.2f} s, peak RSS {rss_mib:,.0f} MiB")
    for line in assumptions:
        print(f"  assumption: {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
