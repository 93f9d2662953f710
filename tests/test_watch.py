"""bus/watch.py against a real nats-server: the client's ordered feed names its consumers in its own
name space, delivers every message once and in order, and carries on after a consumer is lost."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.js.api import DeliverPolicy

from bus.runtime import Bus
from bus.watch import OrderedFeed
from contracts.subjects import CLIENT_CONSUMER_PREFIX, EVENTS_STREAM, ROUTES, event_subject
from tests.faults.helpers import fast_config, until
from tests.faults.servers import RestartableServer

pytestmark = pytest.mark.nats


@pytest.fixture
async def restartable(tmp_path: Path) -> AsyncIterator[tuple[RestartableServer, Bus]]:
    server = RestartableServer(tmp_path / "nats").start()
    bus = await Bus.connect(fast_config(server.url), name="watch-test", provision=True)
    try:
        yield server, bus
    finally:
        await bus.close(timeout_s=2)
        server.stop()


async def publish(bus: Bus, task: str, *bodies: str) -> None:
    for body in bodies:
        subject = event_subject("status.changed", task)
        await bus.publisher.publish_raw(subject, body.encode(), {"Nats-Msg-Id": f"{task}-{body}"})


async def take(feed: OrderedFeed, n: int) -> list[str]:
    return [(await feed.next(20)).data.decode() for _ in range(n)]


def test_no_agent_durable_is_in_the_client_name_space() -> None:
    durables = [d for route in ROUTES.values() for d, _ in route.consumers()]
    assert not any(d.startswith(CLIENT_CONSUMER_PREFIX) for d in durables)


async def test_feed_delivers_in_order_from_the_start_and_recreates_without_loss(restartable) -> None:
    """Invariant: every message on the subject once, in stream order, across a recreation of the
    consumer (what a gap triggers), which gets a fresh name in the client name space."""
    _, bus = restartable
    await publish(bus, "t1", "a", "b", "c")
    async with OrderedFeed(bus.nc, bus.js, EVENTS_STREAM, "orchestra.evt.status.changed.t1") as feed:
        first_name = feed.name
        assert first_name is not None and first_name.startswith(CLIENT_CONSUMER_PREFIX)
        assert await take(feed, 2) == ["a", "b"]
        feed._recreate_soon("test")  # as after a sequence gap
        await publish(bus, "t1", "d")
        assert await take(feed, 2) == ["c", "d"]
        await until(lambda: feed.recreated == 1, within=10, what="the recreation to finish")
        assert feed.name != first_name and feed.name.startswith(CLIENT_CONSUMER_PREFIX)  # type: ignore[union-attr]
        with pytest.raises(TimeoutError):
            await feed.next(0.5)


async def test_feed_from_now_resumes_after_a_server_crash(restartable) -> None:
    """Invariant: a feed of new messages misses none published while its (in-memory) consumer was
    lost to a server crash: the heartbeat stops, the feed recreates it from the next sequence."""
    server, bus = restartable
    await publish(bus, "t2", "old")
    feed = OrderedFeed(
        bus.nc,
        bus.js,
        EVENTS_STREAM,
        "orchestra.evt.status.changed.t2",
        deliver_policy=DeliverPolicy.NEW,
        heartbeat_s=0.5,
    )
    async with feed:
        await publish(bus, "t2", "new-1")
        assert await take(feed, 1) == ["new-1"]
        await server.restart(kill=True)

        async def published() -> bool:
            try:
                await publish(bus, "t2", "new-2", "new-3")  # a retry repeats ids: de-duplicated
            except Exception:
                return False
            return True

        await until(published, within=30, what="publishing after the restart")
        assert await take(feed, 2) == ["new-2", "new-3"]
        assert feed.recreated >= 1


async def test_feed_from_now_recreated_before_any_message_replays_nothing_older(restartable) -> None:
    """Invariant: a feed of new messages that loses its consumer before anything arrived resumes
    after the stream's last sequence at its start, not from the beginning of the stream."""
    _, bus = restartable
    await publish(bus, "t3", "before-1", "before-2")
    feed = OrderedFeed(
        bus.nc, bus.js, EVENTS_STREAM, "orchestra.evt.status.changed.t3", deliver_policy=DeliverPolicy.NEW
    )
    async with feed:
        feed._recreate_soon("test")
        await until(lambda: feed.recreated == 1, within=10, what="the recreation")
        await publish(bus, "t3", "after")
        assert await take(feed, 1) == ["after"]
        with pytest.raises(TimeoutError):
            await feed.next(0.5)
