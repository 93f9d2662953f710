"""Hooks the consumer calls around each message, so metrics and the like stay out of its loop."""

from __future__ import annotations


class ConsumerObserver:
    """No-op base: subclass and override what you need (see bus/metrics.py)."""

    def handled(self, consumer: str, event_type: str, seconds: float) -> None: ...

    def failed(self, consumer: str, event_type: str, error: BaseException) -> None: ...

    def redelivered(self, consumer: str, deliveries: int) -> None: ...

    def dead_lettered(self, consumer: str, reason: str) -> None: ...

    def fetched(self, consumer: str, count: int, pending: int) -> None:
        """``count`` messages arrived; ``pending`` are still waiting on the server for this consumer."""


NOOP = ConsumerObserver()
