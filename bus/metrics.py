"""Prometheus metrics of the bus: one observer for consumers, one hook for the publisher.

The hooks run once per message, so they only bump plain integers; a collector registered in
prometheus_client's default registry (served by agents/health.py at ``/metrics``) turns them into
series when scraped. prometheus_client's own ``Counter.inc`` / ``Histogram.observe`` take a lock
each and cost about 5 us per event together, which bench/throughput.py could see.

The consumer label is the durable name, ``<agent>-<event type>`` for every agent but the
knowledge subscriber (one durable for everything), so it already says who handled what.

Series:
  orchestra_events_handled_total{consumer,event_type}     handled and acked
  orchestra_events_failed_total{consumer,event_type}      handler raised (nak'ed or dead-lettered)
  orchestra_events_redelivered_total{consumer}            deliveries after the first
  orchestra_events_dead_lettered_total{consumer,cause}    cause: invalid | rejected | max_deliver | other
  orchestra_handler_seconds{consumer,event_type}          handler latency, taken to acked (histogram)
  orchestra_consumer_pending{consumer}                    messages waiting in the stream, as of the last fetch
  orchestra_events_published_total{agent,event_type}      events stored (PubAck received)
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterator

from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from bus.observer import ConsumerObserver
from bus.publisher import Publisher
from contracts import Envelope

BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0
)  # fmt: skip


def dead_letter_cause(reason: str) -> str:
    """A bounded label for a dead-letter reason (the reason itself is free text)."""
    if reason.startswith("rejected by "):
        return "rejected"
    if "(max_deliver)" in reason:
        return "max_deliver"
    if reason.startswith(("not valid JSON", "invalid event", "unsupported schema_version", "payload is ")):
        return "invalid"
    return "other"


class _Latency:
    """A histogram's state: per-bucket counts (the last one is +Inf), sum and count."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.count = 0


class PrometheusObserver(ConsumerObserver):
    """Counts what consumers do and what publishers store; :meth:`collect` exports it."""

    def __init__(self) -> None:
        self.handled_count: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.failed_count: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.redelivered_count: defaultdict[str, int] = defaultdict(int)
        self.dead_lettered_count: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.published_count: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.pending: dict[str, int] = {}
        self.latency: defaultdict[tuple[str, str], _Latency] = defaultdict(_Latency)

    # -- ConsumerObserver hooks ----------------------------------------------------------

    def handled(self, consumer: str, event_type: str, seconds: float) -> None:
        key = (consumer, event_type)
        self.handled_count[key] += 1
        hist = self.latency[key]
        hist.buckets[bisect_left(BUCKETS, seconds)] += 1
        hist.total += seconds
        hist.count += 1

    def failed(self, consumer: str, event_type: str, error: BaseException) -> None:
        self.failed_count[(consumer, event_type)] += 1

    def redelivered(self, consumer: str, deliveries: int) -> None:
        self.redelivered_count[consumer] += 1

    def dead_lettered(self, consumer: str, reason: str) -> None:
        self.dead_lettered_count[(consumer, dead_letter_cause(reason))] += 1

    def fetched(self, consumer: str, count: int, pending: int) -> None:
        """After each fetch: ``pending`` messages still wait in the stream for ``consumer``."""
        self.pending[consumer] = pending

    def published(self, event: Envelope) -> None:
        """Publisher hook: ``event`` was stored by the server."""
        self.published_count[(event.source.agent, str(event.type))] += 1


class _Exporter(Collector):
    """Reads an observer's tallies at scrape time (prometheus_client calls :meth:`collect`)."""

    def __init__(self, observer: PrometheusObserver) -> None:
        self._o = observer

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        o = self._o
        yield _counter(
            "orchestra_events_handled",
            "Events handled and acked.",
            ["consumer", "event_type"],
            o.handled_count,
        )
        yield _counter(
            "orchestra_events_failed",
            "Handler failures (the message is nak'ed, or dead-lettered on its last delivery).",
            ["consumer", "event_type"],
            o.failed_count,
        )
        yield _counter(
            "orchestra_events_redelivered",
            "Deliveries of a message after its first.",
            ["consumer"],
            {(k,): v for k, v in list(o.redelivered_count.items())},
        )
        yield _counter(
            "orchestra_events_dead_lettered",
            "Messages moved to the dead-letter stream, by cause.",
            ["consumer", "cause"],
            o.dead_lettered_count,
        )
        yield _counter(
            "orchestra_events_published",
            "Events stored by the server, per publishing agent and event type.",
            ["agent", "event_type"],
            o.published_count,
        )
        pending = GaugeMetricFamily(
            "orchestra_consumer_pending",
            "Messages waiting in the stream for the consumer, as of its last fetch.",
            labels=["consumer"],
        )
        for consumer, value in list(o.pending.items()):
            pending.add_metric([consumer], value)
        yield pending
        latency = HistogramMetricFamily(
            "orchestra_handler_seconds",
            "Handler latency from taking the message to its ack.",
            labels=["consumer", "event_type"],
        )
        for key, hist in list(o.latency.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*BUCKETS, float("inf")), hist.buckets, strict=True):
                cumulative += count
                buckets.append((_le(bound), cumulative))
            latency.add_metric(list(key), buckets, hist.total)
        yield latency


def _counter(
    name: str, doc: str, labels: list[str], values: dict[tuple[str, ...], int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in list(values.items()):
        family.add_metric(list(key), value)
    return family


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


_OBSERVER = PrometheusObserver()
REGISTRY.register(_Exporter(_OBSERVER))


def metrics_observer(publisher: Publisher | None = None) -> PrometheusObserver:
    """The process's observer. Given a publisher, its stored events are counted too (hooked once)."""
    if publisher is not None and _OBSERVER.published not in publisher.on_published:
        publisher.on_published.append(_OBSERVER.published)
    return _OBSERVER
