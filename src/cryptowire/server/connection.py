"""The socket side of a session: upgrade, limits, closing, and the read loop.

Every WebSocket path (native ``/ws`` and the seed dialects) upgrades through
:func:`open_session` and reads through :func:`read_loop`, so limits, liveness and closing
behave the same on all of them. Closing writes a close frame with the code straight to the
transport after the session's pending frames, then closes the transport (aborting it if a
slow consumer's buffer does not drain within two seconds).
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import cast

from aiohttp import WSMessage, WSMsgType, web

from cryptowire import closecodes
from cryptowire.clock import now_ms
from cryptowire.closecodes import CLOSE_INTERNAL_ERROR
from cryptowire.core.fanout import Fanout
from cryptowire.core.session import Encoder, Principal, Session, Transport
from cryptowire.logthrottle import log_throttled
from cryptowire.server.context import NODE
from cryptowire.server.limits import TokenBucket
from cryptowire.server.node import ServerNode
from cryptowire.server.proxied import client_address
from cryptowire.wire.dialect import Dialect
from cryptowire.wire.frames import close_frame

log = logging.getLogger("cryptowire.server.connection")

ABORT_AFTER_S = 2.0
_CLOSING = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED})


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
        # Pings come from the node's one Heartbeat (server/heartbeat.py), not a timer per
        # socket; read_loop answers the client's pings and notes its pongs.
        heartbeat=None, autoping=False,
        max_msg_size=cfg.max_frame_bytes + 1, compress=False,
    )
    await ws.prepare(request)
    # The 101's headers are on the wire; the response would keep them for the socket's life.
    ws.headers.clear()
    transport = request.transport
    assert transport is not None
    session = Session(transport, encoder, close_transport, principal=principal,
                      remote=client_address(node, request), connected_ms=now_ms())
    session.seen = asyncio.get_running_loop().time()
    node.track(session)
    return ws, session


#: The socket itself of a session whose dialect put a wrapper in front of it (000's
#: batching, :func:`wrap_transport`); other sessions write to the socket directly.
_SOCKETS: weakref.WeakKeyDictionary[Session, asyncio.Transport] = weakref.WeakKeyDictionary()


def wrap_transport(session: Session, wrapper: Transport) -> asyncio.Transport:
    """Put ``wrapper`` in front of ``session``'s socket (the hub writes through it; close
    and heartbeat frames still go to the socket); returns the socket."""
    socket = socket_transport(session)
    _SOCKETS[session] = socket
    session.transport = wrapper
    return socket


def socket_transport(session: Session) -> asyncio.Transport:
    """The socket's own transport of a session: the one open_session put there, even when a
    dialect wrapped it since (:func:`wrap_transport`)."""
    socket = _SOCKETS.get(session)
    return socket if socket is not None else cast(asyncio.Transport, session.transport)


def close_transport(session: Session, code: int, reason: str) -> None:
    """Every socket session's closer (one function for all: nothing per connection): the
    close frame straight after what was written, then close, and abort if it hangs."""
    transport = socket_transport(session)  # the close frame goes to the socket itself
    if transport.is_closing():
        return
    transport.write(close_frame(code, reason))
    transport.close()
    asyncio.get_running_loop().call_later(ABORT_AFTER_S, transport.abort)


class guarded:  # noqa: N801 - used as ``async with guarded(node, session)``, like a function
    """Wrap a handler's work from :func:`open_session` on: ``session`` is untracked however
    the handler ends (:func:`read_loop` untracks too; :meth:`ServerNode.untrack` is idempotent).

    An exception before or around the read loop (a failing auto-subscribe, say) is logged
    and closes the socket with 1011 instead of leaking the session and its connection count.
    A slotted class, not ``contextlib.asynccontextmanager``: it is held for the whole life
    of every connection, and a suspended generator frame would cost each one ~0.3 KiB.
    """

    __slots__ = ("node", "session")

    def __init__(self, node: ServerNode, session: Session) -> None:
        self.node = node
        self.session = session

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> bool:
        session = self.session
        try:
            if exc is not None and isinstance(exc, Exception):
                # Throttled: a client may reconnect and fail the same way again and again
                # (sys.exc_info() is ``exc`` here).
                log_throttled(log, logging.ERROR, "session %s failed in its handler",
                              session.id, exc_info=True)
                self.node.hub.fanout.close(session, CLOSE_INTERNAL_ERROR, "Internal error")
                return True  # handled: the socket is closed with 1011
            return False
        finally:
            await self.node.untrack(session)


def over_connection_limits(node: ServerNode, session: Session) -> str | None:
    """Why ``session`` may not stay (total or per-key limit), or ``None``."""
    cfg = node.settings.server
    if len(node.hub.sessions) > cfg.max_connections:
        return f"Server full: {cfg.max_connections} connections."
    if session.principal.key_id is None:
        share = math.ceil(cfg.max_connections * cfg.unauthenticated_share)
        if node.unauthenticated > share:
            return (f"Server full for connections without an API key ({share}); "
                    "connect with a key.")
    if node.connections_by_key.get(node.key_of(session), 0) > cfg.max_connections_per_key:
        who = "this API key" if session.principal.key_id else "this address"
        return f"Too many connections for {who} (max {cfg.max_connections_per_key})."
    return None


def refuse(fanout: Fanout, session: Session, error_frame: bytes,
           code: closecodes.CloseCode) -> None:
    fanout.send(session, error_frame)
    fanout.close(session, code.code, code.meaning)


def inbound_ok(node: ServerNode, session: Session, dialect: Dialect,
               send: Callable[[Session, bytes], None]) -> bool:
    """Take one client message from the session's inbound rate: ``False`` (and the
    dialect's answer sent) when it is over; a flood closes the session with 4009."""
    bucket = session.inbound
    if not isinstance(bucket, TokenBucket) or bucket.allow():
        return True
    node.counters.rate_limited += 1
    if bucket.flooding:
        node.counters.rate_limit_closes += 1
        frame = dialect.flooding()
        if frame is not None:
            send(session, frame)
        node.hub.fanout.close(session, closecodes.RATE_LIMITED.code,
                              closecodes.RATE_LIMITED.meaning)
    else:
        frame = dialect.dropped(int(bucket.rate))
        if frame is not None:
            send(session, frame)
    return False


async def ignore_text(session: Session, text: str) -> None:
    """``on_text`` of a socket whose client messages are ignored (refused, or 002)."""
    return None


def ignore_binary(session: Session) -> None:
    return None


async def read_loop(
    node: ServerNode, ws: web.WebSocketResponse, session: Session,
    on_text: Callable[[Session, str], Awaitable[None]],
    on_binary: Callable[[Session], None],
) -> None:
    """Feed client text frames to ``on_text`` until the socket closes, then untrack.

    A handler may instead run this loop in its own frame (``ws_native`` does: one coroutine
    frame less per connection, ~0.35 KiB): ``while await on_frame(...)`` over
    ``ws.receive()``, in a ``try`` whose ``finally`` untracks.
    """
    try:
        while await on_frame(node, ws, session, await ws.receive(), on_text, on_binary):
            pass
    finally:
        await node.untrack(session)


async def on_frame(
    node: ServerNode, ws: web.WebSocketResponse, session: Session, msg: WSMessage,
    on_text: Callable[[Session, str], Awaitable[None]],
    on_binary: Callable[[Session], None],
) -> bool:
    """Handle one client frame; ``False`` when the socket is done."""
    if msg.type in _CLOSING or session.closed:
        return False
    session.seen = asyncio.get_running_loop().time()  # any frame, a pong too, is a sign of life
    if msg.type == WSMsgType.TEXT:
        node.counters.messages_in += 1
        await on_text(session, msg.data)
    elif msg.type == WSMsgType.PING:
        if client_ping_allowed(node, session):
            await ws.pong(msg.data)
    elif msg.type == WSMsgType.BINARY:
        node.counters.messages_in += 1
        on_binary(session)
    elif msg.type == WSMsgType.ERROR:
        log.info("session %s closed with error: %s", session.id, ws.exception())
        return False
    return True


def client_ping_allowed(node: ServerNode, session: Session) -> bool:
    """A client's PING frame is a message like any other for the session's inbound rate: over
    it, it gets no pong; a flood of them closes the session with 4009."""
    bucket = session.inbound
    if not isinstance(bucket, TokenBucket) or bucket.allow():
        return True
    node.counters.rate_limited += 1
    if bucket.flooding and not session.closed:
        node.counters.rate_limit_closes += 1
        node.hub.fanout.close(session, closecodes.RATE_LIMITED.code,
                              "Flooding with pings: closing.")
    return False
