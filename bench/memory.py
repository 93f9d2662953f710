"""Peak RSS of each agent as its own OS process (``orchestra agent NAME``, the container entrypoint).

All six agents run as separate processes against the bench server and carry a few tasks end to end
with every validator, so each one's peak (VmHWM, read from /proc before it is stopped) includes
real work: imports, its handlers, the knowledge store's batches, QA's and security's in-process
checks (their command-line tools are child processes of their own and not counted).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from bench.agents import consumers_ready, start_agents, stop_agents
from bench.common import peak_rss_mb
from bench.tasks import TASK_TEXT, copy_project, fresh_state
from bus.client import OrchestraClient
from bus.config import BusConfig
from contracts.subjects import ROUTES


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
        names = list(ROUTES)
        procs = dict(zip(names, start_agents(url, Path(tmp), names), strict=True))
        try:

            async def drive() -> int:
                client = await OrchestraClient.open(BusConfig(nats_url=url), wait_s=10)
                try:
                    await consumers_ready(client, 60)
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
            stop_agents(list(procs.values()))
