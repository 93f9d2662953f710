"""Logging, configured in exactly one place: structlog, JSON off a terminal, secrets redacted."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from contracts.redaction import MASK, SECRET_KEY_PATTERN, redact

REDACTED = MASK


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask values under secret-looking keys and secret-looking substrings."""
    for key, value in list(event_dict.items()):
        if SECRET_KEY_PATTERN.search(key):
            event_dict[key] = REDACTED
        elif isinstance(value, str):
            event_dict[key] = redact(value)
    return event_dict


def configure_logging(*, json: bool | None = None, level: str = "INFO", stream: Any = None) -> None:
    """Set up structlog for a process. ``json`` defaults to "not a terminal"; logs go to stderr."""
    stream = stream or sys.stderr
    as_json = (not stream.isatty()) if json is None else json
    renderer: Any = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
