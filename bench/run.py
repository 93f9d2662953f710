"""`make bench`: the bus against raw nats-py, the knowledge subscriber, the task pipeline, memory, CPU.

Every pair runs in the same process against the same nats-server (started here, temp store), one
after the other with the order alternating (raw first, then ours first, ...), each run on a fresh
stream; a pair's ratio is ours / raw and the reported ratio is the median over pairs. The machine
is shared and noisy: read ratios, not absolute rates, and only ratios measured in the same run.

Writes bench/results.json (numbers) and prints a table. ``--quick`` is a smoke run with small N.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/run.py` puts bench/, not the repo, on sys.path
    sys.path.insert(0, str(ROOT))

from bench import knowledge, throughput  # noqa: E402
from bench.common import Rate, median, sample_events  # noqa: E402
from bench.generation import generate_cpu_ms  # noqa: E402
from bench.memory import agent_rss  # noqa: E402
from bus.embedded import EmbeddedServer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results.json"
TARGETS = {
    "bus_ratio": (">=", 0.8),
    "knowledge_ratio": (">=", 0.8),
    "agent_rss_mb": ("<", 100.0),
    "generate_cpu_ms": ("<", 100.0),
}


@dataclass(frozen=True)
class Profile:
    """How much work each benchmark does."""

    events: int = 20_000  # bus pair: events per run
    pairs: int = 5  # bus pair: (raw, ours) runs
    inflight: int = 64  # publishes awaiting their PubAck at once, both sides
    batch: int = 64  # fetch batch, both sides (and our handler concurrency)
    knowledge_events: int = 20_000
    knowledge_pairs: int = 3
    tasks: int = 50  # tasks in flight in the task pipeline run (each mode)
    task_timeout_s: float = 900.0
    memory_tasks: int = 3  # tasks carried by the agents running as separate processes
    generate_repeats: int = 20


FULL = Profile()
QUICK = Profile(
    events=1_000,
    pairs=2,
    knowledge_events=1_000,
    knowledge_pairs=1,
    tasks=3,
    task_timeout_s=300.0,
    memory_tasks=1,
    generate_repeats=3,
)


def _alternating(pairs: int, raw: Any, ours: Any) -> tuple[list[Rate], list[Rate], list[float]]:
    """Run ``pairs`` (raw, ours) pairs, alternating which goes first; returns rates and pair ratios."""
    raws: list[Rate] = []
    mine: list[Rate] = []
    for i in range(pairs):
        order = (("raw", raw), ("ours", ours)) if i % 2 == 0 else (("ours", ours), ("raw", raw))
        for name, run in order:
            gc.collect()
            rate = asyncio.run(run())
            (raws if name == "raw" else mine).append(rate)
            print(
                f"  {name:<4} {rate.per_s:9.0f} events/s  {rate.cpu_us_per_item:6.0f} us CPU/event",
                flush=True,
            )
    return raws, mine, [m.per_s / r.per_s for r, m in zip(raws, mine, strict=True)]


def bench_bus(url: str, p: Profile) -> dict[str, float]:
    print(f"bus vs raw nats-py: {p.events} events x {p.pairs} pairs, {p.inflight} in flight, batch {p.batch}")
    events = sample_events(p.events)
    raws, ours, ratios = _alternating(
        p.pairs,
        lambda: throughput.run_raw(url, events, inflight=p.inflight, batch=p.batch),
        lambda: throughput.run_bus(url, events, inflight=p.inflight, batch=p.batch),
    )
    return {
        "bus_events_per_s": median([r.per_s for r in ours]),
        "raw_events_per_s": median([r.per_s for r in raws]),
        "bus_ratio": median(ratios),
        "bus_cpu_us_per_event": median([r.cpu_us_per_item for r in ours]),
        "raw_cpu_us_per_event": median([r.cpu_us_per_item for r in raws]),
    }


def bench_knowledge(url: str, p: Profile) -> dict[str, float]:
    print(f"knowledge subscriber vs raw pull+sqlite: {p.knowledge_events} events x {p.knowledge_pairs} pairs")
    events = sample_events(p.knowledge_events)
    raws, ours, ratios = _alternating(
        p.knowledge_pairs,
        lambda: knowledge.run_raw(url, events, batch=p.batch),
        lambda: knowledge.run_ours(url, events, batch=p.batch),
    )
    return {
        "knowledge_events_per_s": median([r.per_s for r in ours]),
        "knowledge_raw_events_per_s": median([r.per_s for r in raws]),
        "knowledge_ratio": median(ratios),
        "knowledge_cpu_us_per_event": median([r.cpu_us_per_item for r in ours]),
        "knowledge_raw_cpu_us_per_event": median([r.cpu_us_per_item for r in raws]),
    }


def bench_tasks(url: str, p: Profile) -> dict[str, float]:
    """Both validator modes, each in a child process (its peak RSS is the all-in-one figure)."""
    out: dict[str, float] = {}
    rss: list[float] = []
    for mode, suffix in (("all", ""), ("fast", "_fast")):
        print(f"task pipeline, all agents embedded, {p.tasks} tasks in flight, validators={mode}", flush=True)
        started = time.monotonic()
        command = [sys.executable, "-m", "bench.tasks", "--nats-url", url, "--tasks", str(p.tasks)]
        command += ["--validators", mode, "--timeout", str(p.task_timeout_s)]
        proc = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=p.task_timeout_s + 120,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"bench.tasks --validators {mode} failed:\n{proc.stderr[-3000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"  {result['finished']}/{result['tasks']} finished ({result['ready']} ready) in "
            f"{time.monotonic() - started:.0f}s: {result['tasks_per_s']:.2f} tasks/s, "
            f"p50 {result['task_latency_p50_ms']:.0f} ms, p99 {result['task_latency_p99_ms']:.0f} ms, "
            f"peak RSS {result['rss_mb']:.0f} MiB",
            flush=True,
        )
        for reason in result["failures"]:
            print(f"  not ready: {reason}", flush=True)
        for key in ("tasks_per_s", "task_latency_p50_ms", "task_latency_p99_ms"):
            out[key + suffix] = float(result[key])
        out["tasks_ready" + suffix] = float(result["ready"])
        out["tasks_finished" + suffix] = float(result["finished"])
        rss.append(float(result["rss_mb"]))
    out["all_in_one_rss_mb"] = max(rss)
    return out


def bench_memory(url: str, p: Profile) -> dict[str, float]:
    print(f"agents as separate processes, {p.memory_tasks} task(s) through them, every validator", flush=True)
    per_agent = agent_rss(url, tasks=p.memory_tasks)
    print("  " + ", ".join(f"{name} {mb:.0f} MiB" for name, mb in per_agent.items()), flush=True)
    out = {f"agent_rss_mb_{name}": mb for name, mb in per_agent.items()}
    out["agent_rss_mb"] = max(per_agent.values())
    return out


def bench_generation(p: Profile) -> dict[str, float]:
    ms, files = generate_cpu_ms(p.generate_repeats)
    print(f"generation: {ms:.1f} CPU ms for the full artifact set ({files} files)", flush=True)
    return {"generate_cpu_ms": ms, "generate_files": float(files)}


def table(results: dict[str, Any]) -> str:
    """The figures as a readable table, with the targets where there are some."""
    rows = [
        ("bus throughput (events/s)", "bus_events_per_s", "raw_events_per_s", "bus_ratio"),
        ("  CPU us per event", "bus_cpu_us_per_event", "raw_cpu_us_per_event", None),
        (
            "knowledge persisted (events/s)",
            "knowledge_events_per_s",
            "knowledge_raw_events_per_s",
            "knowledge_ratio",
        ),
        ("  CPU us per event", "knowledge_cpu_us_per_event", "knowledge_raw_cpu_us_per_event", None),
    ]
    lines = [f"{'':34} {'ours':>12} {'raw nats-py':>12} {'ratio':>7}  target"]
    for label, ours, raw, ratio in rows:
        r = results.get(ratio) if ratio else None
        lines.append(
            f"{label:34} {results.get(ours, 0):12.0f} {results.get(raw, 0):12.0f} "
            + (f"{r:7.2f}  {_verdict(ratio, r)}" if ratio and r is not None else "")
        )
    lines.append("")
    lines.append(f"{'task pipeline':34} {'all':>12} {'fast':>12}")
    for label, key in (
        ("tasks/s", "tasks_per_s"),
        ("latency p50 (ms)", "task_latency_p50_ms"),
        ("latency p99 (ms)", "task_latency_p99_ms"),
        ("tasks ready", "tasks_ready"),
    ):
        lines.append(f"  {label:32} {results.get(key, 0):12.2f} {results.get(key + '_fast', 0):12.2f}")
    lines.append("")
    for label, key in (
        ("agent peak RSS, max of six (MiB)", "agent_rss_mb"),
        ("all-in-one peak RSS (MiB)", "all_in_one_rss_mb"),
        ("generate full set (CPU ms)", "generate_cpu_ms"),
    ):
        value = results.get(key, 0)
        lines.append(f"{label:34} {value:12.1f}  {_verdict(key, value)}")
    return "\n".join(lines)


def _verdict(key: str, value: float) -> str:
    if key not in TARGETS:
        return ""
    op, bound = TARGETS[key]
    ok = value >= bound if op == ">=" else value < bound
    return f"{op} {bound:g} {'met' if ok else 'MISSED'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmarks against raw nats-py; writes bench/results.json.")
    parser.add_argument("--quick", action="store_true", help="Small N: a smoke run that fills every key.")
    parser.add_argument("--output", type=Path, default=RESULTS, help="Where the JSON goes.")
    args = parser.parse_args(argv)
    from agents.logs import configure_logging

    configure_logging(level="ERROR")
    profile = QUICK if args.quick else FULL
    results: dict[str, Any] = {}
    started = time.monotonic()
    with EmbeddedServer() as server:
        results |= bench_bus(server.url, profile)
        results |= bench_knowledge(server.url, profile)
        results |= bench_tasks(server.url, profile)
        results |= bench_memory(server.url, profile)
    results |= bench_generation(profile)
    results["seconds"] = round(time.monotonic() - started, 1)
    results["quick"] = 1 if args.quick else 0
    args.output.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print()
    print(table(results))
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
