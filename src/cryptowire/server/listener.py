"""The listening socket: every TCP connection counts, whatever it has sent so far.

aiohttp holds a connection that has not finished its request head until the request
handler's keep-alive timer fires (``server.header_timeout_s``, see ``app.create_app``); such
a connection is no WebSocket session yet, so ``server.max_connections`` alone would not see
it. :class:`ConnectionGate` stands between the listening socket and aiohttp's protocol
factory: a new connection that finds the port already holding ``max_connections +
http_headroom`` connections (sessions and plain HTTP alike), or the process near its
open-file limit, is answered ``503`` and closed at once, before it costs a request handler.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import ssl

from aiohttp import web

from cryptowire.server.context import NODE
from cryptowire.server.node import ServerNode
from cryptowire.server.proxied import ProxyHeaderProtocol

log = logging.getLogger("cryptowire.server.listener")

#: Descriptors kept for everything that is not a client (store, Redis pool, sources, files).
FD_RESERVE = 128


def connection_cap(node: ServerNode) -> int:
    """The most connections the port holds at once."""
    cfg = node.settings.server
    cap = cfg.max_connections + cfg.http_headroom
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY:
        cap = min(cap, max(soft - FD_RESERVE, 1))
    return cap


#: How long a refused connection may stay to read its 503 (its own bytes are discarded).
REFUSED_LINGER_S = 1.0


class _Refused(asyncio.Protocol):
    """A connection over the cap: one 503, then closed.

    Closing a socket with unread bytes (the client's request) resets it, and a reset can
    destroy the answer before the client reads it: so the answer is followed by a FIN, what
    the client sends is discarded, and the connection is dropped when the client closes or
    after :data:`REFUSED_LINGER_S`.
    """

    BODY = b"Server full: too many open connections; retry later.\n"
    RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                b"Retry-After: 5\r\nConnection: close\r\nContent-Length: "
                + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(self.RESPONSE)
        if transport.can_write_eof():
            transport.write_eof()
        else:  # TLS: no half-close
            transport.close()
        asyncio.get_running_loop().call_later(REFUSED_LINGER_S, transport.abort)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False  # the client is done: close


class ConnectionGate:
    """A protocol factory for ``loop.create_server``: aiohttp's ``server`` below the cap,
    behind a PROXY header reader when ``server.proxy_protocol`` is on (server/proxied.py)."""

    def __init__(self, server: web.Server, node: ServerNode) -> None:
        self.server = server
        self.node = node
        self.cap = connection_cap(node)
        self.proxy = node.settings.server.proxy_protocol

    def __call__(self) -> asyncio.BaseProtocol:
        # aiohttp's own table of live connections (the public ``connections`` copies it
        # into a list on every call: O(n) per accept).
        if len(self.server._connections) >= self.cap:
            self.node.counters.rejected_connections += 1
            return _Refused()
        handler = self.server()
        return ProxyHeaderProtocol(handler) if self.proxy else handler


class HubSite(web.TCPSite):
    """A ``TCPSite`` whose connections go through the :class:`ConnectionGate` of the
    runner's node (a plain ``TCPSite`` when the application has no node). ``sock``: serve an
    already bound socket instead of ``host``/``port`` (``cryptowire serve`` binds first, so a
    port in use is one line before anything starts)."""

    def __init__(self, runner: web.BaseRunner, host: str | None = None,
                 port: int | None = None, *, sock: socket.socket | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context)
        self._sock = sock

    async def start(self) -> None:
        node = self._runner.app.get(NODE) if isinstance(self._runner, web.AppRunner) \
            else None
        if node is None and self._sock is None:
            await super().start()
            return
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        factory = server if node is None else ConnectionGate(server, node)
        loop = asyncio.get_running_loop()
        if self._sock is not None:
            self._server = await loop.create_server(factory, sock=self._sock,
                                                    ssl=self._ssl_context,
                                                    backlog=self._backlog)
        else:
            self._server = await loop.create_server(
                factory, self._host, self._port, ssl=self._ssl_context,
                backlog=self._backlog, reuse_address=self._reuse_address,
                reuse_port=self._reuse_port)
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
