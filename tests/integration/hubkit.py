"""What every in-process hub fixture does: serve a node's app on a free loopback port."""

from __future__ import annotations

from aiohttp import web

from cryptowire.core.node import Node
from cryptowire.server.app import create_app


async def serve(node: Node, *, shutdown_timeout: float = 5.0) -> tuple[web.AppRunner, int]:
    """Start ``node``'s application on 127.0.0.1 (port chosen by the kernel); the caller
    cleans the runner up, which stops the node."""
    runner = web.AppRunner(create_app(node), shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])
