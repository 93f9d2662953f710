"""Generator and smoke-boot cost per project: wall time and CPU, the smoke boot cold and warm.

For each project (default: every example; or the folders given) this copies it to a temp folder,
runs the generator (inspect + generate, as ``orchestra generate`` does) and then the smoke boot
twice on one fresh layer cache: cold (every install runs) and warm (installs from the cache).
CPU is this process plus every child it waited for (installs, the app, health checks). Figures,
not assertions: installs depend on the network and the machine. Needs root (the sandbox).

A project may carry the flags ``orchestra generate`` would get, after ``::`` separators, exactly
as on its command line (``--name=value``, or a bare switch):

    PATH::--port=3000::--config-file=/etc/wtfd/wtfd.conf::--writable-path=/data
    PATH::--allow-loopback

A project's own ``.orchestra.yaml`` applies as well (flags win), as with ``orchestra generate``.
The table at the end (also Markdown with --markdown) shows what was detected, the smoke result,
its cold and warm times and the generator's CPU.

    .venv/bin/python bench/smoke.py [PROJECT[::FLAG...] ...] [--json out.json] [--markdown]
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

from agents.cli.overrides import service_overrides  # noqa: E402
from agents.credential_policy import issue  # noqa: E402
from agents.devops.generate import generate  # noqa: E402
from agents.devops.spec import AppSpec  # noqa: E402
from agents.inspection.inspect import InspectionError, inspect_project  # noqa: E402
from agents.qa.smoke import SmokeOptions, smoke_boot  # noqa: E402
from contracts.payloads import CredentialRequested, ServiceSpec  # noqa: E402
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


_SWITCHES = ("--allow-loopback",)
_REPEATED = {"--writable-path": "writable_paths", "--config-file": "config_files"}
_SINGLE = {
    "--start-command": "start_command",
    "--port": "port",
    "--health-path": "health_path",
    "--app-dir": "app_dir",
    "--build-command": "build_command",
}


def parse_project(argument: str) -> tuple[Path, list[str], ServiceSpec]:
    """``PATH::--flag=value::...`` -> (path, the flags as given, the overrides they make)."""
    path, *flags = argument.split("::")
    single: dict[str, str | None] = dict.fromkeys(_SINGLE.values())
    repeated: dict[str, list[str]] = {key: [] for key in _REPEATED.values()}
    switches = set()
    for flag in flags:
        name, _, value = flag.partition("=")
        if name in _SWITCHES:
            switches.add(name)
        elif name in _REPEATED:
            repeated[_REPEATED[name]].append(value)
        elif name in _SINGLE:
            single[_SINGLE[name]] = value
        else:
            raise SystemExit(
                f"{argument}: unknown flag {name} (known: {', '.join([*_SINGLE, *_REPEATED, *_SWITCHES])})"
            )
    port = single.pop("port")
    overrides = service_overrides(
        single["start_command"], int(port) if port else None, single["health_path"], single["app_dir"],
        single["build_command"], writable_paths=repeated["writable_paths"] or None,
        config_files=repeated["config_files"] or None, allow_loopback="--allow-loopback" in switches,
    )  # fmt: skip
    return Path(path), flags, overrides


def generated(project: Path, overrides: ServiceSpec | None = None) -> tuple[dict[str, str], Any]:
    """The full artifact set for ``project`` and its facts, as ``orchestra generate --target all``
    makes them (the credential manager's policy, run locally)."""
    facts = inspect_project(project, overrides)
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
    return {f.path: f.content for f in generate(spec)}, facts


def outcome(findings: list[Any]) -> str:
    """The smoke result in a word or two: passed, skipped, or the failed step's rule."""
    failed = [f.rule for f in findings if f.severity.value not in ("info", "low")]
    if failed:
        return ",".join(failed)
    return "skipped" if any(f.rule == "SMOKE-SKIPPED" for f in findings) else "passed"


def bench_project(source: Path, tmp: Path, overrides: ServiceSpec | None = None) -> dict[str, Any]:
    project = Path(tempfile.mkdtemp(dir=tmp)) / source.name  # the same project may come twice
    shutil.copytree(
        source,
        project,
        symlinks=True,
        ignore=shutil.ignore_patterns(".git", "node_modules", ".venv", "__pycache__"),
    )
    row: dict[str, Any] = {"project": source.name}
    try:
        (files, facts), row["generate_s"], row["generate_cpu_s"] = measured(
            lambda: generated(project, overrides)
        )
    except (InspectionError, ValueError) as exc:
        row["result"] = f"refused: {str(exc).splitlines()[0]}"
        return row
    row["detected"] = {
        "port": facts.port,
        "health": facts.health_check,
        "start": " ".join(facts.start_command),
        "build": " ".join(facts.build_command) or "-",
        "volumes": list(facts.writable_paths),
    }
    options = SmokeOptions(cache=project.parent / "cache")
    for run in ("cold", "warm"):
        result, row[f"{run}_s"], row[f"{run}_cpu_s"] = measured(
            lambda: smoke_boot(files, project, options, env_vars=list(facts.env_vars))
        )
        row[f"{run}_result"] = outcome(result.findings)
        detail = next(
            (f.message for f in result.findings if f.rule not in ("SMOKE-ENGINE", "SMOKE-TOOLCHAIN")), ""
        )
        row[f"{run}_detail"] = detail[-600:] if row[f"{run}_result"] != "passed" else detail[:400]
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table: project (and flags) | detected | smoke result | time | CPU."""
    lines = [
        "| project | detected (port, health, start, build) | smoke result | cold / warm | generate CPU |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        name = row["project"] + "".join(f" `{f}`" for f in row.get("flags", []))
        if "detected" not in row:
            lines.append(f"| {name} | - | {row.get('result', '')} | - | - |")
            continue
        d = row["detected"]
        detected = f"{d['port']}, {d['health']}, `{d['start']}`, `{d['build']}`"
        result = (
            row["cold_result"]
            if row["cold_result"] == row["warm_result"]
            else (f"{row['cold_result']} / {row['warm_result']}")
        )
        if row["cold_result"] not in ("passed",):
            result += ": " + row["cold_detail"].splitlines()[0][:200]
        lines.append(
            f"| {name} | {detected} | {result} | {row['cold_s']:.1f} s / {row['warm_s']:.1f} s "
            f"| {row['generate_cpu_s']:.2f} s |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("projects", nargs="*", help="PATH or PATH::--flag=value::...")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args()
    projects = args.projects or sorted(str(p) for p in (ROOT / "examples").iterdir() if p.is_dir())
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-smoke-") as tmp:
        for argument in projects:
            project, flags, overrides = parse_project(argument)
            try:
                row = bench_project(project.resolve(), Path(tmp), overrides)
            except Exception as exc:  # one broken project must not hide the others' figures
                row = {"project": project.name, "result": f"bench error: {type(exc).__name__}: {exc}"[:200]}
            rows.append({**row, "flags": flags})
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
    if args.markdown:
        print("\n" + markdown(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
