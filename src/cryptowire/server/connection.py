"""The socket side of a session: upgrade, limits, closing, and the read loop.

Every WebSocket path (native ``/ws`` and the seed dialects) upgrades through
:func:`open_session` and reads through :func:`read_loop`, so limits, liveness and closing
behave the same on all of them. Closing writes a close frame with the code straight to the
transport after the session's pending frames, then closes the transport (aborting it if a
slow consumer's buffer does not drain within two seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import WSMsgType, web

from cryptowire.core.hub import Encoder, Principal, Session
from cryptowire.core.node import Node
from cryptowire.events import now_ms
from cryptowire.server.context import NODE
from cryptowire.wire import closecodes
from cryptowire.wire.frames import close_frame

log = logging.getLogger("cryptowire.server.connection")

ABORT_AFTER_S = 2.0
#: RFC 6455 "internal error": a handler failed unexpectedly (see :func:`guarded`).
CLOSE_INTERNAL_ERROR = 1011


def origin_allowed(node: Node, request: web.Request) -> bool:
    allowed = node.settings.server.allowed_origins
    origin = request.headers.get("Origin")
    return not allowed or origin is None or origin in allowed


def remote_of(request: web.Request) -> str:
    return request.remote or "unknown"


async def open_session(
    request: web.Request, encoder: Encoder, principal: Principal | None = None,
) -> tuple[web.WebSocketResponse, Session]:
    """Upgrade ``request`` and register a session (the caller checks limits after, and
    wraps everything from here to the end of :func:`read_loop` in :func:`guarded`)."""
    node = request.app[NODE]
    cfg = node.settings.server
    ws = web.WebSocketResponse(
        # aiohttp refuses a message whose size is >= max_msg_size; the setting is the
        # largest message accepted, hence + 1.
        heartbeat=cfg.ping_interval_s, max_msg_size=cfg.max_frame_bytes + 1, compress=False,
    )
    await ws.prepare(request)
    transport = request.transport
    assert transport is not None
    loop = asyncio.get_running_loop()

    def close(code: int, reason: str) -> None:
        if transport.is_closing():
            return
        transport.write(close_frame(code, reason))
        transport.close()
        loop.call_later(ABORT_AFTER_S, transport.abort)

    session = Session(node.hub, transport, encoder, close, principal=principal,
                      remote=remote_of(request), connected_ms=now_ms())
    node.track(session)
    return ws, session


@contextlib.asynccontextmanager
async def guarded(node: Node, session: Session) -> AsyncIterator[None]:
    """Wrap a handler's work from :func:`open_session` on: ``session`` is untracked however
    the handler ends (:func:`read_loop` untracks too; :meth:`Node.untrack` is idempotent).

    An exception before or around the read loop (a failing auto-subscribe, say) is logged
    and closes the socket with 1011 instead of leaking the session and its connection count.
    """
    try:
        yield
    except Exception:
        log.exception("session %s failed in its handler", session.id)
        session.close(CLOSE_INTERNAL_ERROR, "Internal error")
    finally:
        await node.untrack(session)


def over_connection_limits(node: Node, session: Session) -> str | None:
    """Why ``session`` may not stay (total or per-key limit), or ``None``."""
    cfg = node.settings.server
    if len(node.hub.sessions) > cfg.max_connections:
        return f"Server full: {cfg.max_connections} connections."
    if node.connections_by_key.get(node.key_of(session), 0) > cfg.max_connections_per_key:
        who = "this API key" if session.principal.key_id else "this address"
        return f"Too many connections for {who} (max {cfg.max_connections_per_key})."
    return None


def refuse(session: Session, error_frame: bytes, code: closecodes.CloseCode) -> None:
    session.send(error_frame)
    session.close(code.code, code.meaning)


async def read_loop(
    node: Node, ws: web.WebSocketResponse, session: Session,
    on_text: Callable[[Session, str], Awaitable[None]],
    on_binary: Callable[[Session], None],
) -> None:
    """Feed client text frames to ``on_text`` until the socket closes, then untrack."""
    try:
        async for msg in ws:
            if session.closed:
                break
            if msg.type == WSMsgType.TEXT:
                node.counters.messages_in += 1
                await on_text(session, msg.data)
            elif msg.type == WSMsgType.BINARY:
                node.counters.messages_in += 1
                on_binary(session)
            elif msg.type == WSMsgType.ERROR:
                log.info("session %s closed with error: %s", session.id, ws.exception())
                break
    finally:
        await node.untrack(session)
