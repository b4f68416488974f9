"""``/echo``: a WebSocket echo for conformance suites (Autobahn), only when
``server.echo_endpoint`` is on. It uses the hub's real server settings."""

from __future__ import annotations

from aiohttp import WSMsgType, web

from cryptowire.server.context import NODE


async def echo(request: web.Request) -> web.WebSocketResponse:
    cfg = request.app[NODE].settings.server
    ws = web.WebSocketResponse(max_msg_size=cfg.max_frame_bytes, compress=False)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


def setup(app: web.Application) -> None:
    app.router.add_get("/echo", echo)
