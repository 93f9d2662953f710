"""The task pipeline, whole orchestra embedded: tasks/s and latency from ``task.requested`` to a
terminal status, with N tasks in flight at once.

Runs in its own process (``python -m bench.tasks --nats-url URL ...``, which prints one JSON object)
so that process's peak RSS (VmHWM) is the all-in-one figure: every agent, one connection, the tasks'
artifacts, the validators' threads (their subprocesses are separate processes and not counted).

Each task is "Containerize the Python FastAPI application" on one copy of examples/fastapi-service
with its own output dir. Streams and the task-state bucket are fresh for each run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import time
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


async def run_tasks(url: str, *, n: int, validators: str, timeout_s: float) -> dict[str, Any]:
    """Submit ``n`` tasks at once to an embedded orchestra; returns the figures of the run."""
    from agents.runner import AGENTS, Orchestra
    from agents.settings import AgentSettings
    from bus.client import OrchestraClient

    await fresh_state(url)
    with tempfile.TemporaryDirectory(prefix="bench-tasks-") as tmp:
        workspace = Path(tmp) / "workspace"
        workspace.mkdir()
        project = copy_project(workspace)
        settings = AgentSettings(
            workspace=workspace,
            knowledge_db=Path(tmp) / "knowledge.sqlite3",
            validators=validators,
            security_checkov=validators == "all",
            smoke_boot=False,  # a load benchmark measures the bus and the agents, not installs
        )
        config = BusConfig(nats_url=url)
        orchestra = Orchestra(list(AGENTS), config, settings, provision=True)
        await orchestra.start()
        client = await OrchestraClient.open(config)
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_done.wait(), timeout_s)
            ended = max((t for t, _, _ in finished.values()), default=time.perf_counter())
        finally:
            await sub.unsubscribe()
            await client.close()
            await orchestra.stop()

    latencies = [(finished[t][0] - at) * 1000 for t, at in submitted.items() if t in finished]
    states = [state for _, state, _ in finished.values()]
    failures = sorted({reason[:160] for _, state, reason in finished.values() if state != "ready"})
    return {
        "tasks": n,
        "finished": len(finished),
        "ready": states.count("ready"),
        "tasks_per_s": len(finished) / (ended - started) if ended > started else 0.0,
        "task_latency_p50_ms": percentile(latencies, 50),
        "task_latency_p99_ms": percentile(latencies, 99),
        "failures": failures[:5],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nats-url", required=True)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--validators", choices=("all", "fast"), default="all")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    from agents.logs import configure_logging

    configure_logging(level="ERROR")
    result = asyncio.run(
        run_tasks(args.nats_url, n=args.tasks, validators=args.validators, timeout_s=args.timeout)
    )
    result["rss_mb"] = peak_rss_mb()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
