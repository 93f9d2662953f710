"""The wall clock the bus and the agents read, as one object a test can replace.

Deadlines, ages and timestamps that travel between processes are wall-clock times, so they read
:class:`Clock`; a :class:`~bus.runtime.Bus` carries one (``bus.clock``, the system clock unless
given another) and agents read it from their bus. The stub broker (bus/stub) drives a
:class:`ManualClock` so a test can let a deadline pass without waiting for it. Intervals measured
inside one process (timeouts, back-off, heartbeats) keep using the event loop's monotonic time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time."""

    def time(self) -> float:
        """Seconds since the epoch."""
        ...

    def now(self) -> datetime:
        """The current time as an aware UTC datetime."""
        ...


class SystemClock:
    """The machine's clock."""

    def time(self) -> float:
        return time.time()

    def now(self) -> datetime:
        return datetime.now(UTC)


SYSTEM_CLOCK = SystemClock()


class ManualClock:
    """A clock that moves only when told to (:meth:`advance`), starting at ``start`` (default: the
    system clock's time when created). ``on_change`` callbacks run after every move."""

    def __init__(self, start: float | None = None) -> None:
        self._now = time.time() if start is None else start
        self.on_change: list[Callable[[], None]] = []

    def time(self) -> float:
        return self._now

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._now, UTC)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (never back)."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += seconds
        for callback in self.on_change:
            callback()
