"""Streams, durable consumers and the task-state bucket, created or updated idempotently at start-up."""

from __future__ import annotations

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
from contracts.subjects import DLQ_STREAM, DLQ_SUBJECTS, EVENTS_STREAM, EVENTS_SUBJECTS, TASKS_BUCKET

log = structlog.get_logger("bus.provision")


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


async def ensure_stream(js: JetStreamContext, stream: StreamConfig) -> None:
    """Create the stream, or update it to ``stream`` when it exists with other settings."""
    try:
        info = await js.stream_info(stream.name)
    except NotFoundError:
        await js.add_stream(stream)
        log.info("stream.created", stream=stream.name)
        return
    current = info.config
    wanted = {k: v for k, v in stream.as_dict().items() if k not in ("name",)}
    have = current.as_dict()
    if any(have.get(k) != v for k, v in wanted.items() if k in have):
        try:
            await js.update_stream(stream)
            log.info("stream.updated", stream=stream.name)
        except APIError as exc:  # e.g. a change the server cannot make in place (storage type)
            log.warning("stream.update_refused", stream=stream.name, error=str(exc))


async def ensure_streams(js: JetStreamContext, config: BusConfig) -> None:
    await ensure_stream(js, events_stream_config(config))
    await ensure_stream(js, dlq_stream_config(config))


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


async def ensure_task_bucket(js: JetStreamContext, config: BusConfig) -> KeyValue:
    """The per-task state (owned by DevOps); optimistic concurrency by revision."""
    try:
        return await js.key_value(TASKS_BUCKET)
    except (NotFoundError, APIError):
        pass
    kv_config = KeyValueConfig(
        bucket=TASKS_BUCKET,
        description="deployment state machine of each task",
        history=1,
        storage=StorageType.FILE,
        replicas=config.replicas,
        max_value_size=TASK_STATE_MAX_BYTES,
    )
    try:
        return await js.create_key_value(kv_config)
    except BadRequestError:
        return await js.key_value(TASKS_BUCKET)
