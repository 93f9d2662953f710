"""The task pipeline, whole orchestra embedded: tasks/s and latency from ``task.requested`` to a
terminal status, with N tasks in flight at once.

Runs in its own process (``python -m bench.tasks --nats-url URL ...``, which prints one JSON object)
so that process's peak RSS (VmHWM) is the all-in-one figure: every agent, one connection, the tasks'
artifacts, the validators' threads (their subprocesses are separate processes and not counted).

Each task is "Containerize the Python FastAPI application" on one copy of examples/fastapi-service
with its own output dir. Streams and the task-state bucket are fresh for each run.

Without ``--nats-url`` it starts its own nats-server (temporary store). A backlog run, every agent
alive, with the bus (not the validators) under load::

    python -m bench.tasks --tasks 2000 --validators fast    # fast: no checkov, QA in-process checks

prints ``ready`` / ``failed`` counts (and the failure reasons): none may fail while every agent is
alive, however long the queues get.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import secrets
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from nats.js.errors import NotFoundError

from bench.common import fresh_streams, peak_rss_mb, percentile
from bus.config import BusConfig
from bus.provision import ensure_provisioned
from bus.runtime import Bus
from contracts import ContractError, decode
from contracts.payloads import StatusChanged
from contracts.subjects import TASKS_BUCKET, status_filter

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "fastapi-service"
TASK_TEXT = "Containerize the Python FastAPI application"


def copy_project(workspace: Path, name: str = "fastapi-service") -> str:
    """Copy the example into ``workspace`` (without caches or virtualenvs); returns its relative path."""
    shutil.copytree(EXAMPLE, workspace / name, ignore=shutil.ignore_patterns("__pycache__", ".venv", "*.pyc"))
    return name


async def fresh_state(url: str) -> None:
    """Fresh streams and task-state bucket, provisioned (agents only bind), so runs do not see
    each other."""
    config = BusConfig(nats_url=url)
    bus = await Bus.connect(config, name="bench-admin")
    try:
        with contextlib.suppress(NotFoundError):
            await bus.js.delete_key_value(TASKS_BUCKET)
        await fresh_streams(bus.js, config)
        await ensure_provisioned(bus.js, config)
    finally:
        await bus.close(timeout_s=5)


async def run_tasks(
    url: str,
    *,
    n: int,
    validators: str,
    timeout_s: float,
    deadlines: dict[str, float] | None = None,
    processes: int = 0,
    qa_delay_s: float = 0.0,
) -> dict[str, Any]:
    """Submit ``n`` tasks at once to an orchestra; returns the figures of the run.

    ``deadlines``: AgentSettings overrides (credentials_deadline_s, validation_deadline_s).
    ``processes``: 0 runs every agent embedded in this process; N runs each worker agent as N OS
    processes (``orchestra agent NAME``, one knowledge subscriber), as containers would.
    ``qa_delay_s``: QA pauses this long per artifact set (embedded only), standing in for slow
    validators so that the backlog builds up in front of QA, the agent tasks wait for."""
    from agents.runner import AGENTS, Orchestra
    from agents.settings import AgentSettings
    from bench.agents import consumers_ready, start_agents, stop_agents
    from bus.client import OrchestraClient

    await fresh_state(url)
    with tempfile.TemporaryDirectory(prefix="bench-tasks-") as tmp:
        workspace = Path(tmp) / "workspace"
        workspace.mkdir()
        project = copy_project(workspace)
        config = BusConfig(nats_url=url)
        orchestra = procs = None
        if processes:
            env = {
                "ORCHESTRA_VALIDATORS": validators,
                "ORCHESTRA_SECURITY_CHECKOV": "true" if validators == "all" else "false",
                "ORCHESTRA_ID_KEY": secrets.token_hex(32),
                "ORCHESTRA_SMOKE_BOOT": "false",  # a load benchmark measures the bus and agents, not installs
                **{f"ORCHESTRA_{k.upper()}": str(v) for k, v in (deadlines or {}).items()},
            }
            procs = start_agents(url, Path(tmp), list(AGENTS), replicas=processes, env=env)
        else:
            if qa_delay_s:
                slow_qa(qa_delay_s)
            settings = AgentSettings(
                workspace=workspace,
                knowledge_db=Path(tmp) / "knowledge.sqlite3",
                validators=validators,
                security_checkov=validators == "all",
                smoke_boot=False,
                **(deadlines or {}),
            )
            orchestra = Orchestra(list(AGENTS), config, settings)
            await orchestra.start()
        client = await OrchestraClient.open(config, wait_s=10)
        if procs:
            await consumers_ready(client, 120)
        submitted: dict[str, float] = {}
        finished: dict[str, tuple[float, str, str]] = {}
        all_done = asyncio.Event()

        async def on_status(msg: Any) -> None:
            try:
                payload = decode(msg.data).payload
            except ContractError:
                return
            task_id = msg.subject.rsplit(".", 1)[-1]
            if isinstance(payload, StatusChanged) and payload.state.terminal and task_id not in finished:
                finished[task_id] = (time.perf_counter(), payload.state.value, payload.reason)
                if len(finished) >= n:
                    all_done.set()

        # Core NATS sees every stored event too: one subscription for every task's status.
        sub = await client.bus.nc.subscribe(status_filter(), cb=on_status)
        try:
            started = time.perf_counter()

            async def submit(i: int) -> None:
                at = time.perf_counter()
                task_id = await client.submit(TASK_TEXT, project, output_dir=f"out/{i}")
                submitted[task_id] = at

            await asyncio.gather(*(submit(i) for i in range(n)))
            deadline = time.perf_counter() + timeout_s
            while not all_done.is_set() and time.perf_counter() < deadline:
                with contextlib.suppress(TimeoutError):  # a progress line on stderr every 30 s
                    await asyncio.wait_for(all_done.wait(), min(30.0, deadline - time.perf_counter()))
                print(f"bench.tasks: {len(finished)}/{n} finished", file=sys.stderr, flush=True)
            ended = max((t for t, _, _ in finished.values()), default=time.perf_counter())
        finally:
            await sub.unsubscribe()
            await client.close()
            if orchestra is not None:
                await orchestra.stop()
            if procs:
                await asyncio.to_thread(stop_agents, procs)

    latencies = [(finished[t][0] - at) * 1000 for t, at in submitted.items() if t in finished]
    states = [state for _, state, _ in finished.values()]
    reasons = Counter(reason[:160] for _, state, reason in finished.values() if state != "ready")
    failures = [f"{count} x {reason}" for reason, count in reasons.most_common()]
    return {
        "tasks": n,
        "finished": len(finished),
        "ready": states.count("ready"),
        "failed": states.count("failed"),
        "tasks_per_s": len(finished) / (ended - started) if ended > started else 0.0,
        "task_latency_p50_ms": percentile(latencies, 50),
        "task_latency_p99_ms": percentile(latencies, 99),
        "failures": failures[:5],
    }


def slow_qa(delay_s: float) -> None:
    """Make this process's QA agent pause ``delay_s`` per artifact set (its event loop stays free,
    as with the real validators, which run in threads and subprocesses)."""
    import functools

    from agents.qa.agent import QA

    check = QA.check

    @functools.wraps(check)
    async def slow_check(self: QA, event: Any, ctx: Any) -> None:
        await asyncio.sleep(delay_s)
        await check(self, event, ctx)

    QA.check = slow_check  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nats-url", help="default: start a nats-server of its own")
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--validators", choices=("all", "fast"), default="all")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--credentials-deadline", type=float, help="seconds (default: the agents' own)")
    parser.add_argument("--validation-deadline", type=float, help="seconds (default: the agents' own)")
    parser.add_argument(
        "--processes", type=int, default=0, help="N: every worker agent as N OS processes (0: all embedded)"
    )
    parser.add_argument(
        "--qa-delay", type=float, default=0.0, help="seconds QA pauses per artifact set (embedded only)"
    )
    args = parser.parse_args(argv)
    if args.qa_delay and args.processes:
        parser.error("--qa-delay works with the embedded agents only (no --processes)")
    from agents.logs import configure_logging
    from bus.embedded import EmbeddedServer

    configure_logging(level="ERROR")
    deadlines = {
        k: v
        for k, v in (
            ("credentials_deadline_s", args.credentials_deadline),
            ("validation_deadline_s", args.validation_deadline),
        )
        if v is not None
    }
    with tempfile.TemporaryDirectory(prefix="bench-nats-") as store:
        server = None if args.nats_url else EmbeddedServer(store_dir=Path(store)).start()
        try:
            url = args.nats_url or server.url  # type: ignore[union-attr]
            result = asyncio.run(
                run_tasks(
                    url,
                    n=args.tasks,
                    validators=args.validators,
                    timeout_s=args.timeout,
                    deadlines=deadlines,
                    processes=args.processes,
                    qa_delay_s=args.qa_delay,
                )
            )
        finally:
            if server is not None:
                server.stop()
    result["rss_mb"] = peak_rss_mb()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
