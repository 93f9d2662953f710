"""CPU cost of the DevOps generator: full artifact set per project, as the project count grows.

For 1, 10 and 50 projects (the examples, renamed so every project is distinct) this measures the
process CPU time (``time.process_time``) of ``generate()`` over all of them, repeated, after a
warm-up, and reports the median per project. Flat per-project numbers mean no hidden
super-linear work; the target is < 100 ms CPU per project. Inspection (file reading) is measured
separately. Not a timed test: run it by hand or from ``make bench``.

    .venv/bin/python bench/generate_cpu.py [--repeats 7] [--json-only]
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

from agents.credential_policy import issue  # noqa: E402
from agents.devops.generate import generate  # noqa: E402
from agents.devops.spec import AppSpec  # noqa: E402
from agents.inspection.inspect import inspect_project  # noqa: E402
from contracts.payloads import CredentialRequested, ServiceSpec  # noqa: E402
from contracts.vocabulary import Strategy, Target  # noqa: E402
from tests.example_services import service_examples  # noqa: E402

TARGET_MS = 100.0
COUNTS = (1, 10, 50)
ENVIRONMENTS = ["dev", "staging", "prod"]


def specs(count: int) -> list[AppSpec]:
    """``count`` distinct full-target specs, cycling through examples and strategies."""
    examples = service_examples()
    strategies = list(Strategy)
    out = []
    for i in range(count):
        example = examples[i % len(examples)]
        facts = inspect_project(example, ServiceSpec(name=f"svc-{i:03d}-{example.name}"[:42].rstrip("-")))
        issued = issue(
            CredentialRequested(
                service=facts.name,
                env_vars=list(facts.env_vars),
                targets=list(Target),
                environments=ENVIRONMENTS,
            )
        )
        out.append(
            AppSpec(
                facts=facts,
                strategy=strategies[i % len(strategies)],
                secrets=tuple(issued.secrets),
                config_vars=tuple(issued.config_vars),
            )
        )
    return out


def cpu_ms(fn, repeats: int) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        samples.append((time.process_time() - start) * 1000)
    return samples


def generate_cpu_ms(repeats: int = 20) -> tuple[float, int]:
    """(median CPU ms of one full generation of one project, files generated): used by bench/run.py."""
    (spec,) = specs(1)
    files = len(generate(spec))  # warm-up
    return statistics.median(cpu_ms(lambda: generate(spec), repeats)), files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json-only", action="store_true")
    args = parser.parse_args()

    examples = service_examples()
    inspect_samples = cpu_ms(lambda: [inspect_project(e) for e in examples], args.repeats)
    inspect_ms = statistics.median(inspect_samples) / len(examples)

    rows = []
    for count in COUNTS:
        batch = specs(count)
        for spec in batch:  # warm-up: imports, regex compilation, first-call caches
            generate(spec)
        samples = cpu_ms(lambda batch=batch: [generate(s) for s in batch], args.repeats)
        files = sum(len(generate(s)) for s in batch)
        median = statistics.median(samples)
        rows.append(
            {
                "projects": count,
                "files": files,
                "total_ms_median": round(median, 1),
                "per_project_ms": round(median / count, 2),
                "per_project_ms_min": round(min(samples) / count, 2),
            }
        )
    worst = max(r["per_project_ms"] for r in rows)
    result = {
        "benchmark": "devops.generate full artifact set (all targets)",
        "python": sys.version.split()[0],
        "repeats": args.repeats,
        "inspect_ms_per_project": round(inspect_ms, 2),
        "rows": rows,
        "target_ms_per_project": TARGET_MS,
        "within_target": worst < TARGET_MS,
        "flat": max(r["per_project_ms"] for r in rows) <= 1.5 * min(r["per_project_ms"] for r in rows),
    }
    if not args.json_only:
        print(f"{'projects':>9} {'files':>7} {'total ms':>10} {'ms/project':>11} {'min ms/project':>15}")
        for r in rows:
            print(
                f"{r['projects']:>9} {r['files']:>7} {r['total_ms_median']:>10} {r['per_project_ms']:>11} "
                f"{r['per_project_ms_min']:>15}"
            )
        inspect = result["inspect_ms_per_project"]
        print(f"inspect: {inspect} ms CPU per project; target < {TARGET_MS:.0f} ms/project")
    print(json.dumps(result, indent=None if args.json_only else 2))
    return 0 if result["within_target"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
