"""Prometheus metrics: agents count what they handle and publish, and /metrics serves it."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agents.health import HealthServer
from bus.config import BusConfig
from bus.metrics import metrics_observer
from bus.runtime import Bus
from contracts import Envelope, EventType, Source, new_event, new_id
from contracts.payloads import KnowledgeNote
from contracts.subjects import event_filter, event_subject
from contracts.vocabulary import NoteKind
from tests.orchestra_fixtures import Running, copy_example, start_orchestra

pytestmark = pytest.mark.nats

Sample = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(port: int) -> tuple[str, Sample]:
    """GET /metrics: the text, and every sample keyed by (name, sorted labels)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    samples: Sample = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return text, samples


def value(samples: Sample, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
async def health() -> AsyncIterator[HealthServer]:
    server = HealthServer(lambda: True, host="127.0.0.1", port=0)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async for r in start_orchestra(tmp_path, agents=["architect", "knowledge"]):
        yield r


async def eventually(check: Callable[[], bool], timeout_s: float = 20.0) -> None:
    """Poll ``check`` (blocking, so in a thread) until it holds."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await asyncio.to_thread(check):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.1)


async def test_agents_count_handled_and_published_events_and_serve_them(
    running: Running, health: HealthServer
) -> None:
    _, before = await asyncio.to_thread(scrape, health.port)
    handled = ("orchestra_events_handled_total", "architect-task_requested", "task.requested")

    project = copy_example("fastapi-service", running.workspace)
    task_id = await running.client.submit("Containerize the Python FastAPI application", project)

    def architect_done() -> bool:
        _, now = scrape(health.port)
        published = value(
            now, "orchestra_events_published_total", agent="architect", event_type="requirement.issued"
        )
        base = value(
            before, "orchestra_events_published_total", agent="architect", event_type="requirement.issued"
        )
        return published > base

    await eventually(architect_done)
    await running.stored(task_id, until_terminal=False)
    text, after = await asyncio.to_thread(scrape, health.port)

    name, consumer, event_type = handled
    assert value(after, name, consumer=consumer, event_type=event_type) == (
        value(before, name, consumer=consumer, event_type=event_type) + 1
    )
    assert value(after, "orchestra_handler_seconds_count", consumer=consumer, event_type=event_type) >= 1
    assert 'orchestra_handler_seconds_bucket{consumer="architect-task_requested"' in text
    assert (
        value(after, "orchestra_events_published_total", agent="architect", event_type="status.changed") >= 2
    )
    # The knowledge subscriber (one durable for every event) stored the architect's events.
    assert value(after, name, consumer="knowledge", event_type="requirement.issued") >= 1
    assert ("orchestra_consumer_pending", (("consumer", "knowledge"),)) in after


async def test_failures_redeliveries_and_dead_letters_are_counted(bus: Bus, health: HealthServer) -> None:
    task_id = new_id()
    durable = f"metrics-{task_id}"
    config: BusConfig = bus.config
    calls: list[int] = []

    async def broken(event: Envelope) -> None:
        calls.append(1)
        raise ValueError("always")

    observer = metrics_observer(bus.publisher)
    await bus.consume(
        durable=durable,
        filter_subject=event_filter(EventType.KNOWLEDGE_NOTE, task_id),
        handler=broken,
        observer=observer,
    )
    await bus.js.publish(
        event_subject(EventType.KNOWLEDGE_NOTE, task_id),
        b"{not json",
        headers={"Nats-Msg-Id": f"bad-{task_id}"},
    )
    note = new_event(
        EventType.KNOWLEDGE_NOTE,
        KnowledgeNote(kind=NoteKind.STATUS, text="doomed", agent="test"),
        task_id=task_id,
        source=Source(agent="test", instance="t1"),
    )
    await bus.publish(note)

    def all_dead() -> bool:
        _, now = scrape(health.port)
        return value(now, "orchestra_events_dead_lettered_total", consumer=durable, cause="max_deliver") == 1

    await eventually(all_dead)
    _, samples = await asyncio.to_thread(scrape, health.port)
    assert len(calls) == config.max_deliver
    labels = {"consumer": durable, "event_type": "knowledge.note"}
    assert value(samples, "orchestra_events_failed_total", **labels) == config.max_deliver
    assert value(samples, "orchestra_events_redelivered_total", consumer=durable) == config.max_deliver - 1
    assert value(samples, "orchestra_events_dead_lettered_total", consumer=durable, cause="invalid") == 1
    assert value(samples, "orchestra_events_handled_total", **labels) == 0
    assert value(samples, "orchestra_events_published_total", agent="test", event_type="knowledge.note") >= 1
