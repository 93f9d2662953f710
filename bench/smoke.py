"""Generator and smoke-boot cost per project: wall time and CPU, the smoke boot cold and warm.

For each project (default: every example; or the folders given) this copies it to a temp folder,
runs the generator (inspect + generate, as ``orchestra generate`` does) and then the smoke boot
twice on one fresh layer cache: cold (every install runs) and warm (installs from the cache).
CPU is this process plus every child it waited for (installs, the app, health checks). Figures,
not assertions: installs depend on the network and the machine. Needs root (the sandbox).

    .venv/bin/python bench/smoke.py [PROJECT ...] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.credential_policy import issue  # noqa: E402
from agents.devops.generate import generate  # noqa: E402
from agents.devops.spec import AppSpec  # noqa: E402
from agents.inspection.inspect import InspectionError, inspect_project  # noqa: E402
from agents.qa.smoke import SmokeOptions, smoke_boot  # noqa: E402
from contracts.payloads import CredentialRequested  # noqa: E402
from contracts.vocabulary import Target  # noqa: E402


def cpu() -> float:
    """CPU seconds of this process and its waited-for children so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measured(function: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, CPU seconds) of one call."""
    wall, used = time.monotonic(), cpu()
    result = function()
    return result, time.monotonic() - wall, cpu() - used


def generated(project: Path) -> dict[str, str]:
    """The full artifact set for ``project``, as ``orchestra generate --target all`` makes it
    (the credential manager's policy, run locally)."""
    facts = inspect_project(project)
    environments = ["dev", "staging", "prod"]
    issued = issue(
        CredentialRequested(
            service=facts.name, env_vars=list(facts.env_vars), targets=list(Target), environments=environments
        )
    )
    spec = AppSpec(
        facts=facts,
        environments=tuple(environments),
        secrets=tuple(issued.secrets),
        config_vars=tuple(issued.config_vars),
    )
    return {f.path: f.content for f in generate(spec)} | {"__env_vars__": json.dumps(list(facts.env_vars))}


def outcome(findings: list[Any]) -> str:
    """The smoke result in a word or two: passed, skipped, or the failed step's rule."""
    failed = [f.rule for f in findings if f.severity.value not in ("info", "low")]
    if failed:
        return ",".join(failed)
    return "skipped" if any(f.rule == "SMOKE-SKIPPED" for f in findings) else "passed"


def bench_project(source: Path, tmp: Path) -> dict[str, Any]:
    project = tmp / source.name
    shutil.copytree(
        source,
        project,
        symlinks=True,
        ignore=shutil.ignore_patterns(".git", "node_modules", ".venv", "__pycache__"),
    )
    row: dict[str, Any] = {"project": source.name}
    try:
        files, row["generate_s"], row["generate_cpu_s"] = measured(lambda: generated(project))
    except (InspectionError, ValueError) as exc:
        row["result"] = f"refused: {str(exc).splitlines()[0][:120]}"
        return row
    env_vars = json.loads(files.pop("__env_vars__"))
    options = SmokeOptions(cache=tmp / f"cache-{source.name}")
    for run in ("cold", "warm"):
        result, row[f"{run}_s"], row[f"{run}_cpu_s"] = measured(
            lambda: smoke_boot(files, project, options, env_vars=env_vars)
        )
        row[f"{run}_result"] = outcome(result.findings)
        if row[f"{run}_result"] != "passed":
            row[f"{run}_detail"] = next(
                (
                    f.message[-600:]
                    for f in result.findings
                    if f.rule not in ("SMOKE-ENGINE", "SMOKE-TOOLCHAIN")
                ),
                "",
            )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("projects", nargs="*", type=Path)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    projects = args.projects or sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir())
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-smoke-") as tmp:
        for project in projects:
            try:
                rows.append(bench_project(project.resolve(), Path(tmp)))
            except Exception as exc:  # one broken project must not hide the others' figures
                rows.append(
                    {"project": project.name, "result": f"bench error: {type(exc).__name__}: {exc}"[:200]}
                )
            print(json.dumps(rows[-1]), flush=True)
    header = f"{'project':34} {'generate':>16} {'smoke cold':>22} {'smoke warm':>22}  result"
    print("\n" + header + "\n" + "-" * len(header))
    for row in rows:
        if "cold_s" not in row:
            print(f"{row['project']:34} {row.get('result', '')}")
            continue
        print(
            f"{row['project']:34} {row['generate_s']:6.2f}s {row['generate_cpu_s']:5.2f}cpu"
            f" {row['cold_s']:8.1f}s {row['cold_cpu_s']:7.1f}cpu"
            f" {row['warm_s']:8.1f}s {row['warm_cpu_s']:7.1f}cpu"
            f"  {row['cold_result']}/{row['warm_result']}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
