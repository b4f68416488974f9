"""What every exchange replay peer shares: an aiohttp server on ``127.0.0.1`` (a free port,
or the one asked for), the venue's book feeds closed with it, and ``async with``.

A peer subclasses :class:`VenueServer`, sets ``port`` and ``books`` in its constructor and
adds its routes in :meth:`routes`; :meth:`drop` aborts its connections (each peer knows its
own)."""

from __future__ import annotations

import socket
from typing import Any, Self

from aiohttp import web


class VenueServer:
    port: int
    books: dict[Any, Any]
    _runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def drop(self) -> None:
        raise NotImplementedError

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
