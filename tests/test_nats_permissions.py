"""The deploy NATS configuration against a real nats-server: each agent can do its work and no more.

The server runs deploy/nats/nats-server.conf with the generated auth.conf (staged on loopback by
deploy.nats.local, random passwords in its environment). Clients use the real bus code (Bus,
provisioning, Consumer, Publisher, OrchestraClient) with the BusConfig an agent process builds:
its user, its password and its own reply inbox prefix.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js.api import StorageType, StreamConfig

from bus.client import OrchestraClient
from bus.config import BusConfig
from bus.connection import connect_options
from bus.errors import PublishFailed, Reject
from bus.provision import consumer_config, ensure_consumer
from bus.publisher import MSG_ID
from bus.runtime import Bus
from contracts import EventType, Source, new_event, new_id
from contracts.payloads import KnowledgeNote, StatusChanged
from contracts.subjects import (
    DLQ_STREAM,
    EVENTS_STREAM,
    ROUTES,
    RPC_KNOWLEDGE_SEARCH,
    TASKS_BUCKET,
    dlq_subject,
    event_subject,
    inbox_prefix,
)
from contracts.vocabulary import DeploymentState, NoteKind
from deploy.nats import local
from deploy.nats.render_auth import ADMIN, CLIENT, password_env

pytestmark = pytest.mark.nats

AGENTS = list(ROUTES)
PERMISSION = "permissions violation"


@pytest.fixture(scope="module")
def deploy_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[local.LocalNats, dict[str, str]]]:
    env = local.random_passwords()
    work = tmp_path_factory.mktemp("deploy-nats")
    server = local.single(work, env).start()
    yield server, env
    server.stop()
    shutil.rmtree(work, ignore_errors=True)


def config_for(deploy: tuple[local.LocalNats, dict[str, str]], user: str, **overrides: object) -> BusConfig:
    """The BusConfig an agent (or the client) builds from its environment."""
    server, env = deploy
    values: dict[str, object] = {
        "nats_url": server.url,
        "user": user,
        "password": env[password_env(user)],
        "inbox_prefix": inbox_prefix(user),
        "publish_timeout_s": 1.0,
        "publish_attempts": 1,
        "fetch_timeout_s": 0.2,
        "ack_wait_s": 5.0,
        "nak_delays_s": (0.05,),
    }
    values.update(overrides)
    return BusConfig(**values)  # type: ignore[arg-type]


class Errors:
    """The asynchronous -ERR lines the server sends a connection (permission violations)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def cb(self, exc: Exception) -> None:
        self.messages.append(str(exc))

    async def wait_for(self, fragment: str, timeout_s: float = 3.0) -> str:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            for message in self.messages:
                # nats-py lower-cases the server's -ERR text.
                if fragment.lower() in message.lower():
                    return message
            await asyncio.sleep(0.02)
        raise AssertionError(f"no error containing {fragment!r}; got {self.messages}")


async def watched(config: BusConfig) -> tuple[NATS, Errors]:
    """A connection with the agent's options whose errors the test can read."""
    errors = Errors()
    options = connect_options(config)
    options["error_cb"] = errors.cb
    return await nats.connect(**options), errors


@pytest.fixture
async def admin(deploy_nats: tuple[local.LocalNats, dict[str, str]]) -> AsyncIterator[Bus]:
    bus = await Bus.connect(config_for(deploy_nats, ADMIN))
    yield bus
    await bus.close(timeout_s=5)


async def denied_publish(nc: NATS, errors: Errors, subject: str) -> None:
    await nc.publish(subject, b"{}")
    await nc.flush()
    message = await errors.wait_for(f'Publish to "{subject}"')
    assert PERMISSION in message.lower()


# -- who may connect -------------------------------------------------------------------------


async def test_anonymous_and_wrong_password_are_refused(deploy_nats) -> None:
    server, _ = deploy_nats
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(server.url, allow_reconnect=False, connect_timeout=2)
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(server.url, user="qa", password="guess", allow_reconnect=False, connect_timeout=2)
    # One agent's password does not open another agent's user.
    _, env = deploy_nats
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await nats.connect(server.url, user="devops", password=env[password_env("qa")], allow_reconnect=False)


# -- what each agent may do --------------------------------------------------------------------


@pytest.mark.parametrize("agent", AGENTS)
async def test_agent_provisions_consumes_dead_letters_acks_and_publishes(deploy_nats, admin, agent) -> None:
    route = ROUTES[agent]
    config = config_for(deploy_nats, agent)
    task = f"perm-{agent}-{new_id()}"

    # Start-up: streams created or checked (DESIGN rule 7), durables created with their filter.
    bus = await Bus.connect(config, name=f"test:{agent}")
    try:
        (first_durable, first_filter), *others = route.consumers()
        rejected = asyncio.Event()

        async def reject(event) -> None:
            rejected.set()
            raise Reject("test")

        await bus.consume(durable=first_durable, filter_subject=first_filter, handler=reject)
        for durable, filter_subject in others:
            await ensure_consumer(bus.js, consumer_config(durable, filter_subject, config))

        # Something that is not an event reaches the durable: fetched, dead-lettered (own DLQ
        # subject, PubAck awaited), terminated (ack subject of its own durable).
        consumed_type = route.consumes[0]
        bad = await admin.publisher.publish_raw(
            event_subject(consumed_type, task), b"not json", {MSG_ID: new_id()}
        )
        letter = await wait_for_dead_letter(admin, first_durable, bad.seq)
        assert letter["consumer"] == first_durable

        # Its own event types: JetStream publish with PubAck.
        for event_type in route.publishes:
            ack = await bus.publisher.publish_raw(event_subject(event_type, task), b"{}", {MSG_ID: new_id()})
            assert ack.stream == EVENTS_STREAM
    finally:
        await bus.close(timeout_s=5)

    # Explicit ack, confirmed by the server, and the consumer's info (the lag KEDA scales on).
    bus = await Bus.connect(config, name=f"test:{agent}:ack")
    try:
        durable, filter_subject = route.consumers()[-1]
        msg_type = route.consumes[-1]
        await admin.publisher.publish_raw(event_subject(msg_type, task), b"x", {MSG_ID: new_id()})
        sub = await bus.js.pull_subscribe_bind(durable=durable, stream=EVENTS_STREAM)
        while True:
            msgs = await sub.fetch(64, timeout=2)
            for msg in msgs:
                await msg.ack_sync(timeout=2)
            info = await bus.js.consumer_info(EVENTS_STREAM, durable)
            if info.num_pending == 0:
                break
        assert info.num_ack_pending == 0
        assert info.config.filter_subject == filter_subject
    finally:
        await bus.close(timeout_s=5)


async def wait_for_dead_letter(admin: Bus, durable: str, stream_seq: int, timeout_s: float = 10.0) -> dict:
    import json

    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            msg = await admin.js.get_last_msg(DLQ_STREAM, dlq_subject(durable))
            letter = json.loads(msg.data)
            if letter["stream_seq"] >= stream_seq:
                return letter
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no dead letter of {durable} for seq {stream_seq}")
        await asyncio.sleep(0.1)


# -- what an agent may not do ------------------------------------------------------------------


@pytest.mark.parametrize("agent", AGENTS)
async def test_agent_cannot_publish_event_types_it_does_not_own(deploy_nats, admin, agent) -> None:
    foreign = [t for t in EventType if t not in ROUTES[agent].publishes]
    nc, errors = await watched(config_for(deploy_nats, agent))
    task = f"forged-{agent}-{new_id()}"
    try:
        for event_type in foreign:
            await denied_publish(nc, errors, event_subject(event_type, task))
    finally:
        await nc.close()
    info = await admin.js.stream_info(EVENTS_STREAM, subjects_filter=f"orchestra.evt.*.{task}")
    assert not info.state.subjects, "a forged event was stored"


async def test_qa_forging_a_status_gets_no_puback(deploy_nats) -> None:
    bus = await Bus.connect(config_for(deploy_nats, "qa"))
    try:
        status = new_event(
            EventType.STATUS_CHANGED,
            StatusChanged(state=DeploymentState.READY, agent="devops"),
            task_id=new_id(),
            source=Source(agent="devops", instance="forged"),
        )
        with pytest.raises(PublishFailed, match="no PubAck"):
            await bus.publish(status)
        with pytest.raises(PublishFailed, match="no PubAck"):
            await bus.publisher.publish_raw(
                event_subject(EventType.TASK_REQUESTED, new_id()), b"{}", {MSG_ID: new_id()}
            )
    finally:
        await bus.close(timeout_s=5)


async def test_agent_cannot_use_or_bend_another_agents_consumers(deploy_nats) -> None:
    nc, errors = await watched(config_for(deploy_nats, "qa"))
    devops_durable, devops_filter = ROUTES["devops"].consumers()[0]
    qa_durable, _ = ROUTES["qa"].consumers()[0]
    try:
        for subject in (
            # create or read devops' durable, fetch from it, ack or dead-letter for it
            f"$JS.API.CONSUMER.CREATE.{EVENTS_STREAM}.{devops_durable}.{devops_filter}",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{EVENTS_STREAM}.{devops_durable}",
            f"$JS.API.CONSUMER.MSG.NEXT.{EVENTS_STREAM}.{devops_durable}",
            f"$JS.ACK.{EVENTS_STREAM}.{devops_durable}.1.1.1.1.1",
            dlq_subject(devops_durable),
            # its own durable bent to a filter that reads everything
            f"$JS.API.CONSUMER.CREATE.{EVENTS_STREAM}.{qa_durable}.orchestra.evt.>",
            f"$JS.API.CONSUMER.CREATE.{EVENTS_STREAM}",
            # destroy or rewrite history, read devops' state (reading one event by sequence is
            # allowed: the publisher compares what a duplicate PubAck points at)
            f"$JS.API.STREAM.DELETE.{EVENTS_STREAM}",
            f"$JS.API.STREAM.PURGE.{EVENTS_STREAM}",
            f"$JS.API.CONSUMER.DELETE.{EVENTS_STREAM}.{devops_durable}",
            f"$JS.API.STREAM.MSG.DELETE.{EVENTS_STREAM}",
            f"$JS.API.CONSUMER.INFO.{EVENTS_STREAM}.{devops_durable}",
            f"$KV.{TASKS_BUCKET}.some-task",
            f"$JS.API.DIRECT.GET.KV_{TASKS_BUCKET}.$KV.{TASKS_BUCKET}.some-task",
            # answer the knowledge RPC, or reply into another agent's inbox
            RPC_KNOWLEDGE_SEARCH,
            f"{inbox_prefix('devops')}.forged",
        ):
            await denied_publish(nc, errors, subject)
    finally:
        await nc.close()
    # The real provisioning call for a foreign durable gets no answer at all.
    bus = await Bus.connect(config_for(deploy_nats, "qa"))
    try:
        js = bus.nc.jetstream(timeout=1)
        with pytest.raises(nats.errors.TimeoutError):
            await ensure_consumer(js, consumer_config(devops_durable, devops_filter, bus.config))
        with pytest.raises(nats.errors.TimeoutError):
            await js.add_stream(StreamConfig(name="QA_OWN", subjects=["qa.>"], storage=StorageType.FILE))
    finally:
        await bus.close(timeout_s=5)


@pytest.mark.parametrize("victim", ["devops", "credentials", "knowledge"])
async def test_agent_cannot_read_another_agents_replies(deploy_nats, victim) -> None:
    spy, errors = await watched(config_for(deploy_nats, "qa"))
    seen: list[str] = []

    async def on_msg(msg) -> None:
        seen.append(msg.subject)

    try:
        for subject in (f"{inbox_prefix(victim)}.>", "_INBOX.>", ">", "orchestra.evt.>"):
            await spy.subscribe(subject, cb=on_msg)
            await spy.flush()
            message = await errors.wait_for(f'Subscription to "{subject}"')
            assert PERMISSION in message.lower()
        # The victim talks to JetStream through its inbox; the spy hears nothing.
        bus = await Bus.connect(config_for(deploy_nats, victim))
        try:
            await bus.js.stream_info(EVENTS_STREAM)
            for event_type in ROUTES[victim].publishes[:1]:
                await bus.publisher.publish_raw(
                    event_subject(event_type, new_id()), b"{}", {MSG_ID: new_id()}
                )
        finally:
            await bus.close(timeout_s=5)
        await spy.flush()
        await asyncio.sleep(0.2)
        assert seen == []
    finally:
        await spy.close()


# -- the knowledge subscriber, devops' bucket, the client --------------------------------------


async def test_knowledge_consumes_everything_and_serves_rpc_to_the_client(deploy_nats) -> None:
    knowledge = await Bus.connect(config_for(deploy_nats, "knowledge"))
    client = await OrchestraClient.open(config_for(deploy_nats, CLIENT))
    task = f"note-{new_id()}"
    got: list = []
    arrived = asyncio.Event()

    async def store(events) -> None:
        got.extend(e for e in events if e.task_id == task)
        if got:
            arrived.set()

    async def search(body: dict) -> list[dict]:
        return [{"query": body["query"], "hits": [e.id for e in got]}]

    try:
        [(durable, filter_subject)] = ROUTES["knowledge"].consumers()
        await knowledge.consume(durable=durable, filter_subject=filter_subject, batch_handler=store)
        await knowledge.serve(RPC_KNOWLEDGE_SEARCH, search, queue="knowledge")
        note_id = await client.note("who decided R3", kind=NoteKind.DECISION, agent="person", task_id=task)
        await asyncio.wait_for(arrived.wait(), 10)
        result = await client.search("R3", timeout_s=5)
        assert result == [{"query": "R3", "hits": [note_id]}]
        # allow_responses lets knowledge answer a request, not publish where it likes.
        nc, errors = await watched(config_for(deploy_nats, "knowledge"))
        try:
            await denied_publish(nc, errors, f"{inbox_prefix(CLIENT)}.unsolicited")
            await denied_publish(nc, errors, event_subject(EventType.STATUS_CHANGED, task))
        finally:
            await nc.close()
    finally:
        await client.close()
        await knowledge.close(timeout_s=5)


async def test_devops_owns_the_task_bucket_and_reads_back_events(deploy_nats, admin) -> None:
    bus = await Bus.connect(config_for(deploy_nats, "devops"))
    try:
        kv = await bus.tasks_kv()
        key = f"t{new_id()}"
        revision = await kv.put(key, b'{"state": "received"}')
        await kv.update(key, b'{"state": "planning"}', last=revision)
        assert (await kv.get(key)).value == b'{"state": "planning"}'
        assert key in await kv.keys()
        await kv.purge(key)  # leave no foreign state for devops' deadline sweep
        ack = await bus.publisher.publish_raw(
            event_subject(EventType.ARTIFACT_SET_COMPLETED, key), b"{}", {MSG_ID: new_id()}
        )
        assert (await bus.js.get_msg(EVENTS_STREAM, ack.seq)).data == b"{}"
    finally:
        await bus.close(timeout_s=5)


@pytest.mark.parametrize("agent", [a for a in AGENTS if ROUTES[a].publishes])
async def test_agent_reads_what_a_duplicate_puback_points_at(deploy_nats, admin, agent) -> None:
    """Someone (here: admin) stored garbage under the id of an event the agent is about to publish:
    the agent reads the stored message, sees it is not its event, and stores its own under a fresh id."""
    bus = await Bus.connect(config_for(deploy_nats, agent))
    try:
        event = new_event(
            EventType.KNOWLEDGE_NOTE,
            KnowledgeNote(kind=NoteKind.EDIT, text="mine", agent=agent),
            task_id=new_id(),
            source=Source(agent=agent, instance="t"),
        )
        taken = await admin.publisher.publish_raw(event.subject(), b"garbage", {MSG_ID: event.id})
        ack = await bus.publish(event)
        assert ack.seq != taken.seq and not ack.duplicate
    finally:
        await bus.close(timeout_s=5)


async def test_devops_reads_the_consumers_of_the_agents_it_waits_for(deploy_nats, admin) -> None:
    from agents.devops.silence import conversation

    bus = await Bus.connect(config_for(deploy_nats, "devops"))
    try:
        for agent in ("credentials", "qa", "security"):
            durable, filter_subject = next(
                (d, f)
                for d, f in ROUTES[agent].consumers()
                if f.startswith(event_subject(conversation(agent).asked, ""))
            )
            await ensure_consumer(admin.js, consumer_config(durable, filter_subject, admin.config))
            assert (await bus.js.consumer_info(EVENTS_STREAM, durable)).name == durable
    finally:
        await bus.close(timeout_s=5)


async def test_client_submits_watches_and_nothing_else(deploy_nats) -> None:
    client = await OrchestraClient.open(config_for(deploy_nats, CLIENT))
    devops = await Bus.connect(config_for(deploy_nats, "devops"))
    try:
        task = await client.submit("Containerize the Python FastAPI application", "fastapi-service")
        status = new_event(
            EventType.STATUS_CHANGED,
            StatusChanged(state=DeploymentState.READY, agent="devops"),
            task_id=task,
            source=Source(agent="devops", instance="test"),
        )
        await devops.publish(status)
        seen = [e async for e in client.watch(task, idle_timeout_s=10)]
        assert [e.id for e in seen] == [status.id]
    finally:
        await devops.close(timeout_s=5)
        await client.close()
    nc, errors = await watched(config_for(deploy_nats, CLIENT))
    durable, filter_subject = ROUTES["architect"].consumers()[0]
    try:
        for subject in (
            event_subject(EventType.STATUS_CHANGED, "x"),
            event_subject(EventType.REQUIREMENT_ISSUED, "x"),
            f"$JS.API.CONSUMER.CREATE.{EVENTS_STREAM}.{durable}.{filter_subject}",
            f"$JS.API.CONSUMER.MSG.NEXT.{EVENTS_STREAM}.{durable}",
            f"$JS.API.STREAM.CREATE.{EVENTS_STREAM}",
            f"$JS.API.STREAM.UPDATE.{EVENTS_STREAM}",
            f"$KV.{TASKS_BUCKET}.x",
        ):
            await denied_publish(nc, errors, subject)
    finally:
        await nc.close()


async def test_a_client_without_the_streams_cannot_create_them(tmp_path: Path) -> None:
    """Only agents and admin provision: a client that comes first cannot submit (nothing is
    stored) instead of creating streams; once an agent provisioned them it can."""
    from bus.errors import PublishFailed

    env = local.random_passwords()
    server = local.single(tmp_path, env).start()
    try:
        config = config_for((server, env), CLIENT, publish_timeout_s=0.5, publish_attempts=2)
        client = await OrchestraClient.open(config)
        with pytest.raises(PublishFailed):
            await client.submit("Deploy to Kubernetes", "p")
        agent = await Bus.connect(config_for((server, env), "architect"))
        await agent.close(timeout_s=5)
        assert await client.submit("Deploy to Kubernetes", "p")
        await client.close()
    finally:
        server.stop()


async def test_every_agent_with_its_own_user_takes_a_task_to_ready(deploy_nats, tmp_path: Path) -> None:
    """The real agents, each on its own connection and user, run a whole task: nothing they need
    is missing from the allow-lists."""
    from agents.runner import Orchestra
    from agents.settings import AgentSettings
    from tests.orchestra_fixtures import copy_example

    workspace = tmp_path / "workspace"
    workspace.mkdir()
    settings = AgentSettings(workspace=workspace, knowledge_db=tmp_path / "k.sqlite3", sweep_interval_s=0.3)
    agents = [
        Orchestra([name], config_for(deploy_nats, name, publish_attempts=5, publish_timeout_s=5.0), settings)
        for name in AGENTS
    ]
    client = None
    try:
        for orchestra in agents:
            await orchestra.start()
        client = await OrchestraClient.open(config_for(deploy_nats, CLIENT, publish_timeout_s=5.0))
        project = copy_example("fastapi-service", workspace)
        task = await client.submit("Containerize the Python FastAPI application", project, output_dir="out")
        statuses = [e async for e in client.watch(task, idle_timeout_s=120)]
        states = [e.payload.state.value for e in statuses]
        assert states[-1] == "ready", [e.payload.reason for e in statuses]
        assert (workspace / "out" / "Dockerfile").is_file()
        hits = await client.search("", task=task, timeout_s=10)
        assert hits, "the knowledge subscriber stored nothing it can find"
    finally:
        if client is not None:
            await client.close()
        for orchestra in reversed(agents):
            await orchestra.stop()
