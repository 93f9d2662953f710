"""`orchestra demo` (what `make run` runs): the whole orchestra end to end in one process."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import typer

from agents.cli.common import EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT
from agents.cli.main import follow
from agents.cli.render import hit_line, printable
from agents.idkey import with_id_key
from agents.logs import configure_logging
from agents.runner import AGENTS, Orchestra
from agents.settings import AgentSettings
from bus.client import OrchestraClient
from bus.config import BusConfig
from bus.embedded import EmbeddedServer
from contracts import new_id
from contracts.payloads import StatusChanged

STATE_DIR = Path(".orchestra")


def run_demo(project: Path, text: str, out: Path, timeout_s: float) -> int:
    """Start NATS and every agent, submit ``text`` for ``project``, follow it, show the results."""
    STATE_DIR.mkdir(exist_ok=True)
    log_path = STATE_DIR / "demo.log"
    with log_path.open("a", encoding="utf-8") as log_file:
        configure_logging(json=True, stream=log_file)
        server = EmbeddedServer(store_dir=STATE_DIR / "nats", die_with_parent=True)
        started = time.monotonic()
        typer.echo("starting embedded NATS with JetStream ...")
        server.start()
        try:
            typer.echo(f"  {server.url}  store {server.store_dir}")
            code = asyncio.run(_demo(server.url, project, text, out, timeout_s))
        finally:
            server.stop(cleanup=False)
        typer.echo(f"logs: {log_path}   (took {time.monotonic() - started:.1f}s; nothing left running)")
    return code


async def _demo(url: str, project: Path, text: str, out: Path, timeout_s: float) -> int:
    config = BusConfig.from_env(nats_url=url)
    settings = AgentSettings.from_env()  # ORCHESTRA_* apply; the defaults are this folder's .orchestra/
    settings = with_id_key(settings, STATE_DIR)
    orchestra = Orchestra(list(AGENTS), config, settings, provision=True)
    await orchestra.start()
    typer.echo(f"agents running: {', '.join(AGENTS)}")
    try:
        async with await OrchestraClient.open(config) as client:
            task_id = new_id()  # chosen first so the output folder can carry it
            await client.submit(text, str(project), output_dir=str(out / task_id), task_id=task_id)
            return await _follow_and_report(client, task_id, timeout_s)
    finally:
        await orchestra.stop()


async def _follow_and_report(client: OrchestraClient, task_id: str, timeout_s: float) -> int:
    typer.echo(f"task {task_id}: following its deployment status")
    seen: list[StatusChanged] = []
    code = await follow(client, task_id, as_json=False, timeout_s=timeout_s, seen=seen)
    if code == EXIT_TIMEOUT:
        return code
    history = await _history_when_complete(client, task_id)
    typer.echo(f"{len(history)} events for this task are in the knowledge store")
    hits = await client.search("architect decisions", task=task_id, limit=3)
    for hit in hits:
        typer.echo("  knowledge search 'architect decisions' -> " + hit_line(hit))
    end = seen[-1]
    if code == EXIT_OK and end.output_dir:
        typer.echo(f"generated files are in {printable(end.output_dir)}:")
        for name in end.files:
            typer.echo(f"  {printable(name)}")
    return EXIT_OK if code == EXIT_OK else EXIT_FAILED


async def _history_when_complete(client: OrchestraClient, task_id: str) -> list[dict]:
    """The knowledge subscriber commits in batches: wait until it holds the terminal status."""
    deadline = time.monotonic() + 10
    rows: list[dict] = []
    while time.monotonic() < deadline:
        rows = (await client.history(task_id)).rows
        if any(r["kind"] == "completion" for r in rows):
            break
        await asyncio.sleep(0.1)
    return rows
