"""Connecting to NATS: reconnect forever, every connection event logged."""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import nats
import structlog
from nats.aio.client import Client as NATS

from bus.config import BusConfig
from bus.errors import ServerUnavailable

log = structlog.get_logger("bus.connection")


def _tls_context(config: BusConfig) -> ssl.SSLContext | None:
    if config.tls_ca is None and config.tls_cert is None:
        return None
    ctx = ssl.create_default_context(cafile=str(config.tls_ca) if config.tls_ca else None)
    if config.tls_cert is not None:
        ctx.load_cert_chain(str(config.tls_cert), str(config.tls_key) if config.tls_key else None)
    return ctx


def connect_options(config: BusConfig, *, name: str | None = None) -> dict[str, Any]:
    """The keyword arguments for ``nats.connect`` that every part of the orchestra uses."""
    if not config.nats_url:
        raise ServerUnavailable("no NATS URL configured (pass --nats-url or set NATS_URL)")
    conn_name = name or config.name

    async def on_error(exc: Exception) -> None:
        log.warning("nats.error", connection=conn_name, error=str(exc) or type(exc).__name__)

    async def on_disconnected() -> None:
        log.info("nats.disconnected", connection=conn_name)  # also on every normal close

    async def on_reconnected() -> None:
        log.info("nats.reconnected", connection=conn_name)

    async def on_closed() -> None:
        log.info("nats.closed", connection=conn_name)

    options: dict[str, Any] = {
        "servers": [s.strip() for s in config.nats_url.split(",") if s.strip()],
        "name": conn_name,
        "allow_reconnect": True,
        # The first connection is bounded (see connect); afterwards we never give up.
        "max_reconnect_attempts": 1,
        "reconnect_time_wait": 1,
        "connect_timeout": 2,
        "ping_interval": 10,
        "max_outstanding_pings": 3,
        "error_cb": on_error,
        "disconnected_cb": on_disconnected,
        "reconnected_cb": on_reconnected,
        "closed_cb": on_closed,
    }
    if config.user:
        options["user"] = config.user
        options["password"] = config.password or ""
    if config.token:
        options["token"] = config.token
    if config.creds:
        options["user_credentials"] = str(config.creds)
    if config.inbox_prefix:
        options["inbox_prefix"] = config.inbox_prefix
    tls = _tls_context(config)
    if tls is not None:
        options["tls"] = tls
    return options


async def connect(config: BusConfig, *, name: str | None = None, wait_s: float = 0.0) -> NATS:
    """Connect, retrying the first connection for up to ``wait_s`` seconds (0: one try).

    Once connected the client reconnects forever. Raises :class:`ServerUnavailable` with a
    one-line reason when no server answered in time.
    """
    options = connect_options(config, name=name)
    # nats-py reports "no servers available" when the real cause (say an authorization
    # violation) went to the error callback: keep the last one to say what really happened.
    last_error: list[Exception] = []
    log_error = options["error_cb"]

    async def remember(exc: Exception) -> None:
        last_error[:] = [exc]
        await log_error(exc)

    options["error_cb"] = remember
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    delay = 0.2
    while True:
        try:
            nc = await nats.connect(**options)
        except Exception as exc:  # nats raises several unrelated types for "not there"
            if loop.time() + delay > deadline:
                cause = last_error[0] if last_error else exc
                reason = str(cause) or type(cause).__name__
                raise ServerUnavailable(f"cannot reach NATS at {config.nats_url}: {reason}") from None
            log.info("nats.connect_retry", url=config.nats_url, error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            continue
        # nats-py reads these on every reconnect: from now on an agent outlives any outage.
        nc.options["max_reconnect_attempts"] = -1
        nc.options["error_cb"] = log_error
        return nc
