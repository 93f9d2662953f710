"""Shared fixtures: one real nats-server per test session (free port, temp store dir)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bus.config import BusConfig
from bus.embedded import EmbeddedServer
from bus.runtime import Bus

ROOT = Path(__file__).resolve().parent.parent
# Agents started as processes by tests read their settings from the environment: no smoke boot
# (an install and a start per task) unless a test asks for one.
os.environ.setdefault("ORCHESTRA_SMOKE_BOOT", "false")
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(store_dir=tmp_path_factory.mktemp("nats-store"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bus_config(nats_server: EmbeddedServer) -> BusConfig:
    """Short timings so redelivery and dead-letter paths run in test time."""
    return BusConfig(
        nats_url=nats_server.url,
        ack_wait_s=2.0,
        max_deliver=3,
        nak_delays_s=(0.05, 0.1, 0.2),
        fetch_timeout_s=0.2,
        publish_timeout_s=2.0,
    )


@pytest.fixture
async def bus(bus_config: BusConfig) -> AsyncIterator[Bus]:
    b = await Bus.connect(bus_config, name="test", provision=True)
    yield b
    await b.close(timeout_s=5)


def checkov_path() -> str | None:
    candidates = [os.environ.get("ORCHESTRA_CHECKOV"), str(ROOT / ".tools/checkov/bin/checkov")]
    return next((c for c in candidates if c and Path(c).exists()), None)
