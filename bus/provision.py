"""Streams, durable consumers and the task-state bucket.

Two roles, two sets of NATS permissions:

- provisioning (:func:`ensure_provisioned`): create or update the two streams and the task-state bucket,
  idempotently. One identity does it (``orchestra provision``, the compose one-shot service, the
  Helm Job, ``orchestra up`` for its embedded server); no agent may change a stream.
- binding (:func:`wait_for_streams`, :func:`bind_task_bucket`): an agent checks that what it needs
  exists and waits, saying what is missing and how to create it, until it does. Each agent creates
  and updates only its own durable consumers (:func:`ensure_consumer`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import structlog
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import APIError, BadRequestError, NotFoundError
from nats.js.kv import KeyValue

from bus.config import BusConfig
from contracts.limits import TASK_STATE_MAX_BYTES
from contracts.subjects import (
    DLQ_STREAM,
    DLQ_SUBJECTS,
    EVENTS_STREAM,
    EVENTS_SUBJECTS,
    TASKS_BUCKET,
    TASKS_BUCKET_STREAM,
)

log = structlog.get_logger("bus.provision")

# What every agent binds to; devops also needs the task-state bucket (see bind_task_bucket).
AGENT_STREAMS = (EVENTS_STREAM, DLQ_STREAM)
HOW_TO_PROVISION = (
    "run `orchestra provision` once as the provisioning user (deploy/README.md: the compose "
    "`provision` service, the Helm provisioning Job); `orchestra up` provisions its own server"
)


def events_stream_config(config: BusConfig) -> StreamConfig:
    return StreamConfig(
        name=EVENTS_STREAM,
        description="Every orchestra event: the durable log the knowledge store is a projection of.",
        subjects=[EVENTS_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_bytes=config.max_bytes,
        # Fail loudly when full instead of silently dropping the oldest history.
        discard=DiscardPolicy.NEW,
        max_msg_size=config.max_msg_size,
        duplicate_window=config.duplicate_window_s,
        num_replicas=config.replicas,
    )


def dlq_stream_config(config: BusConfig) -> StreamConfig:
    return StreamConfig(
        name=DLQ_STREAM,
        description="Dead letters: events no consumer could handle, with the reason and raw bytes.",
        subjects=[DLQ_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_bytes=max(config.max_bytes // 4, -1) if config.max_bytes > 0 else -1,
        discard=DiscardPolicy.NEW,
        # A dead letter carries the original bytes base64-encoded (4/3) plus its reason.
        max_msg_size=config.max_msg_size * 4 // 3 + 64 * 1024,
        duplicate_window=config.duplicate_window_s,
        num_replicas=config.replicas,
    )


async def ensure_stream(js: JetStreamContext, stream: StreamConfig) -> str:
    """Create the stream, or update it to ``stream`` when it exists with other settings.

    Returns what happened: ``created``, ``updated``, ``unchanged`` or ``update refused: <reason>``
    (a change the server cannot make in place, e.g. the storage type: the stream stays usable)."""
    try:
        info = await js.stream_info(stream.name)
    except NotFoundError:
        await js.add_stream(stream)
        log.info("stream.created", stream=stream.name)
        return "created"
    current = info.config
    wanted = {k: v for k, v in stream.as_dict().items() if k not in ("name",)}
    have = current.as_dict()
    if not any(have.get(k) != v for k, v in wanted.items() if k in have):
        return "unchanged"
    try:
        await js.update_stream(stream)
    except APIError as exc:
        log.warning("stream.update_refused", stream=stream.name, error=str(exc))
        return f"update refused: {exc.description or exc}"
    log.info("stream.updated", stream=stream.name)
    return "updated"


async def ensure_streams(js: JetStreamContext, config: BusConfig) -> dict[str, str]:
    """The events and dead-letter streams, created or updated; stream name -> what happened."""
    return {
        EVENTS_STREAM: await ensure_stream(js, events_stream_config(config)),
        DLQ_STREAM: await ensure_stream(js, dlq_stream_config(config)),
    }


async def ensure_provisioned(js: JetStreamContext, config: BusConfig) -> dict[str, str]:
    """Everything the orchestra needs on the server, idempotently: both streams and the task-state
    bucket. Needs the provisioning permissions; returns resource name -> what happened."""
    outcome = await ensure_streams(js, config)
    outcome[TASKS_BUCKET_STREAM] = await ensure_task_bucket(js, config)
    return outcome


async def missing_streams(js: JetStreamContext, streams: Iterable[str]) -> dict[str, str]:
    """The streams of ``streams`` that cannot be bound to yet, each with why: ``not found``, or no
    answer (JetStream not ready yet, or this user may not look the stream up)."""
    missing: dict[str, str] = {}
    for name in streams:
        try:
            await js.stream_info(name)
        except NotFoundError:
            missing[name] = "not found"
        except (TimeoutError, APIError) as exc:
            missing[name] = f"no answer ({str(exc) or type(exc).__name__})"
    return missing


async def wait_for_streams(
    js: JetStreamContext,
    streams: Iterable[str] = AGENT_STREAMS,
    *,
    poll_s: float = 1.0,
    remind_s: float = 30.0,
    wait_s: float | None = None,
) -> None:
    """Return once every stream of ``streams`` exists; never creates one.

    Until then it logs (at once, then every ``remind_s``) which ones are missing and how to
    provision them. ``wait_s`` bounds the wait (``None``: forever, as an agent waits, not ready);
    past it raises :class:`TimeoutError` naming what is missing."""
    names = tuple(streams)
    started = time.monotonic()
    reminded_at: float | None = None
    while missing := await missing_streams(js, names):
        now = time.monotonic()
        if wait_s is not None and now - started >= wait_s:
            why = ", ".join(f"{name}: {reason}" for name, reason in missing.items())
            raise TimeoutError(f"not provisioned after {wait_s:.0f}s ({why}); {HOW_TO_PROVISION}")
        if reminded_at is None or now - reminded_at >= remind_s:
            log.warning(
                "bus.not_provisioned", missing=missing, waiting_s=round(now - started), how=HOW_TO_PROVISION
            )
            reminded_at = now
        await asyncio.sleep(poll_s)
    if reminded_at is not None:
        log.info("bus.provisioned", streams=list(names), waited_s=round(time.monotonic() - started, 1))


def consumer_config(durable: str, filter_subject: str, config: BusConfig) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=durable,
        name=durable,
        description=f"orchestra durable consumer {durable}",
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=config.ack_wait_s,
        max_deliver=config.max_deliver,
        filter_subject=filter_subject,
        max_ack_pending=max(config.fetch_batch * 16, 1024),
        max_waiting=512,
        num_replicas=config.replicas if config.replicas > 1 else None,
    )


async def ensure_consumer(js: JetStreamContext, cfg: ConsumerConfig, stream: str = EVENTS_STREAM) -> None:
    """Create a durable pull consumer; an existing one is updated where the server allows it."""
    try:
        await js.add_consumer(stream, cfg)
    except BadRequestError as exc:
        # Servers before 2.10 refuse to change some fields of an existing durable.
        log.warning("consumer.update_refused", consumer=cfg.durable_name, error=str(exc))


def task_bucket_config(config: BusConfig) -> KeyValueConfig:
    """The per-task state (owned by DevOps); optimistic concurrency by revision."""
    return KeyValueConfig(
        bucket=TASKS_BUCKET,
        description="deployment state machine of each task",
        history=1,
        storage=StorageType.FILE,
        replicas=config.replicas,
        max_value_size=TASK_STATE_MAX_BYTES,
    )


async def ensure_task_bucket(js: JetStreamContext, config: BusConfig) -> str:
    """Create the task-state bucket unless it exists (provisioning); returns what happened."""
    try:
        await js.key_value(TASKS_BUCKET)
        return "unchanged"
    except NotFoundError:
        pass
    try:
        await js.create_key_value(task_bucket_config(config))
    except BadRequestError:  # another provisioner created it meanwhile
        return "unchanged"
    log.info("stream.created", stream=TASKS_BUCKET_STREAM)
    return "created"


async def bind_task_bucket(js: JetStreamContext, *, wait_s: float | None = None) -> KeyValue:
    """The task-state bucket, once it exists (an agent binds, it never creates it)."""
    await wait_for_streams(js, (TASKS_BUCKET_STREAM,), wait_s=wait_s)
    return await js.key_value(TASKS_BUCKET)
