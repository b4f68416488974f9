"""Builds the aiohttp application of one node: every path on one port."""

from __future__ import annotations

import ssl

from aiohttp import web

from cryptowire.server import (
    ops,
    rest,
    rest_limits,
    rest_tokens,
    ws_native,
    ws_pg,
    ws_rfq,
    ws_services,
    ws_swaps,
)
from cryptowire.server import web as dashboard
from cryptowire.server.context import NODE
from cryptowire.server.heartbeat import Heartbeat
from cryptowire.server.node import ServerNode


def create_app(node: ServerNode) -> web.Application:
    """The application; starting it starts the node, cleaning it up stops the node."""
    # No middleware: each one would stay suspended on every open WebSocket; REST handlers
    # map errors themselves (rest.problems).
    # keepalive_timeout is also how long aiohttp waits for a connection's (first or next)
    # request head: it bounds a half-sent request (server.header_timeout_s).
    app = web.Application(
        handler_args={"keepalive_timeout": node.settings.server.header_timeout_s},
        client_max_size=node.settings.server.publish_max_bytes)
    app[NODE] = node
    ops.setup(app)
    dashboard.setup(app)  # GET / and /static/: the web dashboard
    rest_limits.setup(app)
    rest.setup(app)
    services = ws_services.ServicesProtocol(node)  # 004: its own paths and /ws's action form
    ws_native.setup(app, node, services)
    ws_services.setup(app, node, services)
    ws_pg.setup(app, node)
    ws_rfq.setup(app, node)
    rest_tokens.setup(app)
    ws_swaps.setup(app, node)
    if node.settings.server.echo_endpoint:
        from cryptowire.server import echo

        echo.setup(app)

    heartbeat = Heartbeat(node, node.settings.server.ping_interval_s)

    async def start(_: web.Application) -> None:
        await node.start()
        heartbeat.start()

    async def shutdown(_: web.Application) -> None:
        await heartbeat.stop()
        await node.drain(1001, "Server shutting down")

    async def cleanup(_: web.Application) -> None:
        await heartbeat.stop()
        await node.stop()

    app.on_startup.append(start)
    app.on_shutdown.append(shutdown)
    app.on_cleanup.append(cleanup)
    return app


def ssl_context(node: ServerNode) -> ssl.SSLContext | None:
    cfg = node.settings.server
    if cfg.tls_cert is None or cfg.tls_key is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(cfg.tls_cert), str(cfg.tls_key))
    return ctx
