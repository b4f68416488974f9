"""What every in-process hub fixture does: serve an application on a free loopback port."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import ClientSession, web
from websockets.asyncio.client import ClientConnection

from cryptowire.app.node import Node
from cryptowire.server.app import create_app
from cryptowire.server.listener import HubSite


async def serve_app(app: web.Application, *, shutdown_timeout: float = 5.0,
                    ssl_context: ssl.SSLContext | None = None) -> tuple[web.AppRunner, int]:
    """Start ``app`` on 127.0.0.1 (port chosen by the kernel); the caller cleans the
    runner up."""
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = HubSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)  # as `cryptowire serve`
    await site.start()
    return runner, int(runner.addresses[0][1])


async def serve(node: Node, *, shutdown_timeout: float = 5.0,
                ssl_context: ssl.SSLContext | None = None) -> tuple[web.AppRunner, int]:
    """Start ``node``'s application; cleaning the runner up stops the node."""
    return await serve_app(create_app(node), shutdown_timeout=shutdown_timeout,
                           ssl_context=ssl_context)


@dataclass
class ServedHub:
    """A node served by :func:`serve`, its address and the clients a test opened on it
    (closed at teardown by :func:`stop_all`)."""

    node: Node
    runner: web.AppRunner
    port: int
    http: ClientSession
    clients: list[ClientConnection] = field(default_factory=list)
    stopped: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stats(self) -> dict[str, Any]:
        async with self.http.get(f"{self.url}/stats") as resp:
            assert resp.status == 200
            body: dict[str, Any] = await resp.json()
            return body

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        await self.runner.cleanup()


async def stop_all(hubs: Sequence[ServedHub], http: ClientSession) -> None:
    """Teardown of a hub factory: every client closed, every hub stopped, the session shut."""
    for hub in hubs:
        await asyncio.gather(*(c.close() for c in hub.clients), return_exceptions=True)
        await hub.stop()
    await http.close()
