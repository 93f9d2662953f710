"""Faults at the bus level, against real nats-server processes: crashes, duplicates, poison, slowness.

The invariant everywhere: every event the server acknowledged is handled, and is in the knowledge
store exactly once; nothing the server did not acknowledge is reported as published.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from agents.runner import Orchestra
from agents.settings import AgentSettings
from bus.client import OrchestraClient
from bus.errors import PublishFailed, StoreFull
from bus.provision import ensure_streams
from bus.runtime import Bus
from contracts import Envelope, EventType, encode, new_id
from contracts.ids import derived_id
from contracts.subjects import EVENTS_STREAM, event_filter, event_subject
from tests.faults.helpers import (
    assert_exactly_once,
    dead_letters,
    fast_config,
    note,
    store_count,
    store_rows,
    stream_count,
    stream_ids,
    until,
)
from tests.faults.samples import sample
from tests.faults.servers import RestartableServer

pytestmark = pytest.mark.nats


@pytest.fixture
def server(tmp_path: Path) -> AsyncIterator[RestartableServer]:
    srv = RestartableServer(tmp_path / "nats").start()
    yield srv
    srv.stop()


async def start_knowledge(tmp_path: Path, url: str, **config: object) -> Orchestra:
    settings = AgentSettings(workspace=tmp_path, knowledge_db=tmp_path / "knowledge.sqlite3")
    orchestra = Orchestra(["knowledge"], fast_config(url, **config), settings, provision=True)
    await orchestra.start()
    return orchestra


async def publish_until_acked(bus: Bus, event: Envelope, counter: Counter[str]) -> None:
    """A publisher that keeps retrying (same event, same id) until the server acknowledges."""
    while True:
        try:
            await bus.publish(event)
            return
        except PublishFailed:
            counter["publish_failed"] += 1
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
async def test_server_stopped_mid_stream_loses_nothing(
    tmp_path: Path, server: RestartableServer, kill: bool
) -> None:
    """Invariant: the server stopped (SIGTERM) or crashed (SIGKILL) while events are published and
    consumed, restarted on the same store: every acknowledged event is handled by the consumer and
    is in the knowledge store exactly once; the stream holds each id once (dedupe survives restart)."""
    knowledge = await start_knowledge(tmp_path, server.url)
    bus = await Bus.connect(fast_config(server.url), name="producer", provision=True)
    task, total = new_id(), 240
    acked: list[str] = []
    handled: Counter[str] = Counter()
    stats: Counter[str] = Counter()

    async def record(event: Envelope) -> None:
        handled[event.id] += 1

    await bus.consume(
        durable="faults-restart", filter_subject=event_filter(EventType.KNOWLEDGE_NOTE, task), handler=record
    )

    async def produce() -> None:
        for i in range(total):
            event = note(task, f"event {i}")
            await publish_until_acked(bus, event, stats)
            acked.append(event.id)

    producer = asyncio.create_task(produce())
    try:
        await until(lambda: len(acked) >= total // 3, within=30, what="a third published")
        await server.restart(kill=kill, outage_s=1.0)
        await asyncio.wait_for(producer, 90)
        await until(lambda: set(handled) >= set(acked), within=60, what="every acked event handled")
        db = knowledge.settings.knowledge_db
        await until(lambda: store_count(db) >= total, within=60, what="every event stored")
        ids = await stream_ids(bus.js)
        assert sorted(ids) == sorted(acked)
        assert_exactly_once(ids, store_rows(db))
        # A crash may redeliver what was handled but not yet acked: at-least-once, never lost.
        print(
            f"restart kill={kill}: {total} acked, {stats['publish_failed']} publish retries, "
            f"{sum(handled.values()) - len(handled)} redeliveries"
        )
    finally:
        producer.cancel()
        await bus.close(timeout_s=2)
        await knowledge.stop()


async def test_same_event_published_twice_is_one_event(tmp_path: Path, server: RestartableServer) -> None:
    """Invariant: one event id is one event, however often it is published: twice in a row, from
    two connections at once, and again after a server restart (within the duplicate window), the
    stream holds it once and the knowledge store has one row."""
    knowledge = await start_knowledge(tmp_path, server.url)
    first = await Bus.connect(fast_config(server.url), name="first", provision=True)
    second = await Bus.connect(fast_config(server.url), name="second", provision=True)
    try:
        task = new_id()
        events = [note(task, f"twice {i}") for i in range(20)]
        acks = await asyncio.gather(*(b.publish(e) for e in events for b in (first, second, first)))
        assert sum(not a.duplicate for a in acks) == len(events)
        await first.close(timeout_s=2)
        await server.restart(kill=True)
        first = await Bus.connect(fast_config(server.url), name="first-again", wait_s=10, provision=True)
        again = [await first.publish(e) for e in events]
        assert all(a.duplicate for a in again), "dedupe state lost across a crash"
        db = knowledge.settings.knowledge_db
        await until(lambda: store_count(db) >= len(events), within=30, what="events stored")
        # Let any redelivery after the crash arrive, then check nothing doubled.
        await until(_acked_everything(first, "knowledge"), within=30, what="knowledge caught up")
        ids = await stream_ids(first.js)
        assert sorted(ids) == sorted(e.id for e in events)
        assert_exactly_once(ids, store_rows(db))
    finally:
        await first.close(timeout_s=2)
        await second.close(timeout_s=2)
        await knowledge.stop()


def _acked_everything(bus: Bus, durable: str):
    async def check() -> bool:
        info = await bus.js.consumer_info(EVENTS_STREAM, durable)
        return info.num_pending == 0 and info.num_ack_pending == 0

    return check


async def test_poison_message_is_dead_lettered_and_does_not_stall_the_rest(
    tmp_path: Path, server: RestartableServer
) -> None:
    """Invariant: a message whose handler always fails is dead-lettered after max_deliver with the
    last error as its reason (and raw garbage at once, with the decode error); every message behind
    it is handled meanwhile, exactly once, and nothing stays pending."""
    bus = await Bus.connect(fast_config(server.url, max_deliver=3), name="poison", provision=True)
    try:
        task = new_id()
        poison = note(task, "poison")
        handled: Counter[str] = Counter()
        good_done: list[float] = []

        async def handler(event: Envelope) -> None:
            handled[event.id] += 1
            if event.id == poison.id:
                raise ValueError("cannot digest this one")
            good_done.append(asyncio.get_running_loop().time())

        durable = f"poison-{task}"
        await bus.consume(
            durable=durable, filter_subject=event_filter(EventType.KNOWLEDGE_NOTE, task), handler=handler
        )
        subject = poison.subject()
        await bus.publisher.publish_raw(subject, b"\x00\xffnot an event", {"Nats-Msg-Id": f"raw-{task}"})
        await bus.publish(poison)
        goods = [note(task, f"good {i}") for i in range(30)]
        for event in goods:
            await bus.publish(event)
        await until(lambda: len(good_done) == len(goods), within=30, what="good messages handled")
        letters = await until(
            lambda: _letters(bus, durable, 2), within=30, what="two dead letters (garbage and poison)"
        )
        by_reason = {("max_deliver" in letter.reason): letter for letter in letters}
        assert "ValueError: cannot digest this one" in by_reason[True].reason
        assert (
            by_reason[True].deliveries == 3
            and by_reason[True].data == poison.model_dump_json(exclude_none=True).encode()
        )
        assert "not valid JSON" in by_reason[False].reason
        assert by_reason[False].data == b"\x00\xffnot an event"
        assert handled[poison.id] == 3
        assert all(handled[e.id] == 1 for e in goods)
        await until(_acked_everything(bus, durable), within=10, what="nothing pending")
    finally:
        await bus.close(timeout_s=2)


async def _letters(bus: Bus, durable: str, n: int):
    found = await dead_letters(bus.js, durable)
    return found if len(found) >= n else None


@pytest.mark.parametrize("keepalive", [True, False], ids=["in_progress", "control-no-in_progress"])
async def test_slow_handler_is_not_handled_twice_by_two_replicas(
    server: RestartableServer, keepalive: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Invariant: a handler three times slower than ack_wait, with two replicas bound to one durable,
    runs once per event, because in_progress() keeps its message. The control run switches
    in_progress off and must see redeliveries (so the test can tell the difference)."""
    if not keepalive:
        from nats.aio.msg import Msg

        async def silent(self: Msg) -> None:
            return None

        monkeypatch.setattr(Msg, "in_progress", silent)
    # ack_wait 2 s: the heartbeat (every ack_wait/3) keeps its margin on a starved CI machine.
    config = fast_config(server.url, ack_wait_s=2.0, max_deliver=5)
    replicas = [await Bus.connect(config, name=f"replica-{i}", provision=True) for i in range(2)]
    try:
        task = new_id()
        runs: Counter[str] = Counter()
        finished: Counter[str] = Counter()

        async def slow(event: Envelope) -> None:
            runs[event.id] += 1
            await asyncio.sleep(3 * config.ack_wait_s + 0.2)
            finished[event.id] += 1

        for bus in replicas:
            await bus.consume(
                durable=f"slow-{task}",
                filter_subject=event_filter(EventType.KNOWLEDGE_NOTE, task),
                handler=slow,
            )
        events = [note(task, f"slow {i}") for i in range(4)]
        for event in events:
            await replicas[0].publish(event)
        if keepalive:
            await until(
                lambda: set(finished) == {e.id for e in events}, within=30, what="every slow event finished"
            )
            info = await replicas[0].js.consumer_info(EVENTS_STREAM, f"slow-{task}")
            assert all(runs[e.id] == 1 for e in events), runs
            assert info.num_redelivered == 0
        else:
            # Without in_progress the server hands a still-running message to a second handler.
            await until(lambda: any(n > 1 for n in runs.values()), within=20, what="a second handling")
    finally:
        for bus in replicas:
            await bus.close(timeout_s=6 if keepalive else 0.2)


async def test_stream_full_fails_loudly_holds_work_and_resumes_when_space_returns(
    tmp_path: Path, server: RestartableServer
) -> None:
    """Invariant: with the EVENTS stream at its max_bytes, publishing raises StoreFull (a
    PublishFailed) and stores nothing; a consumer whose handler must publish a follow-up keeps its
    message (retried in place: no delivery spent, no dead letter); once the limit is raised every
    input has its one follow-up, and the knowledge store holds exactly what the stream holds."""
    small = fast_config(server.url, max_bytes=16_000)
    knowledge = await start_knowledge(tmp_path, server.url, max_bytes=16_000)
    bus = await Bus.connect(small, name="filler", provision=True)
    try:
        source, relayed = new_id(), new_id()
        attempts: Counter[str] = Counter()

        async def relay(event: Envelope) -> None:
            attempts[event.id] += 1
            follow = note(relayed, f"follow-up of {event.id}")
            await bus.publish(follow.model_copy(update={"id": derived_id(event.id, "relay")}))

        acked: list[str] = []
        with pytest.raises(PublishFailed) as refused:
            for i in range(1000):
                event = note(source, f"filling {i} " + "x" * 300)
                await bus.publish(event)
                acked.append(event.id)
        assert isinstance(refused.value, StoreFull) and "maximum bytes exceeded" in str(refused.value)
        assert 0 < len(acked) < 1000
        # The relay starts on a full stream: each input is retried in place, no delivery spent.
        durable = f"relay-{source}"
        await bus.consume(
            durable=durable, filter_subject=event_filter(EventType.KNOWLEDGE_NOTE, source), handler=relay
        )
        await until(lambda: any(n >= 3 for n in attempts.values()), within=20, what="relay retrying")
        info = await bus.js.consumer_info(EVENTS_STREAM, durable)
        assert info.num_ack_pending >= 1 and info.num_redelivered == 0
        assert await dead_letters(bus.js) == []
        inputs = event_filter(EventType.KNOWLEDGE_NOTE, source)
        assert await stream_count(bus.js, subject=inputs) == len(acked)

        # Space returns: the operator raises the limit.
        await ensure_streams(bus.js, fast_config(server.url))
        await until(
            lambda: stream_count(bus.js, subject=event_filter(EventType.KNOWLEDGE_NOTE, relayed)),
            within=5,
            what="first follow-up",
        )
        await until(
            lambda: _count_is(bus, event_filter(EventType.KNOWLEDGE_NOTE, relayed), len(acked)),
            within=30,
            what="one follow-up per acknowledged input",
        )
        await until(_acked_everything(bus, durable), within=10, what="relay caught up")
        db = knowledge.settings.knowledge_db
        total = 2 * len(acked)
        await until(lambda: store_count(db) >= total, within=30, what="everything stored")
        assert_exactly_once(await stream_ids(bus.js), store_rows(db))
        assert await dead_letters(bus.js) == []
        print(f"stream full after {len(acked)} events; each got its one follow-up once space returned")
    finally:
        await bus.close(timeout_s=2)
        await knowledge.stop()


async def _count_is(bus: Bus, subject: str, n: int) -> bool:
    return await stream_count(bus.js, subject=subject) == n


async def test_knowledge_store_that_cannot_write_holds_events_until_it_can(
    tmp_path: Path, server: RestartableServer
) -> None:
    """Invariant: when SQLite cannot write (database full: PRAGMA max_page_count at its current
    size), the knowledge subscriber acks nothing, dead-letters nothing and spends no deliveries;
    when it can write again every event lands exactly once."""
    knowledge = await start_knowledge(tmp_path, server.url)
    bus = await Bus.connect(fast_config(server.url), name="writer", provision=True)
    worker = knowledge.workers[0]
    db_conn = worker.store._db  # the subscriber's own connection: the fault goes where it writes
    try:
        task = new_id()
        await bus.publish(note(task, "before the disk fills"))
        db = knowledge.settings.knowledge_db
        await until(lambda: store_count(db) == 1, within=10, what="first event stored")
        async with db_conn.execute("PRAGMA page_count") as cur:
            pages = (await cur.fetchone())[0]
        await db_conn.execute(f"PRAGMA max_page_count = {pages}")
        events = [note(task, f"while full {i} " + "y" * 2000) for i in range(40)]
        for event in events:
            await bus.publish(event)
        # The batch it holds is retried in place; nothing more is fetched meanwhile.
        await until(lambda: worker.failed >= 3, within=20, what="writes refused three times")
        assert store_count(db) == 1
        info = await bus.js.consumer_info(EVENTS_STREAM, "knowledge")
        assert info.num_ack_pending + info.num_pending == len(events)
        assert info.num_redelivered == 0
        assert await dead_letters(bus.js) == []

        await db_conn.execute("PRAGMA max_page_count = 1073741823")
        await until(lambda: store_count(db) == 1 + len(events), within=20, what="held events stored")
        await until(_acked_everything(bus, "knowledge"), within=10, what="knowledge acked all")
        assert_exactly_once(await stream_ids(bus.js), store_rows(db))
        assert await dead_letters(bus.js) == []
    finally:
        await bus.close(timeout_s=2)
        await knowledge.stop()


async def test_outage_longer_than_a_reconnect_budget_is_survived(
    tmp_path: Path, server: RestartableServer
) -> None:
    """Invariant: the server down longer than a bounded reconnect budget allows: a plain nats-py
    client with that budget (3 attempts x 0.3 s) gives up and closes, ours reconnects (attempts
    unbounded after the first connection) and carries on: an event published after the outage is
    consumed and stored; nothing acknowledged before it is lost."""
    knowledge = await start_knowledge(tmp_path, server.url)
    bus = await Bus.connect(fast_config(server.url), name="survivor", provision=True)
    control = await nats.connect(
        server.url, max_reconnect_attempts=3, reconnect_time_wait=0.3, connect_timeout=1
    )
    try:
        task = new_id()
        seen: list[str] = []

        async def record(event: Envelope) -> None:
            seen.append(event.id)

        await bus.consume(
            durable=f"outage-{task}",
            filter_subject=event_filter(EventType.KNOWLEDGE_NOTE, task),
            handler=record,
        )
        before = note(task, "before the outage")
        await bus.publish(before)
        await until(lambda: before.id in seen, within=10, what="pre-outage event")
        await server.down(kill=True)
        await until(lambda: control.is_closed, within=20, what="bounded client giving up")
        assert not bus.nc.is_closed and not knowledge.bus.nc.is_closed
        await server.up()
        await until(lambda: bus.nc.is_connected, within=20, what="reconnected")
        after = note(task, "after the outage")
        await bus.publish(after)
        await until(lambda: after.id in seen, within=20, what="post-outage event consumed")
        db = knowledge.settings.knowledge_db
        await until(lambda: store_count(db) == 2, within=20, what="both stored")
        assert_exactly_once(await stream_ids(bus.js), store_rows(db))
    finally:
        if not control.is_closed:
            await control.close()
        await bus.close(timeout_s=2)
        await knowledge.stop()


@pytest.mark.parametrize("durable", ["knowledge", "lane"], ids=["batch-consumer", "lane-consumer"])
async def test_a_bug_in_the_consumer_machinery_does_not_stop_consumption(
    tmp_path: Path, server: RestartableServer, monkeypatch: pytest.MonkeyPatch, durable: str
) -> None:
    """Invariant: an unexpected exception inside the consumer itself (here: building a dead letter
    fails once) costs that message one redelivery, never the consumer: the events behind it are
    still handled, and the message is dead-lettered on its next delivery."""
    import bus.consumer

    task = new_id()
    target = "knowledge" if durable == "knowledge" else f"lane-{task}"
    real = bus.consumer.make_dead_letter
    calls: list[int] = []

    def flaky(**kwargs):  # type: ignore[no-untyped-def]
        if kwargs["consumer"] == target:
            calls.append(1)
            if len(calls) == 1:
                raise RuntimeError("injected: dead letter could not be built")
        return real(**kwargs)

    monkeypatch.setattr(bus.consumer, "make_dead_letter", flaky)
    knowledge = await start_knowledge(tmp_path, server.url)
    bus_ = await Bus.connect(fast_config(server.url, ack_wait_s=1.0), name="machinery", provision=True)
    try:
        seen: list[str] = []

        async def record(event: Envelope) -> None:
            seen.append(event.id)

        if target != "knowledge":
            await bus_.consume(
                durable=target, filter_subject=event_filter(EventType.KNOWLEDGE_NOTE, task), handler=record
            )
        subject = note(task).subject()
        await bus_.publisher.publish_raw(subject, b"garbage", {"Nats-Msg-Id": f"garbage-{task}"})
        good = [note(task, f"after the garbage {i}") for i in range(5)]
        for event in good:
            await bus_.publish(event)
        db = knowledge.settings.knowledge_db
        await until(lambda: store_count(db) == len(good), within=20, what="events behind it stored")
        if target != "knowledge":
            await until(lambda: set(seen) == {e.id for e in good}, within=20, what="events behind it handled")
        letters = await until(lambda: _letters(bus_, target, 1), within=20, what="garbage dead-lettered")
        assert letters[0].data == b"garbage" and letters[0].deliveries == 2
    finally:
        await bus_.close(timeout_s=2)
        await knowledge.stop()


async def test_an_event_on_a_subject_not_its_own_is_dead_lettered_and_not_watched(
    tmp_path: Path, server: RestartableServer
) -> None:
    """Invariant: a valid event published on a subject that is not its own (another task's status
    subject, another type's subject: misrouted or spoofed) is handled by nobody: the consumers
    dead-letter it naming the subject, the knowledge store does not keep it, and watching the
    victim task does not see it (a spoofed "ready" cannot end someone else's task)."""
    knowledge = await start_knowledge(tmp_path, server.url)
    client = await OrchestraClient.open(fast_config(server.url))
    try:
        victim, other = new_id(), new_id()
        spoof = sample(EventType.STATUS_CHANGED, other)  # a terminal "ready" of another task
        await client.bus.publisher.publish_raw(
            event_subject(EventType.STATUS_CHANGED, victim), encode(spoof), {"Nats-Msg-Id": spoof.id}
        )
        wrong_type = sample(EventType.KNOWLEDGE_NOTE, victim)
        await client.bus.publisher.publish_raw(
            event_subject(EventType.REPORT_QA, victim), encode(wrong_type), {"Nats-Msg-Id": wrong_type.id}
        )
        real = sample(EventType.STATUS_CHANGED, victim)
        await client.bus.publish(real)
        watched = [e async for e in client.watch(victim, idle_timeout_s=10)]
        assert [e.id for e in watched] == [real.id]
        letters = await until(
            lambda: _letters(client.bus, "knowledge", 2), within=10, what="two dead letters"
        )
        assert all("on subject orchestra.evt." in letter.reason for letter in letters)
        db = knowledge.settings.knowledge_db
        await until(lambda: store_count(db) == 1, within=10, what="the real event stored")
        assert [r[0] for r in store_rows(db)] == [real.id]
    finally:
        await client.close()
        await knowledge.stop()


async def test_server_store_full_fails_loudly_and_resumes_with_room(tmp_path: Path) -> None:
    """Invariant: with the server's JetStream store at its max_store, publishing raises StoreFull
    (insufficient resources) and the refused events are not in the stream; what was acknowledged
    before is kept and stored; restarted with room on the same store, publishing and storing resume."""
    srv = RestartableServer(tmp_path / "nats", max_store="512KB").start()
    try:
        knowledge = await start_knowledge(tmp_path, srv.url, max_bytes=-1)
        bus = await Bus.connect(fast_config(srv.url, max_bytes=-1), name="filler", provision=True)
        task, acked = new_id(), []
        try:
            with pytest.raises(StoreFull, match="insufficient resources"):
                for i in range(5000):
                    event = note(task, f"filling the disk {i} " + "z" * 400)
                    await bus.publish(event)
                    acked.append(event.id)
            assert acked and sorted(await stream_ids(bus.js)) == sorted(acked)
        finally:
            await bus.close(timeout_s=2)
            await knowledge.stop()
        srv.server.max_store = "64MB"  # the operator gives it room
        await srv.restart(kill=False)
        knowledge = await start_knowledge(tmp_path, srv.url, max_bytes=-1)
        bus = await Bus.connect(fast_config(srv.url, max_bytes=-1), name="after", wait_s=10, provision=True)
        try:
            more = [note(task, f"after the disk grew {i}") for i in range(20)]
            for event in more:
                await bus.publish(event)
            db = knowledge.settings.knowledge_db
            total = len(acked) + len(more)
            await until(lambda: store_count(db) >= total, within=30, what="everything stored")
            assert_exactly_once(await stream_ids(bus.js), store_rows(db))
            print(f"server store full after {len(acked)} events; {len(more)} more after restart with room")
        finally:
            await bus.close(timeout_s=2)
            await knowledge.stop()
    finally:
        srv.stop()
