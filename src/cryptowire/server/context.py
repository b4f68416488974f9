"""Typed application keys shared by the server modules."""

from __future__ import annotations

from aiohttp import web

from cryptowire.app.node import Node

NODE = web.AppKey("node", Node)
