"""``GET /rfq``: the seed 001 RFQ widget protocol.

On connect the server sends ``{"handshake": <Sec-WebSocket-Key>}``: that value is the
session ``uuid`` the client echoes. Quotes need the ``read`` or ``rfq`` scope (or anonymous
read); accepting one needs the ``rfq`` scope. The channel form (``subscribe``/``unsubscribe``/
``current``) works on hub channels (``ticker:BTCUSDT``) and on ``rfq`` itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from cryptowire.core.access import RFQ, authorize
from cryptowire.core.hub import SubscribeResult
from cryptowire.core.session import Principal, Session
from cryptowire.errors import ChannelError
from cryptowire.logthrottle import log_exception
from cryptowire.rfq.engine import RfqConfig, RfqConnection
from cryptowire.rfq.providers import LiquidityProvider
from cryptowire.rfq.starts import StartLimits
from cryptowire.server import sockets
from cryptowire.server.node import ServerNode
from cryptowire.sources.prices import RateProvider
from cryptowire.wire import rfq001
from cryptowire.wire.dialect import Invalid
from cryptowire.wire.frames import text_frame

log = logging.getLogger("cryptowire.server.rfq")


class RfqSocket(sockets.BaseKind[RfqConnection]):
    dialect: rfq001.RfqDialect

    def __init__(self, node: ServerNode) -> None:
        self.node = node
        self.fanout = node.hub.fanout  # sends, flushes and closes go through the fan-out
        cfg = node.settings.rfq
        self.config = RfqConfig(interval_s=cfg.interval_s, commission=cfg.commission,
                                quote_ttl_s=cfg.quote_ttl_s, max_offers=cfg.max_offers,
                                display_decimals=cfg.display_decimals)
        self.dialect = rfq001.RfqDialect()
        self.encoder = self.dialect.encoder()
        self.starts = StartLimits(cfg.max_session_starts, cfg.max_session_starts_per_key)

    def _rates(self) -> RateProvider:
        return self.node.rates  # built and closed by the node (app/wiring.py)

    def _provider(self) -> LiquidityProvider:
        return self.node.liquidity  # built by the node (app/wiring.py)

    def denied(self, principal: Principal) -> str | None:
        denied = authorize(principal, RFQ, "read", self.node.policy)
        return None if denied is None else denied.reason

    async def accept(self, session: Session, request: web.Request) -> RfqConnection:
        """The quoting state of an admitted session."""
        node, principal = self.node, session.principal
        uuid = request.headers.get("Sec-WebSocket-Key", "")
        self.fanout.send(session, rfq001.handshake(uuid))

        def send(obj: dict[str, Any]) -> None:
            self.fanout.send(session, rfq001.frame(obj))

        starts, allowance, key = self.starts, self.starts.connection(), node.key_of(session)
        who = "this API key" if principal.key_id else "this address"
        return RfqConnection(uuid, self.config, self._rates(), self._provider(), send,
                             may_trade=authorize(principal, RFQ, "trade", node.policy) is None,
                             key_id=principal.key_id,
                             admit=lambda: starts.admit(allowance, key, who))

    async def on_text(self, session: Session, conn: RfqConnection, text: str) -> None:
        msg = self.dialect.parse(text, None)
        if isinstance(msg, Invalid):
            self.fanout.send(session, msg.frame)
            return
        try:
            if isinstance(msg, rfq001.ChannelOp):
                await self.channel_op(session, msg)
            else:
                await conn.handle(msg.action, msg.body)
        except Exception:
            log_exception(log, "rfq frame failed")
            self.fanout.send(session, rfq001.error("Internal error; try again."))

    async def end(self, session: Session, conn: RfqConnection) -> None:
        await conn.close()

    async def channel_op(self, session: Session, msg: rfq001.ChannelOp) -> None:
        for name in msg.channels:
            if name == "rfq":
                self.fanout.send(session, rfq001.frame({msg.op: "rfq", "status": "ok",
                                                        "channel": "rfq"}))
                continue
            try:
                channel = self.node.grammar.parse(name)
            except ChannelError as exc:
                self.fanout.send(session, rfq001.error(exc.reason, channel=name))
                continue
            if msg.op == "subscribe":
                limit = self.node.settings.server.max_subscriptions
                if channel.name not in session.channels and len(session.channels) >= limit:
                    self.fanout.send(session, rfq001.error(
                        f"Subscription limit reached: at most {limit} channels per connection.",
                        channel=name))
                    continue
                await self.node.hub.subscribe(session, [channel],
                                              on_accepted=self._subscribe_reply(session, name))
            elif msg.op == "unsubscribe":
                await self.node.hub.unsubscribe(session, [channel.name])
                self.fanout.send(session, rfq001.frame({"unsubscribe": channel.name,
                                                        "status": "ok"}))
            else:
                denied = authorize(session.principal, channel, "read", self.node.policy)
                if denied is not None:
                    self.fanout.send(session, rfq001.error(denied.reason, channel=name))
                    continue
                await self.current(session, channel.name)

    async def current(self, session: Session, name: str) -> None:
        epoch, top = await self.node.broker.position(name)
        pubs = await self.node.broker.history_since(name, epoch, max(top - 1, 0)) if top else []
        if not pubs:
            self.fanout.send(session, rfq001.frame({"current": name, "data": None,
                                                    "message": "No value yet on this channel."}))
            return
        last = pubs[-1]
        self.fanout.send(session, text_frame(
            orjson.dumps({"current": name, "ts": last.ts})[:-1]
            + b',"data":' + last.data_json + b"}"))

    def _subscribe_reply(self, session: Session, name: str,
                         ) -> Callable[[SubscribeResult], None]:
        def reply(result: SubscribeResult) -> None:
            if result.accepted:
                self.fanout.send(session, rfq001.frame({"subscribe": result.accepted[0],
                                                        "status": "ok"}))
            else:
                reason = result.rejected[0][1] if result.rejected else "Already subscribed."
                self.fanout.send(session, rfq001.error(reason, channel=name))

        return reply


def setup(app: web.Application, node: ServerNode) -> None:
    sockets.register(app, node, "/rfq", RfqSocket(node))
