"""What every exchange replay peer shares: an aiohttp server on ``127.0.0.1`` (a free port,
or the one asked for), the venue's book feeds closed with it, and ``async with``.

A peer subclasses :class:`VenueServer`, sets ``port``, ``books`` and ``connections`` (each
with ``ws``, ``request`` and ``streams``: stream name -> its task) in its constructor and adds
its routes in :meth:`routes`. The faults every peer has live here: :meth:`drop` (TCP goes
away) and :meth:`stall` (nothing is sent)."""

from __future__ import annotations

import socket
from typing import Any, Self

from aiohttp import web


class VenueServer:
    port: int
    books: dict[Any, Any]
    connections: Any  # a collection of the peer's connection records
    _runner: web.AppRunner | None = None
    _stalled = False

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def drop(self) -> None:
        """Abort every open connection: TCP goes away without a close frame."""
        for conn in list(self.connections):
            self._stop_streams(conn)
            transport = conn.request.transport
            if transport is not None:
                transport.abort()

    def stall(self, stalled: bool = True) -> None:
        """While stalled, send nothing at all (no data, no replies, no pongs)."""
        self._stalled = stalled

    async def _send(self, conn: Any, text: str, *, force: bool = False) -> bool:
        """Send ``text`` on ``conn``; False once it is closed (a stall drops it silently)."""
        if self._stalled and not force:
            return True
        if conn.ws.closed:
            return False
        try:
            await conn.ws.send_str(text)
        except (ConnectionError, RuntimeError):
            return False
        return True

    def _stop_streams(self, conn: Any) -> None:
        for task in conn.streams.values():
            task.cancel()
        conn.streams.clear()

    async def start(self) -> Self:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def close(self) -> None:
        self.drop()
        for feed in self.books.values():
            await feed.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
