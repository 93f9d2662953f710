"""The bus against a real nats-server: dedupe, ack, redelivery, dead letters, request/reply."""

from __future__ import annotations

import asyncio
import json

import pytest

from bus.deadletter import DeadLetter
from bus.errors import IdTaken
from bus.runtime import Bus
from contracts import EventType, Source, decode, new_event, new_id
from contracts.payloads import KnowledgeNote
from contracts.subjects import DLQ_STREAM, EVENTS_STREAM, dlq_subject, event_filter, event_subject
from contracts.vocabulary import NoteKind

pytestmark = pytest.mark.nats

SRC = Source(agent="test", instance="t1")


def note(task_id: str, text: str = "hello") -> object:
    return new_event(
        EventType.KNOWLEDGE_NOTE,
        KnowledgeNote(kind=NoteKind.EDIT, text=text, agent="test"),
        task_id=task_id,
        source=SRC,
    )


async def collect(bus: Bus, durable: str, task_id: str, handler=None, n: int = 1, wait_s: float = 10.0):
    got: list = []
    done = asyncio.Event()

    async def default(event):
        got.append(event)
        if len(got) >= n:
            done.set()

    await bus.consume(
        durable=durable,
        filter_subject=event_filter(EventType.KNOWLEDGE_NOTE, task_id),
        handler=handler or default,
    )
    if handler is None:
        await asyncio.wait_for(done.wait(), wait_s)
    return got


async def test_publish_same_id_twice_is_stored_once(bus: Bus) -> None:
    task = new_id()
    event = note(task)
    first = await bus.publish(event)
    second = await bus.publish(event)
    assert not first.duplicate
    assert second.duplicate
    assert second.seq == first.seq
    info = await bus.js.stream_info(
        EVENTS_STREAM, subjects_filter=event_subject(EventType.KNOWLEDGE_NOTE, task)
    )
    assert info.state.subjects == {event_subject(EventType.KNOWLEDGE_NOTE, task): 1}


async def test_handler_that_raises_is_redelivered_then_acked(bus: Bus) -> None:
    task = new_id()
    attempts: list[int] = []
    done = asyncio.Event()

    async def flaky(event) -> None:
        attempts.append(1)
        if len(attempts) < 2:
            raise RuntimeError("transient")
        done.set()

    await collect(bus, f"flaky-{task}", task, handler=flaky)
    await bus.publish(note(task))
    await asyncio.wait_for(done.wait(), 10)
    assert len(attempts) == 2
    await asyncio.sleep(0.3)
    info = await bus.js.consumer_info(EVENTS_STREAM, f"flaky-{task}")
    assert info.num_ack_pending == 0 and info.num_pending == 0


async def test_invalid_payload_is_dead_lettered_and_next_message_processed(bus: Bus) -> None:
    task = new_id()
    subject = event_subject(EventType.KNOWLEDGE_NOTE, task)
    await bus.js.publish(subject, b"{not json", headers={"Nats-Msg-Id": f"bad-{task}"})
    good = note(task, "after the poison")
    await bus.publish(good)
    got = await collect(bus, f"poison-{task}", task)
    assert [e.id for e in got] == [good.id]

    dlq = await bus.js.pull_subscribe(dlq_subject(f"poison-{task}"), stream=DLQ_STREAM)
    msgs = await dlq.fetch(1, timeout=5)
    letter = DeadLetter.model_validate_json(msgs[0].data)
    assert letter.data == b"{not json"
    assert "not valid JSON" in letter.reason
    assert letter.consumer == f"poison-{task}"


async def test_handler_failing_every_time_ends_in_dead_letter(bus: Bus) -> None:
    task = new_id()
    calls: list[int] = []

    async def broken(event) -> None:
        calls.append(1)
        raise ValueError("always")

    await collect(bus, f"broken-{task}", task, handler=broken)
    await bus.publish(note(task))
    dlq = await bus.js.pull_subscribe(dlq_subject(f"broken-{task}"), stream=DLQ_STREAM)
    msgs = await dlq.fetch(1, timeout=10)
    letter = DeadLetter.model_validate_json(msgs[0].data)
    assert "max_deliver" in letter.reason and "ValueError: always" in letter.reason
    assert len(calls) == bus.config.max_deliver


async def test_request_reply_answers_and_reports_errors(bus: Bus) -> None:
    subject = f"orchestra.rpc.test.{new_id()}"

    async def echo(body):
        if body.get("boom"):
            raise ValueError("bad request")
        return {"echo": body["x"]}

    await bus.serve(subject, echo)
    assert await bus.request(subject, {"x": 1}) == {"echo": 1}
    from bus.errors import RequestFailed

    with pytest.raises(RequestFailed, match="bad request"):
        await bus.request(subject, {"boom": True})
    raw = await bus.nc.request(subject, b"[1,2]", timeout=2)
    assert json.loads(raw.data)["ok"] is False


async def test_a_duplicate_pub_ack_for_someone_elses_event_is_not_taken_as_ours(bus: Bus) -> None:
    """Invariant: after ``publish`` returns, the PubAck's sequence holds *this* event. Someone took
    its id first (other bytes under the same Nats-Msg-Id): the event is stored under a fresh id
    derived from it (a redelivered handler derives the same one and de-duplicates), or, for a
    caller that asks so, IdTaken is raised."""
    task = new_id()
    mine = note(task, "the real follow-up")
    squatter = await bus.publisher.publish_raw(
        event_subject(EventType.KNOWLEDGE_NOTE, task), b"garbage", {"Nats-Msg-Id": mine.id}
    )
    ack = await bus.publish(mine)
    assert not ack.duplicate and ack.seq != squatter.seq
    stored = decode((await bus.js.get_msg(EVENTS_STREAM, ack.seq)).data)
    assert stored.id != mine.id and stored.payload == mine.payload
    again = await bus.publish(mine)  # the handler redelivered: the same fresh id, de-duplicated
    assert again.duplicate and again.seq == ack.seq
    with pytest.raises(IdTaken, match=mine.id):
        await bus.publisher.publish(mine, taken="raise")


async def test_publishing_to_a_stream_that_was_never_provisioned_says_so(tmp_path) -> None:
    """A "no responders" answer is how a cluster answers while its stream has no leader (a node lost), so
    the publisher keeps retrying it within its time budget; but when the stream does not exist at
    all the retries can never succeed, and the error says what to do instead of "no PubAck"."""
    from bus.config import BusConfig
    from bus.embedded import EmbeddedServer
    from bus.errors import PublishFailed

    server = EmbeddedServer(store_dir=tmp_path / "nats").start()
    try:
        bare = await Bus.connect(BusConfig(nats_url=server.url, publish_timeout_s=5, publish_attempts=5))
        try:
            event = new_event(
                EventType.KNOWLEDGE_NOTE,
                KnowledgeNote(kind=NoteKind.EDIT, text="x", agent="test"),
                task_id=new_id(),
                source=Source(agent="test", instance="t"),
            )
            with pytest.raises(PublishFailed, match="not provisioned"):
                await bare.publish(event)
        finally:
            await bare.close(timeout_s=5)
    finally:
        server.stop()
