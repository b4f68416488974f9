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

from cryptowire.core.access import WATCHLIST, authorize
from cryptowire.core.hub import Session
from cryptowire.core.node import Node
from cryptowire.errors import AuthError, CryptowireError
from cryptowire.logthrottle import log_exception
from cryptowire.server import browser
from cryptowire.server.auth import principal_for
from cryptowire.server.connection import (
    guarded,
    inbound_ok,
    open_session,
    over_connection_limits,
    read_loop,
    socket_transport,
    wrap_transport,
)
from cryptowire.server.context import NODE
from cryptowire.server.limits import TokenBucket
from cryptowire.server.rest_tokens import admin_for
from cryptowire.wire import closecodes, swaps000
from cryptowire.wire.frames import text_frame

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


class SwapsDialect:
    """The per-connection state machine of the 000 dialect."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.dialect = swaps000.Swaps000Dialect()
        self.encoder = self.dialect.encoder()
        # session id -> "key" | "command" | <command waiting for its JSON> | "streaming"
        self.state: dict[int, str] = {}
        self.buckets: dict[int, TokenBucket] = {}
        self._deadlines: dict[int, asyncio.TimerHandle] = {}
        # streaming sessions already told that their frames are ignored (told once)
        self._told: set[int] = set()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        node = self.node
        refused = browser.refusal(node, request)
        if refused is not None:
            return refused
        ws, session = await open_session(request, self.encoder)
        async with guarded(node, session):
            reason = over_connection_limits(node, session)  # per address: no key yet
            if reason is not None:
                node.counters.rejected_connections += 1
                self._refuse(session, swaps000.error(503, reason), closecodes.SERVER_FULL)
            else:
                self.state[session.id] = "key"
                self.buckets[session.id] = session.inbound = \
                    TokenBucket(node.settings.server.max_inbound_rate)  # pings count too
                self._deadlines[session.id] = asyncio.get_running_loop().call_later(
                    node.settings.server.auth_timeout_s, self._auth_expired, session)
            try:
                await read_loop(node, ws, session, self.on_text, self.on_binary)
            finally:
                deadline = self._deadlines.pop(session.id, None)
                if deadline is not None:
                    deadline.cancel()
                self.state.pop(session.id, None)
                self.buckets.pop(session.id, None)
                self._told.discard(session.id)
        return ws

    def _auth_expired(self, session: Session) -> None:
        self._deadlines.pop(session.id, None)
        if self.state.get(session.id) == "key" and not session.closed:
            self._refuse(session, swaps000.error(
                401, f"No API key within {self.node.settings.server.auth_timeout_s:g} s: "
                     "send it as the first frame."),
                closecodes.UNAUTHORIZED)

    def on_binary(self, session: Session) -> None:
        if not inbound_ok(self.node, session, self.dialect, self._send_frame):
            return
        if self.state.get(session.id) == "streaming":
            self._ignored(session)
        else:
            self._send_frame(session, self.dialect.binary())

    def _ignored(self, session: Session) -> None:
        """A client frame on a streaming session: said once, then dropped."""
        if session.id not in self._told:
            self._told.add(session.id)
            self._send(session, swaps000.error(
                400, "This connection streams; client frames are ignored."))

    @classmethod
    def _send(cls, session: Session, body: bytes) -> None:
        cls._send_frame(session, text_frame(body))

    @staticmethod
    def _send_frame(session: Session, frame: bytes) -> None:
        transport = session.transport
        if isinstance(transport, BatchingTransport):
            # Streaming: what the hub queues are event lines for batch(); a reply is a whole
            # frame, so it goes to the socket itself, after the lines queued so far.
            session.flush()
            if not session.closed and not transport.is_closing():
                transport.inner.write(frame)
            return
        session.send(frame)

    def _refuse(self, session: Session, body: bytes, code: closecodes.CloseCode) -> None:
        self._send(session, body)
        session.close(code.code, code.meaning)

    def _done(self, session: Session, body: bytes) -> None:
        """Reply and end the connection (one command per connection)."""
        self._send(session, body)
        session.close(1000, "Done")

    async def on_text(self, session: Session, text: str) -> None:
        if not inbound_ok(self.node, session, self.dialect, self._send_frame):
            return
        state = self.state.get(session.id)
        try:
            if state == "key":
                await self._auth(session, text.strip())
            elif state == "command":
                await self._command(session, swaps000.command(text.strip()))
            elif state in swaps000.WITH_PAYLOAD:
                await self._payload(session, state, text)
            elif state == "streaming":
                self._ignored(session)  # the seed's clients send nothing more
        except Exception:
            log_exception(log, "000 session %s: frame failed in state %s", session.id, state)
            self._send(session, swaps000.error(500, "Internal error; try again."))

    async def _auth(self, session: Session, key: str) -> None:
        try:
            session.principal = await principal_for(self.node, key or None)
            if session.principal.anonymous:
                raise AuthError("Send your API key as the first frame.")
        except AuthError as exc:
            self._refuse(session, swaps000.error(401, exc.message), closecodes.UNAUTHORIZED)
            return
        self.node.rekey(session, f"ip:{session.remote}")
        deadline = self._deadlines.pop(session.id, None)
        if deadline is not None:
            deadline.cancel()
        if session.closed:  # the deadline passed while the key was being checked
            return
        reason = over_connection_limits(self.node, session)
        if reason is not None:
            self.node.counters.rejected_connections += 1
            self._refuse(session, swaps000.error(503, reason), closecodes.SERVER_FULL)
            return
        self.state[session.id] = "command"

    async def _command(self, session: Session, command: str) -> None:
        if command in ("swaps", "burns"):
            kind = "swap" if command == "swaps" else "burn"
            channels = [self.node.grammar.parse(f"{kind}:{name}")
                        for name in self.node.grammar.chains]
            denied = next((d for c in channels if (d := authorize(
                session.principal, c, "read", self.node.policy)) is not None), None)
            if denied is not None:
                self._done(session, swaps000.error(403, denied.reason))
                return
            self.state[session.id] = "streaming"
            session.flush()  # replies so far go out as they are; data goes through batching
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
            self.state[session.id] = command
        else:
            self._send(session, swaps000.unknown_command(command))

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


def setup(app: web.Application, node: Node) -> None:
    dialect = SwapsDialect(node)
    app.router.add_get("/swaps", dialect.handle)
    port = node.settings.evm.swaps_port
    if port is None:
        return

    async def start_port(_: web.Application) -> None:
        # The seed's own port, where its clients connect to "/".
        side = web.Application()
        side[NODE] = node
        side.router.add_get("/", dialect.handle)
        side.router.add_get("/swaps", dialect.handle)
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
