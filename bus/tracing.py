"""W3C trace context in NATS headers: one task is one trace across every agent.

The trace id is derived from the task id and the span id from the event id, so any
process (in any language) that sees an event can rebuild the same context, with or
without an OpenTelemetry SDK configured. When a span is active in the publishing
process (an SDK is configured) its trace id wins, so an outer trace is continued.
"""

from __future__ import annotations

import hashlib
import re

TRACEPARENT = "traceparent"
_TRACEPARENT_RE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def trace_id_for(task_id: str) -> str:
    return hashlib.blake2b(task_id.encode(), digest_size=16).hexdigest()


def span_id_for(event_id: str) -> str:
    return hashlib.blake2b(event_id.encode(), digest_size=8).hexdigest()


def _active_trace_id() -> str | None:
    try:
        from opentelemetry import trace
    except ImportError:  # the API is a dependency, but tracing must never break publishing
        return None
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def traceparent(task_id: str, event_id: str) -> str:
    """The ``traceparent`` header value for an event of ``task_id``."""
    trace_id = _active_trace_id() or trace_id_for(task_id)
    return f"00-{trace_id}-{span_id_for(event_id)}-01"


def parse_traceparent(value: str | None) -> tuple[str, str] | None:
    """``(trace_id, parent_span_id)`` from a header value, or None when absent or malformed."""
    if not value:
        return None
    m = _TRACEPARENT_RE.match(value.strip())
    return (m.group(1), m.group(2)) if m else None
