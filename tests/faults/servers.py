"""A nats-server that can be stopped (SIGTERM or SIGKILL) and started again on the same port and store."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bus.embedded import EmbeddedServer


class RestartableServer:
    """Wraps :class:`EmbeddedServer`; ``crash()``/``restart()`` keep the port and the JetStream store."""

    def __init__(self, store_dir: Path, **kwargs: object) -> None:
        self.server = EmbeddedServer(store_dir=store_dir, **kwargs)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> RestartableServer:
        self.server.start()
        return self

    async def down(self, *, kill: bool) -> None:
        """SIGKILL (a crash) or SIGTERM (a graceful stop); the store dir stays."""
        await asyncio.to_thread(self.server.stop, kill=kill, cleanup=False)

    async def up(self) -> None:
        await asyncio.to_thread(self.server.start)

    async def restart(self, *, kill: bool, outage_s: float = 0.0) -> None:
        await self.down(kill=kill)
        if outage_s:
            await asyncio.sleep(outage_s)  # the outage itself is the fault being injected
        await self.up()

    def stop(self) -> None:
        self.server.stop(cleanup=False)
