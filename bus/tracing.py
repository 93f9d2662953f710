"""W3C trace context in NATS headers: one task is one trace across every agent.

The trace id is derived from the task id and the span id from the event id, so any
process (in any language) that sees an event can rebuild the same context, with or
without an OpenTelemetry SDK configured.

Publishing: an active OpenTelemetry span wins (its trace id, and its span id when it is
recording), so an outer trace is continued; else the trace of the message being handled;
else the task's derived trace id.

Consuming: :func:`open_trace` / :func:`close_trace` (or :class:`TraceContext`) wrap a handler.
They bind ``trace_id`` / ``span_id`` into structlog's context variables, remember the incoming
trace so the events the handler emits carry it, and, when an OpenTelemetry SDK is configured,
run the handler in a CONSUMER span that is a child of the incoming context. Without an SDK that
costs a regex and three context variables per message (a few microseconds).
"""

from __future__ import annotations

import hashlib
import re
import time
from contextvars import ContextVar, Token
from functools import lru_cache
from typing import Any

import structlog

try:  # the API is a dependency, but tracing must never break publishing or consuming
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError:  # pragma: no cover
    otel_trace = None  # type: ignore[assignment]
    TraceContextTextMapPropagator = None  # type: ignore[assignment,misc]

TRACEPARENT = "traceparent"
_TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_TRACER_NAME = "orchestra.bus"
# The (trace id, span id) of the message whose handler is running in this context.
_INCOMING: ContextVar[tuple[str, str] | None] = ContextVar("orchestra_incoming_trace", default=None)


@lru_cache(maxsize=8192)
def trace_id_for(task_id: str) -> str:
    """The trace id of a task: the same in every process that sees the task id."""
    return hashlib.blake2b(task_id.encode(), digest_size=16).hexdigest()


def span_id_for(event_id: str) -> str:
    """The span id an event's header carries when no recording span published it."""
    return hashlib.blake2b(event_id.encode(), digest_size=8).hexdigest()


_sdk = {"configured": False, "checked_at": float("-inf")}


def sdk_configured() -> bool:
    """True when an OpenTelemetry SDK tracer provider is installed (spans get recorded).

    Asked per message, so the answer is cached: a provider, once set, cannot be replaced, and
    "not yet" is asked again at most once a second (the API's check reads os.environ)."""
    if _sdk["configured"] or otel_trace is None:
        return bool(_sdk["configured"])
    now = time.monotonic()
    if now - _sdk["checked_at"] < 1.0:
        return False
    _sdk["checked_at"] = now
    provider = otel_trace.get_tracer_provider()
    _sdk["configured"] = not isinstance(
        provider, otel_trace.ProxyTracerProvider | otel_trace.NoOpTracerProvider
    )
    return bool(_sdk["configured"])


def traceparent(task_id: str, event_id: str) -> str:
    """The ``traceparent`` header value for an event of ``task_id``."""
    if otel_trace is not None:
        span = otel_trace.get_current_span()
        ctx = span.get_span_context()
        if ctx.is_valid:
            span_id = format(ctx.span_id, "016x") if span.is_recording() else span_id_for(event_id)
            return f"00-{ctx.trace_id:032x}-{span_id}-01"
    incoming = _INCOMING.get()
    trace_id = incoming[0] if incoming is not None else trace_id_for(task_id)
    return f"00-{trace_id}-{span_id_for(event_id)}-01"


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """``(trace_id, parent_span_id)`` from a header value, or None when absent or malformed."""
    if not value:
        return None
    m = _TRACEPARENT_RE.match(value.strip())
    return (m.group(1), m.group(2)) if m else None


def current_trace() -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of the message being handled in this context, if any."""
    return _INCOMING.get()


Opened = tuple[Token[tuple[str, str] | None], dict[str, Any], Any]


def open_trace(header: str | None, name: str) -> Opened | None:
    """Make the trace of a consumed message (its ``traceparent`` header) the current one.

    Returns what :func:`close_trace` needs, or None when the header is absent or malformed.
    ``name`` names the CONSUMER span started when an SDK is configured."""
    parsed = parse_traceparent(header)
    if parsed is None:
        return None
    token = _INCOMING.set(parsed)
    log_tokens = structlog.contextvars.bind_contextvars(trace_id=parsed[0], span_id=parsed[1])
    span_cm = None
    if sdk_configured():
        parent = TraceContextTextMapPropagator().extract({TRACEPARENT: header})
        tracer = otel_trace.get_tracer(_TRACER_NAME)
        span_cm = tracer.start_as_current_span(name, context=parent, kind=otel_trace.SpanKind.CONSUMER)
        span_cm.__enter__()
    return token, log_tokens, span_cm


def close_trace(opened: Opened | None, error: BaseException | None = None) -> None:
    """Undo :func:`open_trace` in the same context; ``error`` is recorded on the span, if any."""
    if opened is None:
        return
    token, log_tokens, span_cm = opened
    if span_cm is not None:
        if error is None:
            span_cm.__exit__(None, None, None)
        else:
            span_cm.__exit__(type(error), error, error.__traceback__)
    structlog.contextvars.reset_contextvars(**log_tokens)
    _INCOMING.reset(token)


class TraceContext:
    """``with TraceContext(header, name):`` runs the body in the consumed message's trace."""

    def __init__(self, header: str | None, name: str) -> None:
        self._header = header
        self._name = name
        self._opened: Opened | None = None

    def __enter__(self) -> tuple[str, str] | None:
        self._opened = open_trace(self._header, self._name)
        return current_trace() if self._opened is not None else None

    def __exit__(self, _type: Any, error: BaseException | None, _tb: Any) -> None:
        close_trace(self._opened, error)
        self._opened = None
