"""The deploy NATS configuration against a real nats-server: each user can do its work and no more.

The server runs deploy/nats/nats-server.conf with the generated auth.conf (staged on loopback by
deploy.nats.local, random passwords in its environment). Clients use the real bus code (Bus,
provisioning, Consumer, Publisher, OrchestraClient) with the BusConfig an agent process builds:
its user, its password and its own reply inbox prefix. The attacks are the JetStream API calls an
attacker sends by hand (bodies included); what they would have changed is read back as admin.
"""

from __future__ import annotations

import asyncio
import json
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
from bus.provision import consumer_config, ensure_consumer, ensure_provisioned
from bus.publisher import MSG_ID
from bus.runtime import Bus
from contracts import EventType, Source, new_event, new_id
from contracts.payloads import KnowledgeNote, StatusChanged
from contracts.subjects import (
    CLIENT_CONSUMER_PREFIX,
    DLQ_STREAM,
    EVENTS_STREAM,
    ROUTES,
    RPC_KNOWLEDGE_SEARCH,
    TASKS_BUCKET,
    TASKS_BUCKET_STREAM,
    dlq_subject,
    event_filter,
    event_subject,
    inbox_prefix,
    status_filter,
)
from contracts.vocabulary import DeploymentState, NoteKind
from deploy.nats import local
from deploy.nats.render_auth import ADMIN, CLIENT, PROVISIONER, agent_durables, password_env

pytestmark = pytest.mark.nats

AGENTS = list(ROUTES)
PERMISSION = "permissions violation"
API = "$JS.API"
STREAMS = (EVENTS_STREAM, DLQ_STREAM, TASKS_BUCKET_STREAM)


async def provision_as(deploy: tuple[local.LocalNats, dict[str, str]], user: str = PROVISIONER) -> None:
    """What `orchestra provision` does, as ``user`` (the deployment's provisioning identity)."""
    bus = await Bus.connect(config_for(deploy, user, publish_timeout_s=5.0), provision=True)
    await bus.close(timeout_s=5)


@pytest.fixture(scope="module")
def deploy_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[local.LocalNats, dict[str, str]]]:
    env = local.random_passwords()
    work = tmp_path_factory.mktemp("deploy-nats")
    server = local.single(work, env).start()
    asyncio.run(provision_as((server, env)))
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


async def api_call(nc: NATS, errors: Errors, subject: str, body: dict | None = None) -> dict | None:
    """A JetStream API request as an attacker sends it: the server's answer, or None when the
    server refused to let it through (a permissions violation for exactly that subject)."""
    try:
        msg = await nc.request(subject, json.dumps(body or {}).encode(), timeout=1.5)
    except nats.errors.TimeoutError:
        message = await errors.wait_for(f'Publish to "{subject}"')
        assert PERMISSION in message.lower()
        return None
    return json.loads(msg.data)


def consumer_body(name: str, filter_subject: str, *, durable: bool = False) -> dict:
    """A consumer create/update request that bends ``name`` to ``filter_subject``."""
    config = {
        "name": name,
        "filter_subject": filter_subject,
        "ack_policy": "explicit",
        "deliver_policy": "all",
    }
    if durable:
        config = {**config, "durable_name": name}
    return {"stream_name": EVENTS_STREAM, "config": config}


async def snapshot(admin: Bus) -> dict[str, dict]:
    """What the attacks aim at, read as admin: each stream's config and message count, and each
    agent durable's filter."""
    state: dict[str, dict] = {}
    for stream in STREAMS:
        info = json.loads((await admin.nc.request(f"{API}.STREAM.INFO.{stream}", b"", timeout=5)).data)
        state[stream] = {"config": info["config"], "messages": info["state"]["messages"]}
    for durable in agent_durables():
        try:
            info = await admin.js.consumer_info(EVENTS_STREAM, durable)
            state[durable] = {"filter": info.config.filter_subject}
        except nats.js.errors.NotFoundError:
            state[durable] = {}
    return state


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
async def test_agent_binds_consumes_dead_letters_acks_and_publishes(deploy_nats, admin, agent) -> None:
    route = ROUTES[agent]
    config = config_for(deploy_nats, agent)
    task = f"perm-{agent}-{new_id()}"

    # Start-up: streams looked up (never created), durables created with their filter.
    bus = await Bus.connect(config, name=f"test:{agent}")
    try:
        await bus.wait_provisioned(wait_s=5)
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


# -- consumers and streams: who may create, rewrite, empty or seal them ------------------------


async def test_client_cannot_rewrite_an_agent_durable_and_the_agent_keeps_its_tasks(
    deploy_nats, admin
) -> None:
    """Issue 10 item 1: the client sent CONSUMER.CREATE with the architect's durable name and another
    filter; the server took it as an update and the architect never saw another task. Each way of
    naming that durable is refused now, and a task submitted afterwards still reaches it."""
    architect = await Bus.connect(config_for(deploy_nats, "architect"))
    durable, filter_subject = ROUTES["architect"].consumers()[0]
    nc, errors = await watched(config_for(deploy_nats, CLIENT))
    client = await OrchestraClient.open(config_for(deploy_nats, CLIENT))
    try:
        await ensure_consumer(architect.js, consumer_config(durable, filter_subject, architect.config))
        nowhere = event_filter(EventType.STATUS_CHANGED, "nobody")
        attacks = [
            # the reported attack: the bare subject, the durable's name in the body
            (f"{API}.CONSUMER.CREATE.{EVENTS_STREAM}", consumer_body(durable, nowhere)),
            # the legacy durable subject
            (
                f"{API}.CONSUMER.DURABLE.CREATE.{EVENTS_STREAM}.{durable}",
                consumer_body(durable, nowhere, durable=True),
            ),
            # the name in the subject, with the filter the client may use for its own consumers
            (
                f"{API}.CONSUMER.CREATE.{EVENTS_STREAM}.{durable}.{status_filter()}",
                consumer_body(durable, status_filter()),
            ),
            (f"{API}.CONSUMER.CREATE.{EVENTS_STREAM}.{durable}.{nowhere}", consumer_body(durable, nowhere)),
        ]
        answers = await asyncio.gather(*(api_call(nc, errors, subject, body) for subject, body in attacks))
        assert answers == [None] * len(attacks), answers
        assert (await admin.js.consumer_info(EVENTS_STREAM, durable)).config.filter_subject == filter_subject

        task = await client.submit("Containerize the Python FastAPI application", "fastapi-service")
        sub = await architect.js.pull_subscribe_bind(durable=durable, stream=EVENTS_STREAM)
        seen: list[str] = []
        for _ in range(50):
            msgs = await sub.fetch(256, timeout=2)
            for msg in msgs:
                await msg.ack_sync(timeout=2)
            seen += [m.subject for m in msgs]
            if event_subject(EventType.TASK_REQUESTED, task) in seen:
                break
        assert event_subject(EventType.TASK_REQUESTED, task) in seen
    finally:
        await nc.close()
        await client.close()
        await architect.close(timeout_s=5)


async def test_a_client_consumer_gets_the_name_in_the_subject_never_one_from_the_body(
    deploy_nats, admin
) -> None:
    """The allow-list lets the client name its consumer in the subject; the server, not the
    permissions, must then keep the body from naming another one (an agent's durable) or widening
    the filter. Checked here because the client's permissions rely on it."""
    durable, filter_subject = ROUTES["architect"].consumers()[0]
    nc, errors = await watched(config_for(deploy_nats, CLIENT))
    own = f"watch-probe{new_id().lower()}"
    subject = f"{API}.CONSUMER.CREATE.{EVENTS_STREAM}.{own}.{status_filter()}"
    try:
        # A body name other than the subject's: the consumer gets the subject's name.
        answer = await api_call(nc, errors, subject, consumer_body(durable, status_filter()))
        assert answer is not None and answer.get("name", own) == own, answer
        # A durable name other than the subject's, or a filter other than the subject's: refused.
        for body in (
            consumer_body(durable, status_filter(), durable=True),
            consumer_body(own, "orchestra.evt.>"),
            {"stream_name": EVENTS_STREAM, "config": {"name": own, "filter_subjects": ["orchestra.evt.>"]}},
        ):
            answer = await api_call(nc, errors, subject, body)
            assert answer is not None and "error" in answer, answer
        assert (await admin.js.consumer_info(EVENTS_STREAM, durable)).config.filter_subject == filter_subject
    finally:
        await nc.close()


async def test_client_watch_uses_only_consumers_of_its_own_name_space(deploy_nats, admin) -> None:
    client = await OrchestraClient.open(config_for(deploy_nats, CLIENT))
    try:
        watch = client.watch(None, idle_timeout_s=0.5)
        with pytest.raises(TimeoutError):
            await watch.__anext__()  # the consumer exists while the watch waits
        names = [c.name async for c in _consumers(admin)]
        await watch.aclose()
    finally:
        await client.close()
    watchers = [n for n in names if n not in agent_durables()]
    assert watchers and all(n.startswith(CLIENT_CONSUMER_PREFIX) for n in watchers), names
    assert not any(d.startswith(CLIENT_CONSUMER_PREFIX) for d in agent_durables())


async def _consumers(admin: Bus):
    for info in await admin.js.consumers_info(EVENTS_STREAM):
        yield info


async def test_no_agent_can_change_empty_or_seal_the_streams(deploy_nats, admin) -> None:
    """Issue 10 item 2: qa set max_age through STREAM.UPDATE and emptied EVENTS and the DLQ;
    knowledge sealed EVENTS for good. Both calls are refused now and nothing changed."""
    await admin.publisher.publish_raw(
        event_subject(EventType.KNOWLEDGE_NOTE, new_id()), b"{}", {MSG_ID: new_id()}
    )
    before = await snapshot(admin)
    qa, qa_errors = await watched(config_for(deploy_nats, "qa"))
    knowledge, knowledge_errors = await watched(config_for(deploy_nats, "knowledge"))
    try:
        attacks = []
        for stream in (EVENTS_STREAM, DLQ_STREAM):
            expire = {**before[stream]["config"], "max_age": 1_000_000_000}  # 1 s, in nanoseconds
            attacks.append(api_call(qa, qa_errors, f"{API}.STREAM.UPDATE.{stream}", expire))
        sealed = {**before[EVENTS_STREAM]["config"], "sealed": True}
        attacks.append(api_call(knowledge, knowledge_errors, f"{API}.STREAM.UPDATE.{EVENTS_STREAM}", sealed))
        assert await asyncio.gather(*attacks) == [None, None, None]
    finally:
        await qa.close()
        await knowledge.close()
    assert await snapshot(admin) == before


def _covers(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` one token, ``>`` the rest (at least one token)."""
    pat, sub = pattern.split("."), subject.split(".")
    for i, token in enumerate(pat):
        if token == ">":
            return len(sub) > i
        if i >= len(sub) or (token != "*" and token != sub[i]):
            return False
    return len(pat) == len(sub)


def _attacks_of(user: str) -> list[tuple[str, dict]]:
    """Every consumer and stream change ``user`` must not make, as (subject, body)."""
    own = dict(ROUTES[user].consumers()) if user in ROUTES else {}
    everything = "orchestra.evt.>"
    attacks: list[tuple[str, dict]] = []
    for route in ROUTES.values():
        for durable, filter_subject in route.consumers():
            create = f"{API}.CONSUMER.CREATE.{EVENTS_STREAM}"
            attacks += [
                (create, consumer_body(durable, everything)),
                (
                    f"{API}.CONSUMER.DURABLE.CREATE.{EVENTS_STREAM}.{durable}",
                    consumer_body(durable, everything, durable=True),
                ),
                (f"{create}.{durable}", consumer_body(durable, everything)),
                (f"{API}.CONSUMER.DELETE.{EVENTS_STREAM}.{durable}", {}),
            ]
            # Named in the subject with a filter: the status filter (the client's own consumers use
            # it), everything, and the durable's real one. An agent may send its own durable's
            # subject with a filter its own filter covers (the allow-list ends in a wildcard): that
            # could only narrow what it receives itself.
            for bent in (status_filter(), everything, filter_subject):
                if durable in own and _covers(own[durable], bent):
                    continue
                attacks.append((f"{create}.{durable}.{bent}", consumer_body(durable, bent)))
    for stream in STREAMS:
        if not (user == PROVISIONER and stream != TASKS_BUCKET_STREAM):
            attacks.append((f"{API}.STREAM.UPDATE.{stream}", {"name": stream, "sealed": True}))
        attacks += [
            (f"{API}.STREAM.DELETE.{stream}", {}),
            (f"{API}.STREAM.PURGE.{stream}", {}),
            (f"{API}.STREAM.MSG.DELETE.{stream}", {"seq": 1}),
        ]
    return attacks


@pytest.mark.parametrize("user", [*AGENTS, CLIENT, PROVISIONER])
async def test_no_user_may_create_rewrite_or_delete_a_durable_nor_change_or_empty_a_stream(
    deploy_nats, admin, user
) -> None:
    """For every user of deploy/nats but admin: each agent durable through every create subject (the
    bare one with the name in the body, the legacy DURABLE.CREATE, the named one with and without a
    filter), consumer delete, and stream update (seal), delete, purge and message delete on both
    streams and the task bucket. All refused by the server; nothing changed. (Each agent's exact
    create subject for its own durables is allowed: test_agent_binds_... uses it.)"""
    for durable, filter_subject in (d for r in ROUTES.values() for d in r.consumers()):
        await ensure_consumer(admin.js, consumer_config(durable, filter_subject, admin.config))
    before = await snapshot(admin)
    nc, errors = await watched(config_for(deploy_nats, user))
    try:
        attacks = _attacks_of(user)
        answers = await asyncio.gather(*(api_call(nc, errors, subject, body) for subject, body in attacks))
        allowed = [
            subject for (subject, _), answer in zip(attacks, answers, strict=True) if answer is not None
        ]
        assert allowed == []
    finally:
        await nc.close()
    assert await snapshot(admin) == before


async def test_the_provisioner_creates_and_updates_streams_and_nothing_else(tmp_path: Path) -> None:
    """A fresh server: the provisioning identity creates both streams and the bucket, a second run
    changes nothing, a new setting updates the stream; it may not publish events, touch the bucket's
    keys, or create consumers."""
    env = local.random_passwords()
    server = local.single(tmp_path, env).start()
    try:
        deploy = (server, env)
        bus = await Bus.connect(config_for(deploy, PROVISIONER, publish_timeout_s=5.0))
        try:
            first = await ensure_provisioned(bus.js, bus.config)
            assert first == dict.fromkeys(STREAMS, "created")
            assert set((await ensure_provisioned(bus.js, bus.config)).values()) == {"unchanged"}
            smaller = bus.config.model_copy(update={"max_bytes": 64 << 20})
            again = await ensure_provisioned(bus.js, smaller)
            assert again[EVENTS_STREAM] == "updated" and again[TASKS_BUCKET_STREAM] == "unchanged"
        finally:
            await bus.close(timeout_s=5)
        nc, errors = await watched(config_for(deploy, PROVISIONER))
        try:
            for subject in (
                event_subject(EventType.TASK_REQUESTED, "x"),
                f"$KV.{TASKS_BUCKET}.x",
                f"{API}.CONSUMER.CREATE.{EVENTS_STREAM}",
                f"{API}.STREAM.CREATE.SOMETHING_ELSE",
            ):
                await denied_publish(nc, errors, subject)
        finally:
            await nc.close()
    finally:
        server.stop()


def test_orchestra_provision_command_as_provisioner_and_as_an_agent(tmp_path: Path) -> None:
    """`orchestra provision` as the deployments run it: created, then unchanged on a second run;
    as an agent user it is refused in one line (exit 3) and creates nothing."""
    import os
    import subprocess
    import sys

    env = local.random_passwords()
    server = local.single(tmp_path, env).start()

    def provision(user: str) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("ORCHESTRA_", "NATS_"))}
        run_env = {
            **base,
            "NATS_URL": server.url,
            "ORCHESTRA_USER": user,
            "ORCHESTRA_PASSWORD": env[password_env(user)],
            "ORCHESTRA_PUBLISH_TIMEOUT_S": "1",
        }
        orchestra = str(Path(sys.executable).parent / "orchestra")
        return subprocess.run(
            [orchestra, "provision"], env=run_env, capture_output=True, text=True, timeout=60
        )

    try:
        refused = provision("qa")
        assert refused.returncode == 3, refused.stdout + refused.stderr
        [line] = refused.stderr.strip().splitlines()
        assert line.startswith("error: ") and "'qa'" in line and "provisioner" in line
        first = provision(PROVISIONER)
        assert first.returncode == 0, first.stderr
        assert [ln.split() for ln in first.stdout.splitlines()] == [[s, "created"] for s in STREAMS]
        second = provision(PROVISIONER)
        assert [ln.split() for ln in second.stdout.splitlines()] == [[s, "unchanged"] for s in STREAMS]
    finally:
        server.stop()


async def test_an_agent_started_before_provisioning_waits_then_binds(tmp_path: Path) -> None:
    """An agent on a server without streams neither crashes nor creates them: it waits, not ready,
    saying what is missing and how to provision it; once provisioned it starts."""
    from structlog.testing import capture_logs

    from agents.runner import Orchestra
    from agents.settings import AgentSettings

    env = local.random_passwords()
    server = local.single(tmp_path, env).start()
    deploy = (server, env)
    settings = AgentSettings(workspace=tmp_path, knowledge_db=tmp_path / "k.sqlite3")
    orchestra = Orchestra(["architect"], config_for(deploy, "architect"), settings)
    try:
        with capture_logs() as logs:
            starting = asyncio.create_task(orchestra.start())
            for _ in range(100):
                if any(e["event"] == "bus.not_provisioned" for e in logs):
                    break
                await asyncio.sleep(0.05)
            assert not starting.done() and not orchestra.ready()
            [waiting] = [e for e in logs if e["event"] == "bus.not_provisioned"]
            assert waiting["missing"] == {EVENTS_STREAM: "not found", DLQ_STREAM: "not found"}
            assert "orchestra provision" in waiting["how"]
            admin = await Bus.connect(config_for(deploy, ADMIN))
            try:
                assert await admin.js.streams_info() == []  # it created nothing
            finally:
                await admin.close(timeout_s=5)
            await provision_as(deploy)
            await asyncio.wait_for(starting, 15)
        assert orchestra.ready()
    finally:
        await orchestra.stop()
        server.stop()


async def test_an_agent_process_waiting_for_provisioning_stops_at_once_on_sigterm(tmp_path: Path) -> None:
    """The container case: `orchestra agent` on a server without streams waits (not ready, the
    reason in its log); SIGTERM ends the wait and the process exits 0."""
    from bus.embedded import EmbeddedServer
    from tests.faults.helpers import until
    from tests.faults.procs import AgentProcess

    with EmbeddedServer(store_dir=tmp_path / "nats") as server:
        agent = AgentProcess("architect", server.url, tmp_path).start()
        try:
            await until(
                lambda: "bus.not_provisioned" in agent.log_tail(50), within=30, what="the waiting line"
            )
            assert not agent.ready() and agent.exited is None
        finally:
            code = await agent.stop(within=10)
        assert code == 0, agent.log_tail()


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
            f"$JS.API.CONSUMER.CREATE.{EVENTS_STREAM}",
            f"$JS.API.CONSUMER.MSG.NEXT.{EVENTS_STREAM}.{durable}",
            f"$JS.API.STREAM.CREATE.{EVENTS_STREAM}",
            f"$JS.API.STREAM.UPDATE.{EVENTS_STREAM}",
            f"$KV.{TASKS_BUCKET}.x",
        ):
            await denied_publish(nc, errors, subject)
    finally:
        await nc.close()


async def test_a_client_without_the_streams_cannot_create_them(tmp_path: Path) -> None:
    """Only the provisioner (and admin) create streams: a client that comes first cannot submit
    (nothing is stored) instead of creating them; once provisioned it can."""
    from bus.errors import PublishFailed

    env = local.random_passwords()
    server = local.single(tmp_path, env).start()
    try:
        config = config_for((server, env), CLIENT, publish_timeout_s=0.5, publish_attempts=2)
        client = await OrchestraClient.open(config)
        with pytest.raises(PublishFailed):
            await client.submit("Deploy to Kubernetes", "p")
        await provision_as((server, env))
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
    settings = AgentSettings(
        workspace=workspace, knowledge_db=tmp_path / "k.sqlite3", sweep_interval_s=0.3, smoke_boot=False
    )
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
