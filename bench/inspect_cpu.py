"""CPU cost of inspecting and generating for whole projects, one by one (real checkouts or examples).

Per project: process CPU time (``time.process_time``) of ``inspect_project`` (reads the tree, parses
sources, follows routers) and of ``generate`` (the full artifact set), the median of ``--repeats``
runs after a warm-up, plus how many files inspection looked at. Not a timed test: run it by hand.

    .venv/bin/python bench/inspect_cpu.py [PROJECT ...] [--repeats 5]

Without projects it measures every example. A project the generator refuses is reported with the
refusal, not counted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.devops.generate import generate  # noqa: E402
from agents.devops.spec import AppSpec  # noqa: E402
from agents.inspection.inspect import InspectionError, inspect_project  # noqa: E402


def _cpu_ms(fn, repeats: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    result = fn()  # warm-up (imports, caches)
    samples = []
    for _ in range(repeats):
        start = time.process_time()
        result = fn()
        samples.append((time.process_time() - start) * 1000)
    return round(statistics.median(samples), 1), result


def measure(project: Path, repeats: int) -> dict[str, object]:
    """Inspection and generation CPU milliseconds for one project."""
    try:
        inspect_ms, facts = _cpu_ms(lambda: inspect_project(project), repeats)
    except InspectionError as exc:
        return {"project": project.name, "refused": str(exc)}
    spec = AppSpec(facts=facts)  # type: ignore[arg-type]
    generate_ms, files = _cpu_ms(lambda: generate(spec), repeats)
    return {
        "project": project.name,
        "inspect_cpu_ms": inspect_ms,
        "generate_cpu_ms": generate_ms,
        "files": len(files),  # type: ignore[arg-type]
        "port": facts.port,  # type: ignore[union-attr]
        "health": facts.health_check,  # type: ignore[union-attr]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("projects", nargs="*", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    projects = args.projects or sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir())
    for project in projects:
        print(json.dumps(measure(project, args.repeats)))


if __name__ == "__main__":
    main()
