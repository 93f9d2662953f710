"""Errors the bus raises to its callers, each with a message fit for one line of CLI output."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting (flag or ORCHESTRA_* variable) that cannot be used; the message names it."""


class BusError(RuntimeError):
    """Base class of bus errors."""


class ServerUnavailable(BusError):
    """No NATS server answered at the configured URL."""


class PublishFailed(BusError):
    """The server did not acknowledge a publish after every attempt (or refused it)."""


class IdTaken(PublishFailed):
    """Another event is stored under this event's id (a duplicate PubAck that is not ours)."""


class Unavailable(BusError):
    """Something a handler depends on is full or down (a disk, a database, the stream's space);
    the message itself is fine. The consumer keeps such a message in progress and retries it with
    back-off instead of spending its deliveries: it is never dead-lettered for this."""


class StoreFull(PublishFailed, Unavailable):
    """The server refused a publish for lack of space (stream max_bytes, server max_store)."""


class RequestFailed(BusError):
    """A request/reply call got no answer or an error answer."""


class Deferred(Exception):
    """Raised by a handler for a message that cannot be handled *yet* (say, an answer about a task
    whose record is not written yet). The consumer naks it with a delay, so it waits in the stream
    and not in a handler lane, and dead-letters it with ``reason`` if it still cannot be handled
    on its last allowed delivery. ``within_s`` is how much longer the handler is willing to wait:
    the delays are spread so that the last delivery comes no earlier than that."""

    def __init__(self, reason: str, within_s: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.within_s = within_s


class Reject(Exception):
    """Raised by a handler for a message that can never succeed: it is dead-lettered, not retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
