"""Peak RSS of each agent as its own OS process (``orchestra agent NAME``, the container entrypoint).

All six agents run as separate processes against the bench server and carry a few tasks end to end
with every validator, so each one's peak (VmHWM, read from /proc before it is stopped) includes
real work: imports, its handlers, the knowledge store's batches, QA's and security's in-process
checks (their command-line tools are child processes of their own and not counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import peak_rss_mb
from bench.tasks import TASK_TEXT, copy_project, fresh_state
from bus.client import OrchestraClient
from bus.config import BusConfig
from contracts.subjects import ROUTES

ORCHESTRA = Path(sys.executable).parent / "orchestra"


async def _consumers_ready(client: OrchestraClient, timeout_s: float) -> None:
    """Wait until every agent created its durable consumers (each does so when it has started)."""
    wanted = {durable for route in ROUTES.values() for durable, _ in route.consumers()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        have = set()
        with contextlib.suppress(Exception):
            have = {c.name for c in await client.bus.js.consumers_info("ORCHESTRA_EVENTS")}
        if wanted <= have:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"agents not ready after {timeout_s}s: missing {sorted(wanted - have)}")


async def _run_tasks(client: OrchestraClient, project: str, n: int, timeout_s: float) -> int:
    ids = [await client.submit(TASK_TEXT, project, output_dir=f"out/{i}") for i in range(n)]
    ready = 0
    for task_id in ids:
        async for event in client.watch(task_id, idle_timeout_s=timeout_s):
            if getattr(event.payload, "state", None) is not None and event.payload.state.value == "ready":
                ready += 1
    return ready


def agent_rss(url: str, *, tasks: int = 3, timeout_s: float = 300.0) -> dict[str, float]:
    """``{agent name: peak RSS in MiB}`` after ``tasks`` tasks went through separate agent processes."""
    asyncio.run(fresh_state(url))
    with tempfile.TemporaryDirectory(prefix="bench-agents-") as tmp:
        workspace = Path(tmp) / "workspace"
        workspace.mkdir()
        project = copy_project(workspace)
        env = {
            **os.environ,
            "NATS_URL": url,
            "ORCHESTRA_WORKSPACE": str(workspace),
            "ORCHESTRA_KNOWLEDGE_DB": str(Path(tmp) / "knowledge.sqlite3"),
            "ORCHESTRA_HTTP_PORT": "0",
        }
        procs = {
            name: subprocess.Popen(
                [str(ORCHESTRA), "agent", name, "--connect-wait", "30"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=tmp,
            )
            for name in ROUTES
        }
        try:

            async def drive() -> int:
                client = await OrchestraClient.open(BusConfig(nats_url=url), wait_s=10)
                try:
                    await _consumers_ready(client, 60)
                    return await _run_tasks(client, project, tasks, timeout_s)
                finally:
                    await client.close()

            ready = asyncio.run(drive())
            time.sleep(1.0)  # the knowledge subscriber's last batch
            rss = {name: peak_rss_mb(proc.pid) for name, proc in procs.items()}
            if ready != tasks:
                print(
                    f"warning: {tasks - ready} of {tasks} memory-run tasks did not end ready", file=sys.stderr
                )
            return rss
        finally:
            for proc in procs.values():
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
            for proc in procs.values():
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
