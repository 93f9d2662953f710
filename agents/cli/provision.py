"""`orchestra provision`: create or update the streams and the task-state bucket, idempotently.

The one command of the provisioning identity: the ``provisioner`` NATS user of deploy/nats (the
compose ``provision`` service and the Helm Job run it), or whoever runs a server for themselves.
Agents never create or change a stream: they wait, not ready, until this has run.
"""

from __future__ import annotations

import asyncio

import typer
from nats.js.errors import APIError, ServiceUnavailableError

from agents.cli.common import EXIT_FAILED, EXIT_OK, JsonOut, NatsUrl, bus_config, emit_json, run
from bus.config import BusConfig
from bus.errors import ServerUnavailable
from bus.provision import ensure_provisioned
from bus.runtime import Bus


def provisioning_config(nats_url: str | None) -> BusConfig:
    """Settings from flags and environment (a named user gets its own reply inbox: see bus_config)."""
    return bus_config(nats_url)


async def provision_with_retry(config: BusConfig, wait_s: float) -> dict[str, str]:
    """Connect and provision, retrying for up to ``wait_s`` seconds while NATS or JetStream is not
    there yet (a cluster still electing its leader answers 503, a starting server not at all)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    bus = await Bus.connect(config, name="orchestra-provision", wait_s=wait_s)
    try:
        while True:
            try:
                return await ensure_provisioned(bus.js, config)
            except (TimeoutError, ServiceUnavailableError) as exc:
                if loop.time() >= deadline:
                    who = f"user {config.user!r}" if config.user else "this connection"
                    raise ServerUnavailable(
                        f"JetStream did not answer ({type(exc).__name__}): is it enabled, and may {who} "
                        "create streams? (deploy/nats: the provisioner user)"
                    ) from None
                await asyncio.sleep(1.0)
    finally:
        await bus.close(timeout_s=5)


def register(app: typer.Typer) -> None:
    """Add ``provision`` to the ``orchestra`` command."""

    @app.command()
    def provision(
        nats_url: str | None = NatsUrl,
        connect_wait: float = typer.Option(
            0.0, help="Seconds to wait for NATS and JetStream to answer (a job started beside the server)."
        ),
        as_json: bool = JsonOut,
    ) -> None:
        """Create or update the event and dead-letter streams and the task-state bucket (idempotent).

        Run once per deployment, and again after changing stream settings (ORCHESTRA_REPLICAS,
        ORCHESTRA_MAX_BYTES, ...); agents wait until it ran. Exit 0 when everything exists."""

        @run
        async def body() -> int:
            try:
                outcome = await provision_with_retry(provisioning_config(nats_url), connect_wait)
            except APIError as exc:  # e.g. not enough JetStream storage for the stream's limits
                typer.echo(f"error: provisioning refused: {exc.description or exc}", err=True)
                return EXIT_FAILED
            for name, what in outcome.items():
                if as_json:
                    emit_json({"stream": name, "outcome": what})
                else:
                    typer.echo(f"{name:<20} {what}")
            return EXIT_OK

        raise typer.Exit(body())
