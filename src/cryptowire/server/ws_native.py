"""``GET /ws``: the native protocol (and the seed 003 Mudrex dialect, which is the same ops).

Each client frame goes through the session's rate limit, then the dialect's ``parse`` (a
:class:`~cryptowire.wire.native.Request`, or the error reply to send), then the op. Every
failure is answered with ``{"op":"error","code",...}`` and the session stays open, except a
wrong key (4001), a flood (4009) and the connection limits (4003).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from cryptowire import closecodes
from cryptowire.core.access import CHANNELS, authorize, check
from cryptowire.core.channels import Channel
from cryptowire.core.hub import SubscribeResult
from cryptowire.core.session import Principal, Session
from cryptowire.errors import AuthError, ChannelError, CryptowireError, ProtocolError
from cryptowire.logthrottle import log_exception
from cryptowire.server import sockets
from cryptowire.server.auth import principal_for
from cryptowire.server.connection import over_connection_limits, refuse
from cryptowire.server.node import ServerNode
from cryptowire.server.publishing import publish_items
from cryptowire.server.rest_tokens import native_token_op
from cryptowire.server.ws_services import ServicesProtocol
from cryptowire.wire import mudrex003, native
from cryptowire.wire.dialect import Invalid
from cryptowire.wire.native import NativeDialect, Request

log = logging.getLogger("cryptowire.server.ws")


class NativeSocket(sockets.BaseKind[None]):
    """Handles the ops of one node's native sessions."""

    dialect: NativeDialect

    def __init__(self, node: ServerNode, dialect: NativeDialect) -> None:
        self.node = node
        self.fanout = node.hub.fanout  # sends, flushes and closes go through the fan-out
        self.dialect = dialect
        self.encoder = dialect.encoder()
        #: Seed 004 clients send ``{"action": ...}`` here; set by :func:`setup`, it
        #: returns True when it handled the frame.
        self.action_handler: Callable[[Session, str], Awaitable[bool]] | None = None
        #: Sends a first frame to every accepted session; set by :func:`setup` only
        #: when ``server.greet_004`` is on (the seed 004 ``connection_established``).
        self.greeter: Callable[[Session], None] | None = None

    def awaits_key(self, principal: Principal) -> bool:
        """Keyless where keyless may not read: it has ``auth_timeout_s`` to send "auth"."""
        return authorize(principal, CHANNELS, "read", self.node.policy) is not None

    def denied(self, principal: Principal) -> None:
        return None  # each op checks its own right (an "auth" op may come first)

    async def accept(self, session: Session, request: web.Request) -> None:
        if self.greeter is not None:
            self.greeter(session)

    async def end(self, session: Session, state: None) -> None:
        return None

    async def on_text(self, session: Session, state: None, text: str) -> None:
        rid: Any = None
        try:
            if self.action_handler is not None and '"action"' in text \
                    and await self.action_handler(session, text):
                return
            req = self.dialect.parse(text, state)
            if isinstance(req, Invalid):
                self.node.counters.errors_sent += 1
                self.fanout.send(session, req.frame)
                return
            rid = req.id
            await self.dispatch(session, req)
        except (ProtocolError, AuthError) as exc:
            self.node.counters.errors_sent += 1
            self.fanout.send(session, native.error(exc.code, exc.message, rid))
        except CryptowireError as exc:
            self.node.counters.errors_sent += 1
            self.fanout.send(session, native.error(exc.code, exc.message, rid))
        except Exception:
            log_exception(log, "op failed on session %s", session.id)
            self.fanout.send(session, native.error("INTERNAL_ERROR", "Internal error; try again.",
                                                   rid))

    async def dispatch(self, session: Session, req: Request) -> None:
        op = req.op
        if op == "ping":
            self.fanout.send(session, native.pong(req.id))
        elif op == "subscribe":
            await self.subscribe(session, req)
        elif op == "unsubscribe":
            await self.unsubscribe(session, req)
        elif op == "auth":
            await self.auth(session, req)
        elif op == "channels":
            self.fanout.send(session, native.reply(req.id, {
                "op": "channels", "success": True, "data": self.node.grammar.catalog()}))
        elif op == "publish":
            await self.publish(session, req)
        elif op in native.TOKEN_OPS:
            await native_token_op(self.node, session, req)

    async def auth(self, session: Session, req: Request) -> None:
        try:
            principal = await principal_for(self.node, req.args[0])
        except AuthError as exc:
            refuse(self.fanout, session, native.error(exc.code, exc.message, req.id),
                   closecodes.UNAUTHORIZED)
            return
        old_key = self.node.key_of(session)
        session.principal = principal
        self.node.rekey(session, old_key)
        reason = over_connection_limits(self.node, session)
        if reason is not None:
            refuse(self.fanout, session, native.error("LIMIT_EXCEEDED", reason, req.id),
                   closecodes.SERVER_FULL)
            return
        # A new principal may read less than the old one: its subscriptions are rechecked.
        lost = [name for name in session.channels if self.node.channel_refusal(
            principal, self.node.grammar.parse(name)) is not None]
        if lost:
            await self.node.hub.unsubscribe(session, lost)
        self.fanout.send(session, native.reply(req.id, {
            "op": "auth", "success": True, "message": f"Authenticated as {principal.name}",
            "scopes": sorted(principal.scopes), **({"unsubscribed": lost} if lost else {})}))

    def _parse_channels(self, args: list[Any]) -> tuple[list[Channel], list[tuple[str, str]]]:
        channels: list[Channel] = []
        rejected: list[tuple[str, str]] = []
        seen: set[str] = set()
        for arg in args:
            try:
                channel = self.node.grammar.parse(arg)
            except ChannelError as exc:
                rejected.append((str(arg)[:200], exc.reason))
                continue
            if channel.name not in seen:
                seen.add(channel.name)
                channels.append(channel)
        return channels, rejected

    async def subscribe(self, session: Session, req: Request) -> None:
        channels, rejected = self._parse_channels(req.args)
        already = [c.name for c in channels if c.name in session.channels]
        new = [c for c in channels if c.name not in session.channels]
        room = self.node.settings.server.max_subscriptions - len(session.channels)
        if len(new) > room:
            limit = self.node.settings.server.max_subscriptions
            for channel in new[max(room, 0):]:
                rejected.append((channel.name, f"Subscription limit reached: at most {limit} "
                                               "channels per connection."))
            new = new[:max(room, 0)]
        recover: dict[str, tuple[str, int]] = {}
        for name, pos in req.recover.items():
            try:
                recover[self.node.grammar.parse(name).name] = pos
            except ChannelError:
                continue

        def send_reply(result: SubscribeResult) -> None:
            if not result.accepted:
                # The op needs some channel to be readable at all (a valid key without the
                # right is FORBIDDEN, not UNAUTHORIZED). Each channel is the hub's access
                # check, once; where none is readable no channel was taken, so asking the
                # op's own question only now, and raising here, refuses the op as before.
                check(session.principal, CHANNELS, "read", self.node.policy)
            result.rejected[:0] = rejected
            self.fanout.send(session, native.subscribe_reply(req.id, result, already))

        await self.node.hub.subscribe(session, new, recover, on_accepted=send_reply,
                                      interval_ms=req.interval_ms)

    async def unsubscribe(self, session: Session, req: Request) -> None:
        channels, rejected = self._parse_channels(req.args)
        removed = await self.node.hub.unsubscribe(session, [c.name for c in channels])
        missing = [(c.name, "Not subscribed.") for c in channels if c.name not in removed]
        self.fanout.send(session, native.unsubscribe_reply(req.id, removed, rejected + missing))

    async def publish(self, session: Session, req: Request) -> None:
        check(session.principal, CHANNELS, "publish", self.node.policy)
        positions = await publish_items(self.node, req.args)
        self.fanout.send(session, native.reply(req.id, {"op": "publish", "success": True,
                                                        "positions": positions}))


def native_dialect(node: ServerNode) -> NativeDialect:
    """The native ops with the native envelope, or the 003 one (``server.envelope``)."""
    return mudrex003.MudrexDialect() if node.settings.server.envelope == "mudrex" \
        else NativeDialect()


def setup(app: web.Application, node: ServerNode, services: ServicesProtocol) -> None:
    """``/ws``; its ``{"action": ...}`` frames (and the 004 greeting when
    ``server.greet_004`` is on) go to the 004 ``services`` protocol."""
    protocol = NativeSocket(node, native_dialect(node))
    protocol.action_handler = services.native_action
    if node.settings.server.greet_004:
        protocol.greeter = services.greet_native
    sockets.register(app, node, "/ws", protocol)
