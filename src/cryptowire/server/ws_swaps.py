"""``GET /swaps`` (and ``/`` on ``evm.swaps_port`` when set): the seed 000 dialect.

Per connection: the API key as a raw text frame (a wrong key gets an error frame and close
4001), then one command (see :mod:`cryptowire.wire.swaps000`). ``swaps``/``burns``
subscribe the session to ``swap:<chain>``/``burn:<chain>`` of every configured chain for as
long as it stays; any number of sessions may. The watchlist commands go through the same
:class:`~cryptowire.sources.evm.tokens.TokenAdmin` as REST and the native ops, and need an
admin key. Replies are written by aiohttp before the session subscribes; after that only
the hub writes, through :class:`BatchingTransport`, which merges one tick's lines into the
seed's batched messages (a reply to a streaming session goes to the socket itself).

As on every path: the Origin check (HTTP 403), the connection limits (per address right
after the upgrade, per key after the key frame; close 4003), the inbound rate (close 4009 on
a flood). A socket whose key frame does not come within ``server.auth_timeout_s`` is
closed with 4001, so unauthenticated sockets cannot pile up.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from aiohttp import web

from cryptowire import closecodes
from cryptowire.core.access import WATCHLIST, authorize
from cryptowire.core.session import Principal, Session
from cryptowire.errors import AuthError, CryptowireError
from cryptowire.logthrottle import log_exception
from cryptowire.server import sockets
from cryptowire.server.auth import principal_for
from cryptowire.server.connection import (
    over_connection_limits,
    socket_transport,
    wrap_transport,
)
from cryptowire.server.context import NODE
from cryptowire.server.node import ServerNode
from cryptowire.server.rest_tokens import admin_for
from cryptowire.wire import swaps000
from cryptowire.wire.dialect import Invalid
from cryptowire.wire.frames import text_frame
from cryptowire.wire.swaps000 import SwapsState

log = logging.getLogger("cryptowire.server.swaps")

_SWAPS_RUNNER = web.AppKey("swaps000_runner", web.AppRunner)


class BatchingTransport:
    """Stands in for a 000 session's transport: turns a tick's lines into batch frames."""

    def __init__(self, inner: asyncio.Transport, encoder: swaps000.Swaps000Encoder) -> None:
        self.inner = inner
        self.encoder = encoder

    def write(self, data: bytes) -> None:
        frames = self.encoder.batch(data)
        if frames:
            self.inner.write(frames)

    def get_write_buffer_size(self) -> int:
        return int(self.inner.get_write_buffer_size())

    def is_closing(self) -> bool:
        return bool(self.inner.is_closing())


class SwapsSocket(sockets.BaseKind[SwapsState]):
    """The 000 dialect's server side; each connection's state is a
    :class:`~cryptowire.wire.swaps000.SwapsState`."""

    dialect: swaps000.Swaps000Dialect

    def __init__(self, node: ServerNode) -> None:
        self.node = node
        self.fanout = node.hub.fanout  # sends, flushes and closes go through the fan-out
        self.dialect = swaps000.Swaps000Dialect()
        self.encoder = self.dialect.encoder()

    async def authenticate(self, request: web.Request) -> Principal:
        return await principal_for(self.node, None)  # the key is the first frame

    def awaits_key(self, principal: Principal) -> bool:
        return True

    def denied(self, principal: Principal) -> None:
        return None

    async def accept(self, session: Session, request: web.Request) -> SwapsState:
        return self.dialect.new_state()

    async def end(self, session: Session, state: SwapsState) -> None:
        return None

    def on_binary(self, session: Session, state: SwapsState) -> None:
        if state.step == "streaming":
            self._ignored(session, state)
        else:
            super().on_binary(session, state)

    def _ignored(self, session: Session, state: SwapsState) -> None:
        """A client frame on a streaming session: said once, then dropped."""
        reply = swaps000.ignored(state)
        if isinstance(reply, Invalid):
            self.send(session, reply.frame)

    def _send(self, session: Session, body: bytes) -> None:
        self.send(session, text_frame(body))

    def send(self, session: Session, frame: bytes) -> None:
        transport = session.transport
        if isinstance(transport, BatchingTransport):
            # Streaming: what the hub queues are event lines for batch(); a reply is a whole
            # frame, so it goes to the socket itself, after the lines queued so far.
            self.fanout.flush(session)
            if not session.closed and not transport.is_closing():
                socket_transport(session).write(frame)
            return
        self.fanout.send(session, frame)

    def _refuse(self, session: Session, body: bytes, code: closecodes.CloseCode) -> None:
        self._send(session, body)
        self.fanout.close(session, code.code, code.meaning)

    def _done(self, session: Session, body: bytes) -> None:
        """Reply and end the connection (one command per connection)."""
        self._send(session, body)
        self.fanout.close(session, 1000, "Done")

    async def on_text(self, session: Session, state: SwapsState, text: str) -> None:
        step = state.step
        try:
            cmd = self.dialect.parse(text, state)
            if isinstance(cmd, swaps000.Key):
                await self._auth(session, state, cmd.key)
            elif isinstance(cmd, swaps000.Command):
                await self._command(session, state, cmd.name)
            elif isinstance(cmd, swaps000.Payload):
                await self._payload(session, cmd.command, cmd.text)
            elif isinstance(cmd, Invalid):
                self.send(session, cmd.frame)
        except Exception:
            log_exception(log, "000 session %s: frame failed in state %s", session.id, step)
            self._send(session, swaps000.error(500, "Internal error; try again."))

    async def _auth(self, session: Session, state: SwapsState, key: str) -> None:
        try:
            session.principal = await principal_for(self.node, key or None)
            if session.principal.anonymous:
                raise AuthError("Send your API key as the first frame.")
        except AuthError as exc:
            self._refuse(session, swaps000.error(401, exc.message), closecodes.UNAUTHORIZED)
            return
        self.node.rekey(session, f"ip:{session.remote}")
        if session.closed:  # the deadline passed while the key was being checked
            return
        reason = over_connection_limits(self.node, session)
        if reason is not None:
            self.node.counters.rejected_connections += 1
            self._refuse(session, swaps000.error(503, reason), closecodes.SERVER_FULL)
            return
        state.step = "command"

    async def _command(self, session: Session, state: SwapsState, command: str) -> None:
        if command in ("swaps", "burns"):
            kind = "swap" if command == "swaps" else "burn"
            channels = [self.node.grammar.parse(f"{kind}:{name}")
                        for name in self.node.grammar.chains]
            denied = next((d for c in channels if (d := authorize(
                session.principal, c, "read", self.node.policy)) is not None), None)
            if denied is not None:
                self._done(session, swaps000.error(403, denied.reason))
                return
            state.step = "streaming"
            # Replies so far go out as they are; data goes through batching.
            self.fanout.flush(session)
            wrap_transport(session, BatchingTransport(socket_transport(session), self.encoder))
            result = await self.node.hub.subscribe(session, channels)
            if not result.accepted:
                log.info("000 session %s: no chain could be watched: %s", session.id,
                         result.rejected)
        elif command in swaps000.WITH_PAYLOAD:
            denied = authorize(session.principal, WATCHLIST,
                               "read" if command == "token_symbol" else "admin",
                               self.node.policy)
            if denied is not None:
                self._done(session, swaps000.error(
                    403, f"'{command}' needs an API key with the admin scope."
                    if command != "token_symbol" else denied.reason))
                return
            state.step = command

    async def _payload(self, session: Session, command: str, text: str) -> None:
        admin = admin_for(self.node)
        try:
            payload = orjson.loads(text)
        except orjson.JSONDecodeError:
            self._done(session, swaps000.error(400, "Expected a JSON object."))
            return
        try:
            if command == "add_token":
                token = await admin.add(payload)
                self._done(session, swaps000.added(token.symbol, token.address))
            elif command == "remove_token":
                self._done(session, swaps000.removed(await admin.remove(payload)))
            else:
                self._done(session, swaps000.symbol(await admin.symbol(payload)))
        except CryptowireError as exc:
            if command == "remove_token":
                self._done(session, swaps000.removed(False))
            else:
                self._done(session, swaps000.add_failed(exc.message))


def setup(app: web.Application, node: ServerNode) -> None:
    kind = SwapsSocket(node)
    sockets.register(app, node, "/swaps", kind)
    port = node.settings.evm.swaps_port
    if port is None:
        return

    async def start_port(_: web.Application) -> None:
        # The seed's own port, where its clients connect to "/".
        side = web.Application()
        side[NODE] = node
        sockets.register(side, node, "/", kind)
        sockets.register(side, node, "/swaps", kind)
        runner = web.AppRunner(side, handle_signals=False, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, node.settings.server.host, port).start()
        app[_SWAPS_RUNNER] = runner

    async def stop_port(_: web.Application) -> None:
        runner = app.get(_SWAPS_RUNNER)
        if runner is not None:
            await runner.cleanup()

    app.on_startup.append(start_port)
    app.on_cleanup.append(stop_port)
