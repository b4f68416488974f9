"""JSON replies shared by the REST handlers: a body, or a problem ``{"error": {"code",
"message"}}`` with the wire error codes. Imports nothing else of the server."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web


def problem(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status,
                             dumps=lambda o: orjson.dumps(o).decode())


def json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status,
                        content_type="application/json")
