"""Typed application keys shared by the server modules."""

from __future__ import annotations

from aiohttp import web

from cryptowire.server.node import ServerNode

#: The node the application serves (typed by the protocol the server declares, so the
#: server never imports the application's ``Node``).
NODE: web.AppKey[ServerNode] = web.AppKey("node")
