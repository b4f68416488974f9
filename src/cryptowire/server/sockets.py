"""The one socket handler: every WebSocket kind is a :class:`SocketKind` registered with
:func:`register`, and :func:`serve` does for all of them what a socket needs whatever its
dialect: the Origin/Host refusal (server/browser.py), the key and its refusal (close 4001),
the connection limits (4003), the inbound rate (:func:`~cryptowire.server.connection.inbound_ok`,
4009 on a flood), binary frames, and closing (server/connection.py: limits on frame size,
liveness through the node's heartbeat, 1011 on a handler failure).

A kind brings its :class:`~cryptowire.wire.dialect.Dialect` (the frames, sans-I/O) and what
its accepted sessions do: :meth:`SocketKind.accept` (greeting, auto-subscribe, access
refusal through :func:`cryptowire.core.access.authorize`) returns the session's dialect state,
a plain object handed back to :meth:`SocketKind.on_text` and :meth:`SocketKind.end`. A new
dialect is a ``wire/`` module plus one ``register(app, node, "/path", Kind(node))`` line
(tests/integration/server/test_socket_kinds.py registers an echo dialect that way).
"""

from __future__ import annotations

import asyncio
from typing import Generic, Protocol, TypeVar, cast

from aiohttp import web

from cryptowire import closecodes
from cryptowire.core.fanout import Fanout
from cryptowire.core.session import Encoder, Principal, Session
from cryptowire.errors import AuthError
from cryptowire.server import browser
from cryptowire.server.auth import principal_for, request_key
from cryptowire.server.connection import (
    guarded,
    ignore_binary,
    ignore_text,
    inbound_ok,
    on_frame,
    open_session,
    over_connection_limits,
    read_loop,
)
from cryptowire.server.context import NODE
from cryptowire.server.limits import TokenBucket
from cryptowire.server.node import ServerNode
from cryptowire.wire.dialect import Dialect

S = TypeVar("S")


class SocketKind(Protocol[S]):
    """The server side of one socket kind."""

    @property
    def dialect(self) -> Dialect:
        """The kind's frames (sans-I/O)."""
        ...

    @property
    def encoder(self) -> Encoder:
        """The publication framer of its sessions (one for all of them)."""
        ...

    async def authenticate(self, request: web.Request) -> Principal | web.StreamResponse:
        """Who is upgrading (raise :class:`~cryptowire.errors.AuthError` to refuse after the
        upgrade with 4001), or the HTTP answer that refuses the upgrade itself
        (:class:`BaseKind` reads the API key of the request)."""
        ...

    def denied(self, principal: Principal) -> str | None:
        """Why ``principal`` may not use this socket at all (from
        :func:`cryptowire.core.access.authorize`), or ``None``: refused with 4001 before
        the limits, like a wrong key."""
        ...

    def awaits_key(self, principal: Principal) -> bool:
        """Whether ``principal`` must present a key in-band within ``server.auth_timeout_s``
        (closed with 4001 otherwise)."""
        ...

    async def accept(self, session: Session, request: web.Request) -> S:
        """Start an admitted session (within its limits, the inbound rate set); close it
        to refuse. Returns the session's dialect state."""
        ...

    async def on_text(self, session: Session, state: S, text: str) -> None:
        """One client text frame, within the inbound rate."""
        ...

    def on_binary(self, session: Session, state: S) -> None:
        """One client binary frame, within the inbound rate."""
        ...

    async def end(self, session: Session, state: S) -> None:
        """The session is over (however it ended)."""
        ...

    def send(self, session: Session, frame: bytes) -> None:
        """Send a whole frame of the dialect's (a reply, not a publication)."""
        ...


class BaseKind(Generic[S]):
    """The defaults of a :class:`SocketKind`: the key comes with the upgrade request
    (``X-API-Key``, ``api_key``, bearer; none: anonymous), no in-band key, binary frames
    get the dialect's answer, frames go out through the node's fan-out."""

    dialect: Dialect
    node: ServerNode

    async def authenticate(self, request: web.Request) -> Principal | web.StreamResponse:
        return await principal_for(request.app[NODE], request_key(request))

    def awaits_key(self, principal: Principal) -> bool:
        return False

    def on_binary(self, session: Session, state: S) -> None:
        frame = self.dialect.binary()
        if frame is not None:
            self.send(session, frame)

    def send(self, session: Session, frame: bytes) -> None:
        self.node.hub.fanout.send(session, frame)


def refuse(fanout: Fanout, session: Session, dialect: Dialect, code: str, message: str,
           close: closecodes.CloseCode) -> None:
    """The dialect's refusal frame, then ``close``; a dialect without one says why in the
    close frame's reason instead."""
    frame = dialect.refused(code, message)
    if frame is None:
        fanout.close(session, close.code, message)
        return
    fanout.send(session, frame)
    fanout.close(session, close.code, close.meaning)


class Served(Generic[S]):
    """One registered kind: :meth:`handle` is its route; the read callbacks are bound once
    here, not per connection."""

    def __init__(self, node: ServerNode, kind: SocketKind[S]) -> None:
        self.node = node
        self.kind = kind
        self.states: dict[Session, S] = {}

    async def handle(self, request: web.Request) -> web.StreamResponse:
        node, kind = self.node, self.kind
        refused = browser.refusal(node, request)
        if refused is not None:
            return refused
        principal: Principal | None = None
        try:
            who = await kind.authenticate(request)
            if isinstance(who, web.StreamResponse):
                return who
            principal = who
            code, why = "UNAUTHORIZED", kind.denied(principal)
        except AuthError as exc:
            code, why = exc.code, exc.message
        ws, session = await open_session(request, kind.encoder, principal)
        async with guarded(node, session):
            if why is not None:
                refuse(node.hub.fanout, session, kind.dialect, code, why,
                       closecodes.UNAUTHORIZED)
                await read_loop(node, ws, session, ignore_text, ignore_binary)
                return ws
            reason = over_connection_limits(node, session)
            if reason is not None:
                node.counters.rejected_connections += 1
                refuse(node.hub.fanout, session, kind.dialect, "LIMIT_EXCEEDED", reason,
                       closecodes.SERVER_FULL)
                await read_loop(node, ws, session, ignore_text, ignore_binary)
                return ws
            session.inbound = TokenBucket(node.settings.server.max_inbound_rate)
            deadline = None if not kind.awaits_key(session.principal) \
                else asyncio.get_running_loop().call_later(
                    node.settings.server.auth_timeout_s, self.key_expired, session)
            state = await kind.accept(session, request)
            if state is not None:  # stateless kinds keep no entry per connection
                self.states[session] = state
            try:  # read_loop, in this frame (see its docstring)
                on_text, on_binary = self.on_text, self.on_binary
                while await on_frame(node, ws, session, await ws.receive(), on_text, on_binary):
                    pass
            finally:
                if deadline is not None:
                    deadline.cancel()
                self.states.pop(session, None)
                await node.untrack(session)
                await kind.end(session, state)
        return ws

    def key_expired(self, session: Session) -> None:
        if session.closed or session.principal.key_id is not None:  # authenticated since
            return
        timeout = self.node.settings.server.auth_timeout_s
        frame = self.kind.dialect.no_key(timeout)
        if frame is None:
            self.node.hub.fanout.close(session, closecodes.UNAUTHORIZED.code,
                                       f"No API key within {timeout:g} s")
            return
        self.kind.send(session, frame)
        self.node.hub.fanout.close(session, closecodes.UNAUTHORIZED.code,
                                   closecodes.UNAUTHORIZED.meaning)

    async def on_text(self, session: Session, text: str) -> None:
        if inbound_ok(self.node, session, self.kind.dialect, self.kind.send):
            await self.kind.on_text(session, cast(S, self.states.get(session)), text)

    def on_binary(self, session: Session) -> None:
        if inbound_ok(self.node, session, self.kind.dialect, self.kind.send):
            self.kind.on_binary(session, cast(S, self.states.get(session)))


def register(app: web.Application, node: ServerNode, path: str, kind: SocketKind[S]) -> None:
    """Serve ``kind`` on ``GET path``."""
    app.router.add_get(path, Served(node, kind).handle)
