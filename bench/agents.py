"""Agents as their own OS processes (``orchestra agent NAME``, the container entrypoint), for the
benchmarks that measure them that way: start them against a server, wait until they consume, stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from bus.client import OrchestraClient
from contracts.subjects import ROUTES

ORCHESTRA = Path(sys.executable).parent / "orchestra"


def start_agents(
    url: str, workdir: Path, names: list[str], *, replicas: int = 1, env: dict[str, str] | None = None
) -> list[subprocess.Popen[bytes]]:
    """``replicas`` processes of each agent in ``names``; projects in ``workdir/workspace``, the
    knowledge file in ``workdir``, their output discarded."""
    environment = {
        **os.environ,
        "NATS_URL": url,
        "ORCHESTRA_WORKSPACE": str(workdir / "workspace"),
        "ORCHESTRA_KNOWLEDGE_DB": str(workdir / "knowledge.sqlite3"),
        "ORCHESTRA_HTTP_PORT": "0",
        **(env or {}),
    }
    return [
        subprocess.Popen(
            [str(ORCHESTRA), "agent", name, "--connect-wait", "30"],
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=workdir,
        )
        for name in names
        for _ in range(replicas if name != "knowledge" else 1)  # one SQLite writer
    ]


def stop_agents(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM (each drains), then SIGKILL whatever is still running after 15 s."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def consumers_ready(client: OrchestraClient, timeout_s: float, names: list[str] | None = None) -> None:
    """Wait until every agent (of ``names``) created its durable consumers (each does so when started)."""
    wanted = {d for name in names or list(ROUTES) for d, _ in ROUTES[name].consumers()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    have: set[str] = set()
    while loop.time() < deadline:
        with contextlib.suppress(Exception):
            have = {c.name for c in await client.bus.js.consumers_info("ORCHESTRA_EVENTS")}
        if wanted <= have:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"agents not ready after {timeout_s}s: missing {sorted(wanted - have)}")
