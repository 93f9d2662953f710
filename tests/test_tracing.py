"""Trace context travels in NATS headers: one task is one trace across every agent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import structlog
from nats.js.api import DeliverPolicy
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from bus.runtime import Bus
from bus.tracing import TRACEPARENT, parse_traceparent, span_id_for, trace_id_for, traceparent
from contracts import Envelope, EventType, Source, decode, new_event, new_id
from contracts.payloads import KnowledgeNote
from contracts.subjects import event_filter
from contracts.vocabulary import NoteKind
from tests.orchestra_fixtures import Running, copy_example, start_orchestra

pytestmark = pytest.mark.nats

TASK_TEXT = "Containerize the Python FastAPI application"


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async for r in start_orchestra(tmp_path):
        yield r


def event_filter_any(task_id: str) -> str:
    """Every event type of one task (each type is two subject tokens, e.g. ``status.changed``)."""
    return f"orchestra.evt.*.*.{task_id}"


async def raw_messages(bus: Bus, task_id: str) -> list[tuple[dict[str, str], Envelope]]:
    """Every message of a task as stored in the events stream: (headers, event), in stream order."""
    sub = await bus.js.subscribe(
        event_filter_any(task_id), ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    out: list[tuple[dict[str, str], Envelope]] = []
    try:
        while True:
            msg = await sub.next_msg(timeout=10)
            out.append((dict(msg.headers or {}), decode(msg.data)))
            if msg.metadata.num_pending == 0:
                return out
    finally:
        await sub.unsubscribe()


async def wait_for_status(running: Running, task_id: str, timeout_s: float = 120.0) -> None:
    async for _ in running.client.watch(task_id, idle_timeout_s=timeout_s):
        pass


async def test_every_event_of_a_task_carries_the_task_trace_across_agents(running: Running) -> None:
    project = copy_example("fastapi-service", running.workspace)
    task_id = await running.client.submit(TASK_TEXT, project, output_dir="out")
    await wait_for_status(running, task_id)
    await asyncio.sleep(0.5)  # the terminal status's own follow-ups (notes) land just after it

    messages = await raw_messages(running.client.bus, task_id)
    agents = {event.source.agent for _, event in messages}
    assert {"client", "architect", "devops", "credentials"} <= agents, agents
    expected = trace_id_for(task_id)
    for headers, event in messages:
        parsed = parse_traceparent(headers.get(TRACEPARENT))
        assert parsed is not None, (event.type, headers)
        assert parsed == (expected, span_id_for(event.id)), (event.type, event.source.agent)


async def test_an_outer_trace_of_the_submitter_is_continued_by_every_agent(running: Running) -> None:
    """A client that submits inside its own trace sees the whole task in that trace."""
    outer = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    project = copy_example("fastapi-service", running.workspace)
    with trace.use_span(NonRecordingSpan(outer)):
        task_id = await running.client.submit(TASK_TEXT, project, output_dir="out")
    await wait_for_status(running, task_id)

    messages = await raw_messages(running.client.bus, task_id)
    assert len({event.source.agent for _, event in messages}) >= 3
    trace_ids = {parse_traceparent(h[TRACEPARENT])[0] for h, _ in messages}  # type: ignore[index]
    assert trace_ids == {format(outer.trace_id, "032x")}


async def test_a_handler_runs_with_its_trace_bound_for_logs_and_emits_in_it(bus: Bus) -> None:
    task_id = new_id()
    seen: list[dict[str, object]] = []
    stamped: list[str] = []
    done = asyncio.Event()

    async def handler(event: Envelope) -> None:
        seen.append(structlog.contextvars.get_contextvars())
        # What the publisher would stamp on an event emitted by this handler for another id.
        stamped.append(traceparent("some-other-task", new_id()))
        done.set()

    await bus.consume(
        durable=f"trace-{task_id}",
        filter_subject=event_filter(EventType.KNOWLEDGE_NOTE, task_id),
        handler=handler,
    )
    event = new_event(
        EventType.KNOWLEDGE_NOTE,
        KnowledgeNote(kind=NoteKind.STATUS, text="traced", agent="test"),
        task_id=task_id,
        source=Source(agent="test", instance="t1"),
    )
    await bus.publish(event)
    await asyncio.wait_for(done.wait(), 10)

    assert seen[0]["trace_id"] == trace_id_for(task_id)
    assert seen[0]["span_id"] == span_id_for(event.id)
    # Inside the handler the incoming trace wins over the id-derived one.
    assert parse_traceparent(stamped[0])[0] == trace_id_for(task_id)  # type: ignore[index]
    # Nothing leaks out of the handler's context.
    assert "trace_id" not in structlog.contextvars.get_contextvars()


async def test_with_an_sdk_each_handler_is_a_consumer_span_child_of_the_incoming_context(bus: Bus) -> None:
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    export = pytest.importorskip("opentelemetry.sdk.trace.export")
    in_memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    exporter = in_memory.InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, sdk_trace.TracerProvider):
        provider = sdk_trace.TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    await asyncio.sleep(1.1)  # the bus asks "is an SDK configured?" again at most once a second

    task_id = new_id()
    done = asyncio.Event()
    inner: list[str] = []

    async def handler(event: Envelope) -> None:
        inner.append(traceparent(event.task_id, new_id()))
        done.set()

    durable = f"span-{task_id}"
    await bus.consume(
        durable=durable, filter_subject=event_filter(EventType.KNOWLEDGE_NOTE, task_id), handler=handler
    )
    event = new_event(
        EventType.KNOWLEDGE_NOTE,
        KnowledgeNote(kind=NoteKind.STATUS, text="spanned", agent="test"),
        task_id=task_id,
        source=Source(agent="test", instance="t1"),
    )
    await bus.publish(event)
    await asyncio.wait_for(done.wait(), 10)

    spans = [s for s in exporter.get_finished_spans() if s.name == f"consume {durable}"]
    assert len(spans) == 1
    span = spans[0]
    assert format(span.context.trace_id, "032x") == trace_id_for(task_id)
    assert format(span.parent.span_id, "016x") == span_id_for(event.id)
    # What the handler emits names the consumer span as its parent.
    assert parse_traceparent(inner[0]) == (trace_id_for(task_id), format(span.context.span_id, "016x"))
