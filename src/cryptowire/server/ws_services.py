"""The seed 004 services sockets (``/ws/master``, ``/ws/all``, ``/ws/<service>``...) and REST
``GET /ws/stats|services|endpoints`` (PROTOCOLS.md 2.2).

Frames are built by :mod:`cryptowire.wire.services004`; subscriptions are ordinary hub
subscriptions to ``service:<name>`` channels, so services run only while someone listens.
The native ``/ws`` socket hands frames of the ``{"action": ...}`` form here
(:meth:`ServicesProtocol.native_action`); such a session gets 004 frames for services.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import orjson
from aiohttp import web

from cryptowire.clock import now_ms
from cryptowire.core.access import CHANNELS, STATS, authorize
from cryptowire.core.channels import SERVICES
from cryptowire.core.hub import SubscribeResult
from cryptowire.core.session import Encoder, Principal, Session
from cryptowire.logthrottle import log_exception
from cryptowire.server import sockets
from cryptowire.server.auth import rest_principal
from cryptowire.server.node import ServerNode
from cryptowire.server.replies import json
from cryptowire.server.rest import problems
from cryptowire.wire import services004 as s004
from cryptowire.wire.dialect import Invalid
from cryptowire.wire.services004 import ClientState, Endpoint

log = logging.getLogger("cryptowire.server.services")


class ServicesProtocol:
    """The 004 client actions of one node's sessions (004 paths and native ``/ws``)."""

    def __init__(self, node: ServerNode) -> None:
        self.node = node
        self.fanout = node.hub.fanout  # sends, flushes and closes go through the fan-out
        self.dialect = s004.Services004Dialect()
        self.encoder = self.dialect.encoder()
        self.clients: weakref.WeakKeyDictionary[Session, ClientState] = \
            weakref.WeakKeyDictionary()
        self._hybrids: dict[Encoder, Encoder] = {}

    def live_clients(self) -> list[ClientState]:
        return [state for session, state in list(self.clients.items()) if not session.closed]

    # -- sockets -----------------------------------------------------------------------

    def denied(self, principal: Principal) -> str | None:
        denied = authorize(principal, CHANNELS, "read", self.node.policy)
        return None if denied is None else denied.reason

    async def accept(self, session: Session, endpoint: Endpoint) -> ClientState:
        """A 004 client: greeted, and subscribed to its path's services."""
        state = self.clients[session] = self.dialect.new_state()
        now = state.connected_ms
        self.fanout.send(session, s004.connection_established(state, endpoint, now))
        if endpoint.welcome:
            self.fanout.send(session, s004.welcome(now))
        if endpoint.auto:
            target = "all" if endpoint.auto == SERVICES else endpoint.auto[0]
            await self._subscribe(session, state, target, auto=True)
        return state

    async def on_text(self, session: Session, text: str) -> None:
        action = self.dialect.parse(text, None)
        if isinstance(action, Invalid):
            self.node.counters.errors_sent += 1
            self.fanout.send(session, action.frame)
            return
        try:
            await self._act(session, action)
        except Exception:
            log_exception(log, "action %s failed on session %s", action.action, session.id)
            self.node.counters.errors_sent += 1
            self.fanout.send(session, s004.error({"message": "Internal error; try again."},
                                                 now_ms()))

    async def native_action(self, session: Session, text: str) -> bool:
        """The native socket's hook: handle ``text`` if it is an ``{"action": ...}`` frame
        without ``op``; ``False`` leaves it to the native protocol."""
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(obj, dict) or "action" not in obj or "op" in obj:
            return False
        if session not in self.clients:
            self.clients[session] = self.dialect.new_state()
        if not session.channels:
            # Frame services the 004 way from now on; other channels stay native.
            session.encoder = self._hybrid(session.encoder)
        action = self.dialect.parse_object(obj)
        if isinstance(action, Invalid):
            self.node.counters.errors_sent += 1
            self.fanout.send(session, action.frame)
            return True
        await self._act(session, action)
        return True

    def greet_native(self, session: Session) -> None:
        """The native socket's greeting hook (``server.greet_004``): the seed's
        ``connection_established``, which its document's clients wait for before they
        subscribe. The session is a 004 client from here (``get_status`` knows it)."""
        now = now_ms()
        state = self.clients.get(session)
        if state is None:
            state = self.clients[session] = self.dialect.new_state()
        self.fanout.send(session, s004.connection_established(state, s004.NATIVE_ENDPOINT, now))

    def _hybrid(self, encoder: Encoder) -> Encoder:
        if encoder.name.startswith("services004"):
            return encoder
        hybrid = self._hybrids.get(encoder)
        if hybrid is None:
            hybrid = self._hybrids[encoder] = s004.Services004Encoder(encoder)
        return hybrid

    # -- actions -----------------------------------------------------------------------

    async def _act(self, session: Session, action: s004.Action) -> None:
        state = self.clients.get(session)
        if state is None:
            return
        now = now_ms()
        state.last_activity_ms = now
        if action.action == "ping":
            self.fanout.send(session, s004.pong(action.data, now))
        elif action.action == "get_status":
            self.fanout.send(session, s004.status(state, len(self.live_clients()), now))
        elif action.action == "subscribe":
            assert action.service is not None
            denied = authorize(session.principal, CHANNELS, "read", self.node.policy)
            if denied is not None:
                self.fanout.send(session, s004.error({"message": denied.reason}, now))
                return
            await self._subscribe(session, state, action.service)
        else:
            assert action.service is not None
            await self._unsubscribe(session, state, action.service)

    async def _subscribe(self, session: Session, state: ClientState, service: str,
                         *, auto: bool = False) -> None:
        targets = [s for s in s004.expand(service) if s not in state.subscriptions]
        channels = [self.node.grammar.parse(f"service:{s}") for s in targets]

        def confirm(result: SubscribeResult) -> None:
            now = now_ms()
            done = {name.partition(":")[2] for name in result.accepted}
            state.subscriptions.extend(s for s in targets if s in done)
            if service == "system" and "system" not in state.subscriptions:
                state.subscriptions.append("system")
            for name, why in result.rejected:
                self.fanout.send(session, s004.error({"message": f"Service unavailable: "
                                                                f"{name.partition(':')[2]}: {why}",
                                                     "service": name.partition(":")[2]}, now))
            if done or not result.rejected:
                self.fanout.send(session, s004.subscription_confirmed(
                    service, state.subscriptions, now, auto=auto))
                if auto and service == "all":  # /ws/all, as the seed announced it
                    self.fanout.send(session, s004.auto_subscribed(now))

        if channels:
            # A service's first update is published while demand starts it, before the hub
            # reads the channel's position: recovering from the position before the
            # subscribe delivers it (exactly once) instead of waiting a whole interval.
            before = {c.name: await self.node.broker.position(c.name) for c in channels}
            await self.node.hub.subscribe(session, channels, before, on_accepted=confirm)
        else:
            confirm(SubscribeResult())

    async def _unsubscribe(self, session: Session, state: ClientState, service: str) -> None:
        targets = [s for s in s004.expand(service) if s in state.subscriptions]
        await self.node.hub.unsubscribe(session, [f"service:{s}" for s in targets])
        drop = set(targets) | ({"system"} if service in ("system", "all") else set())
        state.subscriptions[:] = [s for s in state.subscriptions if s not in drop]
        self.fanout.send(session, s004.unsubscription_confirmed(service, state.subscriptions,
                                                                now_ms()))

    # -- REST --------------------------------------------------------------------------

    async def stats(self, request: web.Request) -> web.Response:
        """Counts for whoever may read; the client list only where the detail is allowed."""
        principal = await rest_principal(request, STATS, "read")
        clients = self.live_clients()
        counts: dict[str, int] = {}
        for state in clients:
            for service in state.subscriptions:
                counts[service] = counts.get(service, 0) + 1
        body: dict[str, Any] = {"total_connections": len(clients)}
        if authorize(principal, STATS, "detail", self.node.policy) is None:
            body["clients"] = [state.describe() for state in clients]
        body["subscription_counts"] = counts
        return json(s004.envelope("success", body, now_ms()))

    async def services(self, request: web.Request) -> web.Response:
        cfg = self.node.settings.services
        catalog = {
            category: {name: {
                "name": name, "description": desc,
                "update_interval": float(getattr(cfg, f"{name}_interval_s")),
                "endpoint": next((e.path for e in s004.ENDPOINTS if e.auto == (name,)),
                                 next(e.path for e in s004.ENDPOINTS
                                      if name in e.services and not e.welcome and not e.auto)),
                "channel": f"service:{name}",
            } for name, desc in services.items()}
            for category, services in s004.CATALOG.items()
        }
        return json(s004.envelope("success", {
            "services": catalog,
            "total_services": sum(len(v) for v in catalog.values()),
            "system_services": {
                "system": "System messages and connection management (every endpoint)",
                "all": "Subscribe to all services at once (/ws/all)",
            },
        }, now_ms()))

    async def endpoints(self, request: web.Request) -> web.Response:
        scheme = "wss" if request.secure else "ws"
        base = f"{scheme}://{request.host}"
        return json(s004.envelope("success", {
            "base_url": base,
            "endpoints": [{"path": e.path, "url": f"{base}{e.path}",
                           "description": e.description, "services": list(e.services),
                           "auto_subscribe": list(e.auto)} for e in s004.ENDPOINTS],
            "default": {"path": "/ws", "url": f"{base}/ws",
                        "description": "Native socket; also understands the action form"},
        }, now_ms()))


class ServicesSocket(sockets.BaseKind[ClientState]):
    """One 004 path (:class:`~cryptowire.server.sockets.SocketKind`)."""

    def __init__(self, protocol: ServicesProtocol, endpoint: Endpoint) -> None:
        self.protocol = protocol
        self.node = protocol.node
        self.endpoint = endpoint
        self.dialect = protocol.dialect
        self.encoder = protocol.encoder

    def denied(self, principal: Principal) -> str | None:
        return self.protocol.denied(principal)

    async def accept(self, session: Session, request: web.Request) -> ClientState:
        return await self.protocol.accept(session, self.endpoint)

    async def on_text(self, session: Session, state: ClientState, text: str) -> None:
        await self.protocol.on_text(session, text)

    async def end(self, session: Session, state: ClientState) -> None:
        self.protocol.clients.pop(session, None)


def setup(app: web.Application, node: ServerNode, protocol: ServicesProtocol) -> None:
    for endpoint in s004.ENDPOINTS:
        sockets.register(app, node, endpoint.path, ServicesSocket(protocol, endpoint))
    app.router.add_get("/ws/stats", problems(protocol.stats))
    app.router.add_get("/ws/services", protocol.services)
    app.router.add_get("/ws/endpoints", protocol.endpoints)
