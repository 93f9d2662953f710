"""Unit tests run agents on the stub broker (bus/stub): no nats-server, time driven by its clock.

``broker``: a fresh StubBroker with short delivery settings. ``agents(...)``: the named agents of
the registry started on it, each on its own connection, as ``orchestra agent NAME`` would run them;
stopped (consumers first, then the agent, then the connection) when the test ends. ``client``: a bus
for the test to publish on, as people and other agents do.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from agents.runner import agent_class
from agents.settings import AgentSettings
from agents.worker import Worker
from bus.config import BusConfig
from bus.runtime import Bus
from bus.stub import StubBroker
from contracts import Envelope, EventType, Source, new_event
from contracts.payloads import Model

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ID_KEY = "unit-test-id-key-0123456789"


def config() -> BusConfig:
    """Short back-offs and a small max_deliver, as the real-server suites use."""
    return BusConfig(
        nats_url="stub://memory",
        ack_wait_s=5.0,
        max_deliver=3,
        nak_delays_s=(0.05, 0.1, 0.2),
        fetch_timeout_s=0.2,
    )


@pytest.fixture(autouse=True)
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit tests never reach a NATS server: connecting or starting one fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a unit test tried to reach a NATS server: use the stub broker")

    monkeypatch.setattr("nats.aio.client.Client.connect", refuse)
    monkeypatch.setattr("bus.embedded.EmbeddedServer.start", refuse)


@pytest.fixture
async def broker() -> AsyncIterator[StubBroker]:
    async with StubBroker(config()) as stub:
        yield stub


@pytest.fixture
async def client(broker: StubBroker) -> AsyncIterator[Bus]:
    bus = await broker.connect("client")
    yield bus
    await bus.close(timeout_s=2)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "workspace"
    root.mkdir()
    return root


def copy_example(name: str, workspace: Path) -> str:
    """A copy of examples/<name> in the workspace (agents write into it); its path there."""
    shutil.copytree(EXAMPLES / name, workspace / name, ignore=shutil.ignore_patterns("__pycache__", ".venv"))
    return name


@pytest.fixture
def settings(workspace: Path, tmp_path: Path) -> AgentSettings:
    """Agent settings for unit tests: in-process validators only, no smoke boot, no checkov,
    a sweeper that looks at deadlines every few milliseconds."""
    return AgentSettings(
        workspace=workspace,
        knowledge_db=tmp_path / "knowledge.sqlite3",
        validators="fast",
        smoke_boot=False,
        security_checkov=False,
        sweep_interval_s=0.005,
        id_key=ID_KEY,
    )


@pytest.fixture
async def agents(broker: StubBroker, settings: AgentSettings) -> AsyncIterator[Callable[..., Any]]:
    """``await agents("devops", "credentials")`` starts those agents; they stop after the test."""
    started: list[tuple[Worker, Bus]] = []

    async def start(*names: str, **overrides: Any) -> dict[str, Worker]:
        agent_settings = settings.model_copy(update=overrides) if overrides else settings
        workers = {}
        for name in names:
            bus = await broker.connect(name, id_key=ID_KEY.encode())
            worker = agent_class(name)(bus, agent_settings)
            await worker.start()
            started.append((worker, bus))
            workers[name] = worker
        return workers

    yield start
    for worker, bus in reversed(started):
        for consumer in bus.consumers:
            await consumer.stop(2)
        with contextlib.suppress(Exception):
            await worker.stop()
        await bus.close(timeout_s=2)


def event(
    event_type: EventType, payload: Model, task_id: str, *, by: str, caused_by: Envelope | None = None
) -> Envelope:
    """An event as agent ``by`` (or a client) would publish it."""
    return new_event(
        event_type,
        payload,
        task_id=task_id,
        source=Source(agent=by, instance="unit"),
        causation_id=caused_by.id if caused_by else None,
    )
