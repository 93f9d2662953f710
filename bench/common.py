"""What every benchmark pair shares: sample events, a fresh stream, bounded publishing, statistics."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from bus.config import BusConfig
from bus.provision import ensure_streams
from contracts import Envelope, EventType, Source, new_event, new_id
from contracts.payloads import KnowledgeNote, StatusChanged
from contracts.subjects import DLQ_STREAM, EVENTS_STREAM
from contracts.vocabulary import DeploymentState, NoteKind

SOURCE = Source(agent="bench", instance="bench:1")


def sample_events(n: int, *, tasks: int = 100) -> list[Envelope]:
    """``n`` small realistic events (notes and status changes, ~450 bytes) spread over ``tasks`` tasks."""
    task_ids = [new_id() for _ in range(tasks)]
    out: list[Envelope] = []
    for i in range(n):
        task_id = task_ids[i % tasks]
        if i % 2:
            payload: Any = StatusChanged(
                state=DeploymentState.VALIDATING,
                previous=DeploymentState.GENERATING,
                agent="devops",
                reason=f"{i % 17 + 3} artifacts generated; waiting for QA and security",
            )
            out.append(new_event(EventType.STATUS_CHANGED, payload, task_id=task_id, source=SOURCE))
        else:
            payload = KnowledgeNote(
                kind=NoteKind.EDIT,
                text=f"Edit: Dockerfile - multi-stage build {i}, non-root user, healthcheck on /health",
                agent="devops",
            )
            out.append(new_event(EventType.KNOWLEDGE_NOTE, payload, task_id=task_id, source=SOURCE))
    return out


async def fresh_streams(js: JetStreamContext, config: BusConfig) -> None:
    """Delete and recreate the events and dead-letter streams (same settings the bus provisions)."""
    for name in (EVENTS_STREAM, DLQ_STREAM):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(name)
    await ensure_streams(js, config)


async def publish_all(
    publish: Callable[[Envelope], Awaitable[Any]], events: Sequence[Envelope], *, inflight: int
) -> None:
    """Publish every event through ``publish`` with at most ``inflight`` PubAcks outstanding.

    ``inflight`` coroutines each publish the next event and await its PubAck, so both sides of a
    pair have exactly the same number of publishes in flight and no per-event task is created.
    """
    it = iter(events)

    async def lane() -> None:
        for event in it:
            await publish(event)

    await asyncio.gather(*(lane() for _ in range(min(inflight, len(events)))))


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``; 0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


@dataclass
class Rate:
    """Items done in a timed window: wall seconds and this process's CPU seconds."""

    items: int
    seconds: float
    cpu_seconds: float

    @property
    def per_s(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_item(self) -> float:
        return self.cpu_seconds / self.items * 1e6 if self.items else 0.0


class Stopwatch:
    """Wall and process CPU time between :meth:`start` and :meth:`stop`."""

    def __init__(self) -> None:
        self._wall = self._cpu = 0.0

    def start(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def stop(self, items: int) -> Rate:
        return Rate(items, time.perf_counter() - self._wall, time.process_time() - self._cpu)


def peak_rss_mb(pid: int | str = "self") -> float:
    """Peak resident set size (VmHWM) of a process, in MiB; 0 when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
