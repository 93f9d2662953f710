"""Running agents in a process: one, several, or all of them with an embedded NATS server."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from importlib import import_module
from typing import Any

import structlog

from agents.discovery import register
from agents.health import HealthServer
from agents.settings import AgentSettings
from agents.worker import Worker
from bus.config import BusConfig
from bus.runtime import Bus
from contracts.agents import AGENTS

log = structlog.get_logger("agents.runner")


class UnknownAgent(ValueError):
    pass


def agent_class(name: str) -> type[Worker]:
    """The worker class of a registered agent (contracts/agents.py), imported on demand so a
    lightweight agent does not load the validators."""
    try:
        module, cls = AGENTS[name].worker.split(":")
    except KeyError:
        raise UnknownAgent(f"unknown agent {name!r}; agents: {', '.join(AGENTS)}") from None
    return getattr(import_module(module), cls)


class Orchestra:
    """Some agents sharing one bus connection in this process.

    Agents bind to the streams: until they exist (``orchestra provision``) ``start`` waits, not
    ready, logging what is missing. ``provision=True`` (``orchestra up``, the demo: one process
    that owns its server) creates or updates them first."""

    def __init__(
        self, names: list[str], bus_config: BusConfig, settings: AgentSettings, *, provision: bool = False
    ) -> None:
        self.classes = [agent_class(n) for n in names]  # fail fast on a bad name
        self.bus_config = bus_config
        self.settings = settings
        self.provision = provision
        self.bus: Bus | None = None
        self.workers: list[Worker] = []
        self.services: list[Any] = []
        self.health: HealthServer | None = None
        self._ready = False

    def ready(self) -> bool:
        return self._ready and self.bus is not None and self.bus.nc.is_connected

    async def start(self, *, connect_wait_s: float = 0.0) -> None:
        names = "+".join(c.name for c in self.classes)
        if self.settings.http_port:
            self.health = HealthServer(self.ready, port=self.settings.http_port)
            await self.health.start()
        id_key = self.settings.id_key
        if id_key is None:
            log.warning(
                "agents.no_id_key",
                agents=names,
                consequence="follow-up event ids are computable by anyone who sees an event",
                fix="set ORCHESTRA_ID_KEY or ORCHESTRA_ID_KEY_FILE (the same key for every agent process)",
            )
        self.bus = await Bus.connect(
            self.bus_config,
            name=f"orchestra:{names}",
            wait_s=connect_wait_s,
            provision=self.provision,
            id_key=id_key.get_secret_value().encode() if id_key else None,
        )
        await self.bus.wait_provisioned()
        for cls in self.classes:
            worker = cls(self.bus, self.settings)
            await worker.start()
            self.workers.append(worker)
            self.services.append(await register(self.bus.nc, worker))
        self._ready = True
        log.info("orchestra.started", agents=names)

    async def stop(self) -> None:
        """Graceful: stop fetching, finish in-flight handlers (acked), stop agents, drain."""
        self._ready = False
        for service in self.services:
            with contextlib.suppress(Exception):
                await service.stop()
        if self.bus is not None:
            await asyncio.gather(*(consumer.stop() for consumer in self.bus.consumers))
        for worker in self.workers:
            with contextlib.suppress(Exception):
                await worker.stop()
        if self.bus is not None:
            await self.bus.close()
        if self.health is not None:
            await self.health.stop()
        log.info("orchestra.stopped")


async def run_until_signal(
    orchestra: Orchestra, *, connect_wait_s: float = 0.0, on_started: Callable[[], object] | None = None
) -> None:
    """Start, then run until SIGINT/SIGTERM, then stop gracefully. ``on_started`` runs once every
    agent is up (streams provisioned, consumers bound).

    A signal that comes while the start still waits (for NATS, or for the streams to be
    provisioned) ends that wait: a container that never got ready still stops at once."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    starting = asyncio.create_task(orchestra.start(connect_wait_s=connect_wait_s))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # a failed start raises here
            if on_started is not None:
                on_started()
            await stopping
        else:
            log.info("orchestra.stopped_before_ready")
    finally:
        for task in (starting, stopping):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # its error is raised above
                await task
        await orchestra.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
