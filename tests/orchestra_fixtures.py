"""A whole orchestra in this process against its own nats-server, for end-to-end tests."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from agents.knowledge.store import KnowledgeStore
from agents.runner import AGENTS, Orchestra
from agents.settings import AgentSettings
from bus.client import OrchestraClient
from bus.config import BusConfig
from bus.embedded import EmbeddedServer
from contracts import Envelope
from contracts.payloads import StatusChanged

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass
class Running:
    server: EmbeddedServer
    orchestra: Orchestra
    client: OrchestraClient
    workspace: Path
    settings: AgentSettings
    config: BusConfig

    async def run_task(self, text: str, project: str, timeout_s: float = 120.0, **kw) -> list[Envelope]:
        """Submit and collect every status event until a terminal one."""
        task_id = await self.client.submit(text, project, **kw)
        statuses = [e async for e in self.client.watch(task_id, idle_timeout_s=timeout_s)]
        return statuses

    async def stored(self, task_id: str, *, until_terminal: bool = True) -> list[dict]:
        """The task's events in the knowledge store, once its terminal status got there."""
        store = await KnowledgeStore.open(self.settings.knowledge_db)
        try:
            for _ in range(100):
                rows = await store.events(task_id)
                done = any(
                    r["type"] == "status.changed" and r["payload"]["state"] in ("ready", "failed", "deployed")
                    for r in rows
                )
                if done or not until_terminal:
                    return rows
                await asyncio.sleep(0.1)
            return rows
        finally:
            await store.close()


def copy_example(name: str, workspace: Path) -> str:
    shutil.copytree(EXAMPLES / name, workspace / name, ignore=shutil.ignore_patterns("__pycache__", ".venv"))
    return name


async def start_orchestra(
    tmp: Path,
    *,
    agents: list[str] | None = None,
    ack_wait_s: float = 10,
    bus_overrides: dict | None = None,
    **settings_overrides,
) -> AsyncIterator[Running]:
    server = EmbeddedServer(store_dir=tmp / "nats").start()
    try:
        workspace = tmp / "workspace"
        workspace.mkdir()
        config = BusConfig(
            nats_url=server.url,
            **{
                "ack_wait_s": ack_wait_s,
                "nak_delays_s": (0.1, 0.3, 1.0),
                "fetch_timeout_s": 0.3,
                **(bus_overrides or {}),
            },
        )
        # checkov costs seconds per task: tests that want it ask for it (security_checkov=True).
        settings_overrides.setdefault("security_checkov", False)
        # The smoke boot installs and starts each app: tests that want it ask for it (smoke_boot=True).
        settings_overrides.setdefault("smoke_boot", False)
        settings = AgentSettings(
            workspace=workspace,
            knowledge_db=tmp / "knowledge.sqlite3",
            sweep_interval_s=0.3,
            **settings_overrides,
        )
        # The test provisions its server as `orchestra up` does, then the agents bind.
        orchestra = Orchestra(agents or list(AGENTS), config, settings, provision=True)
        await orchestra.start()
        client = await OrchestraClient.open(config)
        try:
            yield Running(server, orchestra, client, workspace, settings, config)
        finally:
            await client.close()
            await orchestra.stop()
    finally:
        server.stop()


def final(statuses: list[Envelope]) -> StatusChanged:
    payload = statuses[-1].payload
    assert isinstance(payload, StatusChanged)
    return payload


async def assert_delivered_once(running: Running, agents: list[str], *, within: float = 30.0) -> None:
    """Once every consumer of ``agents`` has settled (nothing pending, nothing unacked), each handled
    every message of its subject exactly once: no handler failed or blocked past its ack wait
    (either would show as a redelivery), and nothing was dead-lettered."""
    from contracts.subjects import DLQ_STREAM, EVENTS_STREAM, ROUTES
    from tests.faults.helpers import stream_count, until

    js = running.client.bus.js
    consumers = [c for agent in agents for c in ROUTES[agent].consumers()]

    async def settled() -> bool:
        infos = [await js.consumer_info(EVENTS_STREAM, durable) for durable, _ in consumers]
        return all(i.num_pending == 0 and i.num_ack_pending == 0 for i in infos)

    await until(settled, within=within, what="the agents' consumers to settle")
    for durable, subject in consumers:
        info = await js.consumer_info(EVENTS_STREAM, durable)
        messages = await stream_count(js, EVENTS_STREAM, subject)
        assert info.delivered.consumer_seq == messages, f"{durable}: {info.delivered.consumer_seq} deliveries"
    assert await stream_count(js, DLQ_STREAM) == 0, "something was dead-lettered"
