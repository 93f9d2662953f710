"""Every agent process registers as a NATS micro service, so `$SRV.PING|INFO|STATS` (and
`nats micro ls`, and `orchestra agents`) list what is running, where, and how it is doing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from nats.aio.client import Client as NATS
from nats.micro import add_service
from nats.micro.request import Request
from nats.micro.service import EndpointStats, Service, ServiceConfig

from agents.worker import Worker
from contracts.subjects import SERVICE_PREFIX, agent_status_subject


def package_version() -> str:
    try:
        return version("orchestra-bus")
    except PackageNotFoundError:
        return "0.0.0"


def worker_stats(worker: Worker) -> dict[str, Any]:
    return {
        "agent": worker.name,
        "instance": worker.settings.instance,
        "handled": worker.handled,
        "failed": worker.failed,
        "uptime_s": round(time.monotonic() - worker.started_at, 1),
    }


async def register(nc: NATS, worker: Worker) -> Service:
    """Register ``worker`` as service ``orchestra-<agent>`` with a `status` endpoint."""

    async def status(request: Request) -> None:
        await request.respond(json.dumps(worker_stats(worker)).encode())

    def stats(_endpoint: EndpointStats) -> dict[str, Any]:
        return worker_stats(worker)

    service = await add_service(
        nc,
        ServiceConfig(
            name=f"{SERVICE_PREFIX}-{worker.name}",
            version=package_version(),
            description=f"orchestra {worker.name} agent",
            metadata={"agent": worker.name, "instance": worker.settings.instance},
            stats_handler=stats,
        ),
    )
    await service.add_endpoint(name="status", subject=agent_status_subject(worker.name), handler=status)
    return service


async def discover(nc: NATS, *, wait_s: float = 0.5) -> list[dict[str, Any]]:
    """Scatter `$SRV.STATS` and gather every orchestra agent's answer for ``wait_s`` seconds."""
    inbox = nc.new_inbox()
    replies: list[dict[str, Any]] = []

    async def on_reply(msg: Any) -> None:
        with contextlib.suppress(ValueError):
            replies.append(json.loads(msg.data))

    sub = await nc.subscribe(inbox, cb=on_reply)
    await nc.publish("$SRV.STATS", b"", reply=inbox)
    await nc.flush()
    await asyncio.sleep(wait_s)
    await sub.unsubscribe()
    agents = []
    for reply in replies:
        if not str(reply.get("name", "")).startswith(f"{SERVICE_PREFIX}-"):
            continue
        data = next((e.get("data") for e in reply.get("endpoints") or [] if e.get("data")), None) or {}
        agents.append(
            {
                "name": data.get("agent", reply["name"].removeprefix(f"{SERVICE_PREFIX}-")),
                "instance": data.get("instance", reply.get("id")),
                "id": reply.get("id"),
                "version": reply.get("version"),
                "started": reply.get("started"),
                "uptime_s": data.get("uptime_s"),
                "handled": data.get("handled", 0),
                "failed": data.get("failed", 0),
            }
        )
    return sorted(agents, key=lambda a: (a["name"], str(a["instance"])))
