"""The stub broker keeps the server's promises the bus relies on, seen through the bus's own code:
de-duplication within the window, redelivery until max_deliver and then a dead letter, ack after
the handler, redelivery after ack_wait, KV revisions, request/reply, max_payload."""

from __future__ import annotations

import asyncio

import pytest
from nats.js.errors import KeyWrongLastSequenceError

from agents.lifecycle import StateConflict, TaskState, TaskStore
from bus.errors import Deferred, PublishFailed, Reject, RequestFailed
from bus.publisher import MSG_ID
from bus.runtime import Bus
from bus.stub import StubBroker
from contracts import Envelope, EventType, encode, new_id
from contracts.payloads import KnowledgeNote, RequirementIssued
from contracts.subjects import EVENTS_STREAM, event_filter, event_subject
from contracts.vocabulary import DeploymentState, NoteKind, Target
from tests.unit.conftest import config, event

NOTES = event_filter(EventType.KNOWLEDGE_NOTE)


def note(text: str, task_id: str = "t1") -> Envelope:
    return event(
        EventType.KNOWLEDGE_NOTE, KnowledgeNote(kind=NoteKind.EDIT, text=text, agent="x"), task_id, by="x"
    )


async def test_an_id_is_stored_once_within_the_duplicate_window_and_again_after_it(
    broker: StubBroker, client: Bus
) -> None:
    first = note("once")
    ack = await client.publish(first)
    again = await client.publish(first)
    assert (again.seq, again.duplicate) == (ack.seq, True)
    assert [e.id for e in broker.events()] == [first.id]
    broker.advance(broker.config.duplicate_window_s + 1)
    later = await client.publisher.publish_raw(first.subject(), encode(first), {MSG_ID: first.id})
    assert later.seq == ack.seq + 1 and not later.duplicate


async def test_an_event_whose_id_someone_took_is_published_under_a_fresh_one(
    broker: StubBroker, client: Bus
) -> None:
    ours = note("ours")
    await client.publisher.publish_raw(ours.subject(), b"garbage", {MSG_ID: ours.id})
    ack = await client.publish(ours)
    stored = broker.events()
    assert len(stored) == 1 and stored[0].id != ours.id and stored[0].payload == ours.payload
    assert ack.seq == 2


async def test_a_failing_handler_is_retried_until_max_deliver_then_dead_lettered(
    broker: StubBroker, client: Bus
) -> None:
    calls: list[str] = []

    async def handler(e: Envelope) -> None:
        calls.append(e.id)
        if e.payload.text == "always fails" or calls.count(e.id) == 1:
            raise RuntimeError("boom")

    await client.consume(durable="unit", filter_subject=NOTES, handler=handler)
    bad, flaky = note("always fails"), note("fails once")
    await client.publish(bad)
    await client.publish(flaky)
    await broker.run_until_idle()
    assert calls.count(bad.id) == broker.config.max_deliver and calls.count(flaky.id) == 2
    [letter] = broker.dead_letters("unit")
    assert letter.deliveries == 3 and "(max_deliver)" in letter.reason and "boom" in letter.reason
    state = broker.consumer("unit")
    assert not state.pending and not state.redeliver and state.ack_floor() == 2


async def test_a_rejected_event_and_bytes_that_are_no_event_are_dead_lettered_at_once(
    broker: StubBroker, client: Bus
) -> None:
    async def handler(e: Envelope) -> None:
        raise Reject("not for us")

    await client.consume(durable="unit", filter_subject=NOTES, handler=handler)
    await client.publish(note("rejected"))
    await client.publisher.publish_raw(
        event_subject(EventType.KNOWLEDGE_NOTE, "t1"), b"{nope", {MSG_ID: new_id()}
    )
    await broker.run_until_idle()
    reasons = sorted(d.reason for d in broker.dead_letters("unit"))
    assert len(reasons) == 2 and reasons[1] == "rejected by unit: not for us"
    assert all(d.deliveries == 1 for d in broker.dead_letters("unit"))


async def test_the_ack_follows_the_handler_and_an_unacked_message_comes_back_after_ack_wait(
    broker: StubBroker, client: Bus
) -> None:
    release = asyncio.Event()
    deliveries: list[int] = []

    async def handler(e: Envelope) -> None:
        deliveries.append(broker.consumer("unit").counts.get(1, 0))
        await release.wait()

    await client.consume(durable="unit", filter_subject=NOTES, handler=handler)
    await client.publish(note("slow"))
    with pytest.raises(TimeoutError, match="unit: 1 unacknowledged"):
        await broker.run_until_idle(timeout_s=0.3)
    assert broker.consumer("unit").pending  # in the handler: not acknowledged yet
    broker.advance(broker.config.ack_wait_s + 1)  # no progress reported for a whole ack_wait
    await broker.wait_for(lambda: len(deliveries) == 2)
    release.set()
    await broker.run_until_idle()
    assert deliveries == [1, 2] and not broker.consumer("unit").pending


async def test_a_long_handler_keeps_its_message_in_progress() -> None:
    """The consumer's heartbeat (+WPI every ack_wait/3) pushes the server's ack deadline on: time
    that passes while the handler works does not redeliver the message to another replica."""
    async with StubBroker(config().model_copy(update={"ack_wait_s": 0.3})) as broker:
        bus = await broker.connect("slow")
        release, calls = asyncio.Event(), []

        async def handler(e: Envelope) -> None:
            calls.append(e.id)
            await release.wait()

        await bus.consume(durable="unit", filter_subject=NOTES, handler=handler)
        await bus.publish(note("slow"))
        await broker.wait_for(lambda: calls)
        first_deadline = broker.consumer("unit").pending[1].ack_by
        broker.advance(0.2)
        await broker.wait_for(lambda: broker.consumer("unit").pending[1].ack_by > first_deadline)
        broker.advance(0.2)  # past the first deadline, within the one the heartbeat set
        release.set()
        await broker.run_until_idle()
        assert len(calls) == 1 and broker.consumer("unit").num_redelivered == 0
        await bus.close(timeout_s=2)


async def test_a_deferred_event_waits_in_the_stream_not_in_a_lane(broker: StubBroker, client: Bus) -> None:
    seen: list[float] = []

    async def handler(e: Envelope) -> None:
        seen.append(broker.clock.time())
        if len(seen) < 3:
            raise Deferred("too early", within_s=30)

    await client.consume(durable="unit", filter_subject=NOTES, handler=handler)
    await client.publish(note("early"))
    await broker.run_until_idle()  # the clock jumps over the nak delays
    assert len(seen) == 3 and not broker.dead_letters()
    assert seen[2] - seen[0] >= 30 / 7  # the delays spread the wait over the deliveries allowed


async def test_kv_revisions_refuse_a_stale_write(broker: StubBroker, client: Bus) -> None:
    kv = await client.tasks_kv()
    revision = await kv.create("task", b"1")
    with pytest.raises(KeyWrongLastSequenceError):
        await kv.create("task", b"again")
    await kv.update("task", b"2", last=revision)
    with pytest.raises(KeyWrongLastSequenceError):
        await kv.update("task", b"3", last=revision)
    assert broker.kv() == {"task": b"2"} and await kv.keys() == ["task"]

    store = TaskStore(kv)
    state = TaskState(
        task_id="t2",
        state=DeploymentState.PLANNING,
        requirement=RequirementIssued(request="r", project="p", targets=[Target.DOCKER]),
        requirement_event="e1",
        last_event="e1",
    )
    assert await store.create(state) and not await store.create(state)
    _, read = await store.get("t2")
    await store.update(state, read)
    with pytest.raises(StateConflict):
        await store.update(state, read)


async def test_request_reply_and_no_responders(broker: StubBroker, client: Bus) -> None:
    async def echo(body: dict) -> dict:
        if body.get("fail"):
            raise ValueError("bad request")
        return {"echo": body}

    with pytest.raises(RequestFailed, match="no answer"):
        await client.request("orchestra.rpc.unit.echo", {})
    await client.serve("orchestra.rpc.unit.echo", echo)
    assert await client.request("orchestra.rpc.unit.echo", {"a": 1}) == {"echo": {"a": 1}}
    with pytest.raises(RequestFailed, match="ValueError: bad request"):
        await client.request("orchestra.rpc.unit.echo", {"fail": True})


async def test_a_message_over_max_payload_is_refused(client: Bus) -> None:
    with pytest.raises(PublishFailed, match="max_payload"):
        await client.publisher.publish_raw(event_subject(EventType.KNOWLEDGE_NOTE, "t"), b"x" * (2 << 20), {})


async def test_a_stream_read_and_consumer_info_answer_like_the_server(
    broker: StubBroker, client: Bus
) -> None:
    async def handler(e: Envelope) -> None:
        return None

    first, second = note("a", "t9"), note("b", "t9")
    await client.publish(first)
    await client.publish(second)
    assert (await client.first_event(first.subject())).id == first.id
    await client.consume(durable="unit", filter_subject=NOTES, handler=handler)
    await broker.run_until_idle()
    info = await client.js.consumer_info(EVENTS_STREAM, "unit")
    assert (info.delivered.stream_seq, info.ack_floor.stream_seq, info.num_pending) == (2, 2, 0)
    assert info.delivered.last_active == broker.clock.now()
