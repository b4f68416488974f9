"""``GET /pg/<JWT>`` and ``GET /pg/<channel>/<JWT>`` (seed 002, postgres-websockets), and
the REST mirror ``GET /<channel>s`` (PROTOCOLS.md 2.5).

The token is an HS256 JWT signed with ``auth.jwt_secret`` with claims ``mode`` (must allow
reading: ``r`` or ``rw``), ``channels`` (list; ``channel`` as one string is also read) and an
optional ``exp``. A token that does not verify, or does not allow the path's channel, gets
HTTP 400 on the upgrade; a live socket is closed with 3001 when its token expires. Frames
are ``{"channel": C, "payload": {...}}``, the payload exactly as NOTIFY gave it and
byte-identical to one row of ``GET /<C>s``. Client messages are ignored (write mode is not
supported).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

import jwt
from aiohttp import web

from cryptowire.closecodes import CLOSE_JWT_EXPIRED
from cryptowire.core.access import authorize
from cryptowire.core.channels import Channel
from cryptowire.core.session import Principal, Session
from cryptowire.errors import AuthError, ChannelError, ProtocolError, StoreError
from cryptowire.server import sockets
from cryptowire.server.auth import rest_principal
from cryptowire.server.context import NODE
from cryptowire.server.node import ServerNode
from cryptowire.server.replies import problem
from cryptowire.server.rest_limits import rate_limited
from cryptowire.wire.pg002 import PgDialect

log = logging.getLogger("cryptowire.server.pg")

#: Mirror queries running at once on this node (``pgnotify.rest_max_concurrent``).
_MIRROR_SLOTS: web.AppKey[asyncio.Semaphore] = web.AppKey("pg_mirror_slots")


class TokenRefused(ValueError):
    """The upgrade is answered with HTTP 400 and this message."""


@dataclass(frozen=True, slots=True)
class Grant:
    mode: str
    channels: tuple[str, ...]
    exp: float | None
    sub: str = "jwt"


def verify_token(token: str, secret: str) -> Grant:
    """Verify an HS256 JWT and read its claims, or raise :class:`TokenRefused`."""
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"],
                            options={"verify_aud": False})
    except jwt.ExpiredSignatureError as exc:
        raise TokenRefused("JWT expired") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenRefused(f"Invalid JWT: {exc}") from exc
    mode = claims.get("mode")
    if not isinstance(mode, str) or "r" not in mode:
        raise TokenRefused("JWT claim 'mode' must allow reading ('r' or 'rw')")
    raw = claims.get("channels", claims.get("channel"))
    channels = [raw] if isinstance(raw, str) else raw
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise TokenRefused("JWT claim 'channels' must be a list of channel names")
    exp = claims.get("exp")
    return Grant(mode, tuple(channels), float(exp) if isinstance(exp, int | float) else None,
                 str(claims.get("sub", "jwt"))[:100])


#: What :meth:`PgSocket.authenticate` read from the token, for :meth:`PgSocket.accept`.
_GRANT: web.RequestKey[tuple[list[Channel], Grant]] = web.RequestKey("pg002_grant")


class PgSocket(sockets.BaseKind["asyncio.TimerHandle | None"]):
    def __init__(self, node: ServerNode) -> None:
        self.node = node
        self.fanout = node.hub.fanout  # sends, flushes and closes go through the fan-out
        self.dialect = PgDialect()
        self.encoder = self.dialect.encoder()

    def _grant(self, request: web.Request) -> tuple[list[Channel], Grant, Principal]:
        secret = self.node.settings.auth.jwt_secret
        if secret is None:
            raise TokenRefused("JWT sockets are not configured (auth.jwt_secret)")
        grant = verify_token(request.match_info["token"], secret.get_secret_value())
        # The token's own principal: it reads the pg: channels it names and nothing else
        # (core/access.py), here and wherever else it is presented.
        principal = Principal(key_id=f"jwt:{grant.sub}", name=grant.sub,
                              channels=frozenset(grant.channels))
        wanted = request.match_info.get("channel")
        names = [wanted] if wanted is not None else list(grant.channels)
        try:
            channels = [self.node.grammar.parse(f"pg:{n}") for n in names]
        except ChannelError as exc:
            raise TokenRefused(exc.reason) from exc
        if wanted is not None and authorize(principal, channels[0], "read",
                                            self.node.policy) is not None:
            raise TokenRefused(f"JWT does not allow channel '{wanted}'")
        return channels, grant, principal

    async def authenticate(self, request: web.Request) -> Principal | web.StreamResponse:
        """The token's principal; a token that does not verify or allow the path's channel
        is HTTP 400, and the upgrade 503 while pg channels are off."""
        try:
            channels, grant, principal = self._grant(request)
        except TokenRefused as exc:
            return web.Response(status=400, text=str(exc))
        if self.node.route(Channel(name="pg:_", kind="pg", key="_")) is None:
            return web.Response(status=503, text="Postgres channels are not enabled "
                                                 "(pgnotify.enabled)")
        request[_GRANT] = channels, grant
        return principal

    def denied(self, principal: Principal) -> None:
        return None  # the token's channels were checked with the upgrade

    async def accept(self, session: Session,
                     request: web.Request) -> asyncio.TimerHandle | None:
        """Subscribed to the token's channels until it expires (close 3001)."""
        channels, grant = request[_GRANT]
        timer = self._expire_at(session, grant.exp)
        result = await self.node.hub.subscribe(session, channels)
        for name, why in result.rejected:
            log.warning("pg socket %s: %s refused: %s", session.id, name, why)
        return timer

    async def on_text(self, session: Session, timer: asyncio.TimerHandle | None,
                      text: str) -> None:
        self.dialect.parse(text, None)  # Ignored: write mode is not supported

    async def end(self, session: Session, timer: asyncio.TimerHandle | None) -> None:
        if timer is not None:
            timer.cancel()

    def _expire_at(self, session: Session, exp: float | None) -> asyncio.TimerHandle | None:
        if exp is None:
            return None
        delay = max(0.0, exp - time.time())
        return asyncio.get_running_loop().call_later(
            delay, self.fanout.close, session, CLOSE_JWT_EXPIRED, "JWT expired")


def _mirror_handler(channel: str) -> Any:
    target = Channel(name=f"pg:{channel}", kind="pg", key=channel)

    async def mirror(request: web.Request) -> web.Response:
        from cryptowire.sources.pgnotify import mirror_rows

        node = request.app[NODE]
        try:  # exactly the rule of pg:<channel> on every socket (core/access.py)
            await rest_principal(request, target, "read")
        except AuthError as exc:
            return problem(403 if exc.code == "FORBIDDEN" else 401, exc.code, exc.message)
        cfg = node.settings.pgnotify
        query = dict(request.query)
        raw_limit = query.pop("limit", None)
        try:
            limit = cfg.rest_default_limit if raw_limit is None else int(raw_limit)
        except ValueError:
            return problem(400, "INVALID_ARGS", "limit must be an integer")
        if not 0 <= limit <= cfg.rest_max_limit:
            return problem(400, "INVALID_ARGS", f"limit must be 0..{cfg.rest_max_limit}")
        if node.store is None:
            return problem(503, "INTERNAL_ERROR", "The store is not open.")
        try:
            async with request.app[_MIRROR_SLOTS]:  # the timeout then measures work, not a queue
                rows = await mirror_rows(node.store.engine, channel, limit, query,
                                         max_scan=cfg.rest_max_scan,
                                         timeout_ms=cfg.rest_statement_timeout_ms,
                                         ) if limit else []
        except ProtocolError as exc:
            return problem(400, exc.code, exc.message)
        except StoreError as exc:
            return problem(503, "LIMIT_EXCEEDED", exc.message)
        body = ("[" + ",".join(rows) + "]").encode()
        return web.Response(body=body, content_type="application/json")

    return mirror


def setup(app: web.Application, node: ServerNode) -> None:
    kind = PgSocket(node)
    sockets.register(app, node, "/pg/{token}", kind)
    sockets.register(app, node, "/pg/{channel}/{token}", kind)
    cfg = node.settings.pgnotify
    app[_MIRROR_SLOTS] = asyncio.Semaphore(cfg.rest_max_concurrent)
    if cfg.enabled and cfg.mirror:
        for channel in cfg.rest_channels:
            app.router.add_get(f"/{channel}s", rate_limited(_mirror_handler(channel)))
