"""``cryptowire serve``: bind the port first, then start the node, then say where it listens.

A port in use, an unreachable store or bus end the command with one line on stderr and exit
code 2, before any source starts; SIGTERM/SIGINT drain the connections and log how many.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

from cryptowire.errors import CryptowireError
from cryptowire.redaction import hide_password
from cryptowire.settings import Settings

if TYPE_CHECKING:
    from aiohttp import web

log = logging.getLogger("cryptowire.cli")

#: How long ``serve`` waits for Redis to answer a PING before giving up at start.
BUS_PROBE_TIMEOUT_S = 5.0


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (not yet listening); one-line exit 2 when it cannot."""
    from cryptowire.cli.console import fail

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}")
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {port} is in use; set server.port or --port")
        fail(f"cannot listen on {host}:{port}: {exc.strerror}")
    return sock


async def _probe_bus(url: str) -> str | None:
    """None when the Redis bus at ``url`` answers a PING, else why not."""
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=BUS_PROBE_TIMEOUT_S,
                            socket_timeout=BUS_PROBE_TIMEOUT_S)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure is the same answer: unreachable
        return str(exc) or type(exc).__name__
    finally:
        await client.aclose()
    return None


def _log_drain(app: web.Application, open_sessions: Callable[[], int], code: int) -> None:
    """At shutdown, log how many sessions were open (and so closed with ``code``)."""
    open_at_stop: list[int] = []

    async def count(_: web.Application) -> None:
        open_at_stop.append(open_sessions())

    async def report(_: web.Application) -> None:
        log.info("shutting down: closed %d sessions with %d",
                 open_at_stop[0] if open_at_stop else 0, code)

    app.on_shutdown.insert(0, count)
    app.on_shutdown.append(report)


def _banner(settings: Settings, sock: socket.socket) -> str:
    """Where the hub listens: the line ``serve`` prints once it is up."""
    scheme = "https" if settings.server.tls_cert else "http"
    ws_scheme = "wss" if settings.server.tls_cert else "ws"
    base = f"{settings.server.host}:{sock.getsockname()[1]}"
    return (f"cryptowire listening on {scheme}://{base}  (WebSocket: {ws_scheme}://{base}/ws, "
            f"dashboard: {scheme}://{base}/, API docs: {scheme}://{base}/docs)")


async def _serve(app: web.Application, sock: socket.socket, tls: ssl.SSLContext | None,
                 grace_s: float, listening: Callable[[], None]) -> None:
    """Run ``app`` on ``sock`` until SIGINT/SIGTERM; ``listening`` once the site is up."""
    # Not web.run_app: its site has no connection gate, no PROXY header reader
    # (server/listener.py) and cannot serve the socket bound above.
    from aiohttp import web

    from cryptowire.server.listener import HubSite

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=grace_s)
    await runner.setup()  # starts the node
    try:
        await HubSite(runner, sock=sock, ssl_context=tls).start()
        listening()
        await stop.wait()
    finally:
        await runner.cleanup()


def run_hub(settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT; exit 2 with one line when the hub cannot start."""
    from cryptowire.app.node import Node
    from cryptowire.cli.console import console, fail
    from cryptowire.closecodes import CLOSE_GOING_AWAY
    from cryptowire.server.app import create_app, ssl_context

    if settings.bus.url.startswith(("redis://", "rediss://", "unix://")):
        reason = asyncio.run(_probe_bus(settings.bus.url))
        if reason is not None:
            fail(f"cannot reach the bus {hide_password(settings.bus.url)}: {reason}")
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        pass
    node = Node(settings)
    try:
        tls = ssl_context(node)
    except (OSError, ssl.SSLError) as exc:
        fail(f"cannot load server.tls_cert / server.tls_key: {exc}")
    sock = bind(settings.server.host, settings.server.port)
    app = create_app(node)
    _log_drain(app, lambda: len(node.hub.sessions), CLOSE_GOING_AWAY)

    def listening() -> None:  # once the node started and the site is up
        console.print(_banner(settings, sock), soft_wrap=True)

    try:
        asyncio.run(_serve(app, sock, tls, settings.server.shutdown_grace_s, listening))
    except CryptowireError as exc:
        fail(exc.message)
    finally:
        sock.close()
