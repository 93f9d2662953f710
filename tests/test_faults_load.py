"""Load: hundreds of concurrent tasks, two processes of every worker agent sharing each durable.

Reports tasks per second. The bus, the agents and the knowledge store are what is under load, so
the validators are the cheapest real ones: QA in its "fast" mode (in-process checks only; none of
them applies to the Docker target's files, so QA still receives, reports and is waited for, but
validates nothing), security's own rules (no checkov). ORCHESTRA_LOAD_TASKS and
ORCHESTRA_LOAD_TARGETS (e.g. ``k8s``: Kubernetes manifests, schema-checked in process) change that.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bus.client import OrchestraClient
from bus.embedded import EmbeddedServer
from contracts.subjects import ROUTES
from contracts.vocabulary import Target
from tests.faults.flow import TEXT, check_invariants, copy_fastapi
from tests.faults.helpers import fast_config, stream_count
from tests.faults.procs import Fleet

pytestmark = [pytest.mark.nats, pytest.mark.slow]

TASKS = int(os.environ.get("ORCHESTRA_LOAD_TASKS", "500"))
TARGETS = [Target(t) for t in os.environ.get("ORCHESTRA_LOAD_TARGETS", "docker").split(",")]
WORKERS = ["architect", "devops", "credentials", "qa", "security"]
LOAD_ENV = {
    "ORCHESTRA_VALIDATORS": "fast",
    "ORCHESTRA_SECURITY_CHECKOV": "false",
    # A starved 2-core machine must not mistake a queued handler for a dead one.
    "ORCHESTRA_ACK_WAIT_S": "15",
    "ORCHESTRA_CREDENTIALS_DEADLINE_S": "240",
    "ORCHESTRA_VALIDATION_DEADLINE_S": "240",
}


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedServer, Fleet]]:
    server = EmbeddedServer(store_dir=tmp_path / "nats").start()
    fleet = Fleet(server.url, tmp_path, env=LOAD_ENV)
    try:
        yield server, fleet
    finally:
        await fleet.stop()
        server.stop()


async def test_hundreds_of_concurrent_tasks_with_two_replicas_each(
    tmp_path: Path, fleet: tuple[EmbeddedServer, Fleet]
) -> None:
    """Invariant: TASKS tasks submitted at once, two processes of every worker agent (one durable
    per event type, shared) and one knowledge subscriber: every task ends ready exactly once with one
    artifact set, no event is handled successfully twice (handled counts across both replicas equal
    the stream's messages per durable), the store holds every event once, nothing dead-lettered."""
    server, procs = fleet
    project = copy_fastapi(tmp_path / "workspace")
    await procs.start(WORKERS, replicas=2)
    await procs.start(["knowledge"])
    client = await OrchestraClient.open(fast_config(server.url, publish_timeout_s=10))
    db = tmp_path / "knowledge.sqlite3"
    try:
        started = time.monotonic()
        tasks = await asyncio.gather(
            *(client.submit(TEXT, project, targets=TARGETS, output_dir=f"out/{i}") for i in range(TASKS))
        )
        counts = await check_invariants(client.bus.js, db, tasks)
        elapsed = time.monotonic() - started

        handled: Counter[str] = Counter()
        redelivered = failed = 0.0
        for proc in procs.procs:
            for (name, labels), value in (await asyncio.to_thread(proc.metrics)).items():
                consumer = dict(labels).get("consumer", "")
                if name == "orchestra_events_handled_total":
                    handled[consumer] += int(value)
                elif name == "orchestra_events_redelivered_total":
                    redelivered += value
                elif name == "orchestra_events_failed_total":
                    failed += value
        for agent in WORKERS:
            for durable, subject in ROUTES[agent].consumers():
                assert handled[durable] == await stream_count(client.bus.js, subject=subject), durable
        rate = len(tasks) / elapsed
        print(
            f"\nload: {len(tasks)} tasks in {elapsed:.1f}s = {rate:.1f} tasks/s "
            f"({counts['events']} events; {int(redelivered)} redeliveries, {int(failed)} handler retries)"
        )
    finally:
        await client.close()
