"""The consumer keeps pull requests ahead of need: a steady trickle costs no request per message."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.msg import Msg

from bus.runtime import Bus
from contracts import Envelope, EventType, Source, new_event, new_id
from contracts.payloads import KnowledgeNote
from contracts.subjects import EVENTS_STREAM, event_filter
from contracts.vocabulary import NoteKind

pytestmark = pytest.mark.nats


def note(task_id: str, i: int) -> Envelope:
    return new_event(
        EventType.KNOWLEDGE_NOTE,
        KnowledgeNote(kind=NoteKind.STATUS, text=f"trickle {i}", agent="test"),
        task_id=task_id,
        source=Source(agent="test", instance="t1"),
    )


async def test_a_trickle_of_events_needs_a_pull_request_per_half_window_not_per_event(bus: Bus) -> None:
    task_id = new_id()
    durable = f"trickle-{task_id}"
    requests: list[bytes] = []

    async def count(msg: Msg) -> None:
        requests.append(msg.data)

    # Pull requests are plain NATS messages to the consumer's MSG.NEXT subject: count them.
    monitor = await bus.nc.subscribe(f"$JS.API.CONSUMER.MSG.NEXT.{EVENTS_STREAM}.{durable}", cb=count)
    handled = asyncio.Queue[str]()

    async def handler(event: Envelope) -> None:
        await handled.put(event.id)

    await bus.consume(
        durable=durable,
        filter_subject=event_filter(EventType.KNOWLEDGE_NOTE, task_id),
        handler=handler,
        concurrency=32,
    )
    n = 96
    for i in range(n):  # one at a time: each is handled before the next is published
        event = note(task_id, i)
        await bus.publish(event)
        assert await asyncio.wait_for(handled.get(), 5) == event.id
    await bus.nc.flush()
    await monitor.unsubscribe()

    # A fetch per batch would be a request per event here; half a window (16) per request, plus
    # the requests that expire while idle (fetch_timeout_s), is what pull-ahead costs.
    assert len(requests) < n / 3, len(requests)
    info = await bus.js.consumer_info(EVENTS_STREAM, durable)
    assert info.num_pending == 0
