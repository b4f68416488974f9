"""One hub process: owns and runs broker, cluster, hub, store, sources, notifier, the
watchlist admin and the RFQ rates (built by :mod:`cryptowire.app.wiring`).

The node knows sources only through the :class:`~cryptowire.core.source.Source` seam and
sessions only through :class:`~cryptowire.core.hub.Session`; it never opens a socket itself.
``start`` opens the store (migrations), the broker and the sources; ``stop`` closes every
session with 1001, then stops sources, notifier, admin, rates, broker and store, in that
order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptowire.app import wiring
from cryptowire.bus import create_broker
from cryptowire.bus.base import Broker
from cryptowire.clock import now_ms
from cryptowire.closecodes import CLOSE_GOING_AWAY, CLOSE_KEY_REVOKED
from cryptowire.cluster.factory import create_cluster
from cryptowire.core.access import Policy, authorize, read_refusal
from cryptowire.core.channels import Channel, ChannelGrammar
from cryptowire.core.demand import Demand
from cryptowire.core.hub import Hub
from cryptowire.core.session import Principal, Session
from cryptowire.core.source import Source, SourceStatus, pick
from cryptowire.settings import Settings
from cryptowire.tasks import Supervisor

if TYPE_CHECKING:
    from cryptowire.notify.telegram import TelegramNotifier
    from cryptowire.rfq.providers import LiquidityProvider
    from cryptowire.sources.evm.tokens import TokenAdmin
    from cryptowire.store.sql import SqlStore

log = logging.getLogger("cryptowire.node")

REVOCATION_POLL_S = 2.0


@dataclass(slots=True)
class NodeCounters:
    messages_in: int = 0
    connections_total: int = 0
    rejected_connections: int = 0
    rate_limited: int = 0
    rate_limit_closes: int = 0
    ping_timeouts: int = 0
    errors_sent: int = 0


class Node:
    """Everything one hub process runs."""

    def __init__(
        self, settings: Settings, *, sources: Sequence[Source] | None = None,
        broker: Broker | None = None, store: SqlStore | None = None,
    ) -> None:
        self.settings = settings
        self.grammar = ChannelGrammar(
            {c.name: c.id for c in settings.evm.chains},
            default_venue=settings.bybit.default_category,
        )
        self.broker = broker or create_broker(settings)
        self.cluster = create_cluster(settings, self.route, self.broker)
        self.demand: Demand = self.cluster.demand
        self.hub = Hub(self.broker, self.demand,
                       outbound_limit=settings.server.outbound_buffer_bytes,
                       max_outbound=settings.server.max_outbound_bytes)
        # The policy is read from the settings once: a node's settings do not change.
        self.hub.access = read_refusal(self.policy)
        #: The RFQ rates every ``/rfq`` session prices from (closed by :meth:`stop`).
        self.rates = wiring.build_rates(settings, self.grammar.parse, self.demand, self.hub)
        #: The watchlist admin and the alert notifier, built once the store is open.
        self._tokens: TokenAdmin | None = None
        self._liquidity: LiquidityProvider | None = None
        self.notifier: TelegramNotifier | None = None
        self.sources: list[Source] = list(sources) if sources is not None else []
        self.store = store
        self._own_store = store is None
        self.counters = NodeCounters()
        self.supervisor = Supervisor("node")
        self.started_ms = 0
        self.ready = False
        self.store_ok = False
        self.connections_by_key: dict[str, int] = {}
        #: Sessions without an API key (counted per address, ``ip:``), for the share of
        #: ``server.max_connections`` they may hold.
        self.unauthenticated = 0
        self._routes: dict[tuple[str, str | None], Source | None] = {}
        self._revoked_seen_ms = 0

    # -- routing -----------------------------------------------------------------------

    def route(self, channel: Channel) -> Source | None:
        """The source that serves ``channel``: by ``(kind, venue)`` for market channels (the
        source declaring the venue, :func:`~cryptowire.core.source.pick`), by kind for the
        others (first configured wins)."""
        key = (channel.kind, channel.venue)
        if key not in self._routes:
            self._routes[key] = pick(self.sources, channel)
        return self._routes[key]

    def _build_routes(self) -> None:
        self._routes.clear()

    @property
    def tokens(self) -> TokenAdmin:
        """The node's one watchlist admin (REST, native admin ops, the seed 000 dialect)."""
        assert self._tokens is not None, "the node is not started"
        return self._tokens

    @property
    def liquidity(self) -> LiquidityProvider:
        """Who fills the RFQ quotes every ``/rfq`` session accepts."""
        assert self._liquidity is not None, "the node is not started"
        return self._liquidity

    @property
    def demo_active(self) -> bool:
        return any(s.status().demo for s in self.sources)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self.started_ms = now_ms()
        if self.store is None:
            self.store = await wiring.open_store(self.settings)
        self.store_ok = True
        self._tokens = wiring.build_token_admin(self.settings, self.store)
        self._liquidity = wiring.build_liquidity(self.store)
        self.notifier = wiring.build_notifier(self.settings, self.store)
        if self.notifier is not None:
            await self.notifier.start()
        await self.broker.start(self.hub.deliver)
        if not self.sources:
            self.sources = wiring.build_sources(self.settings, store=self.store,
                                                tokens=self._tokens, notifier=self.notifier,
                                                view=self)
        # On Redis each source runs only on the node holding its lease.
        self.sources = await self.cluster.attach(self.sources, self.grammar.parse)
        self._build_routes()
        for source in self.sources:
            await source.start(self.broker.publish)  # history, then fan-out on every node
            log.info("source %s started (%s)", source.name, source.status().detail or "live")
        if self.demo_active:
            log.warning("DEMO MODE: synthetic market and chain data is served "
                        "(source 'demo'); configure an upstream for real data")
        self.supervisor.spawn("revocations", self._watch_revocations)
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        await self.drain(CLOSE_GOING_AWAY, "Server shutting down")
        await self.supervisor.stop()
        await self.cluster.close()
        for source in self.sources:
            try:
                await source.stop()
            except Exception:
                log.exception("source %s failed to stop", source.name)
        if self.notifier is not None:
            await self.notifier.stop()
        if self._tokens is not None:
            await self._tokens.close()
        await self.rates.close()
        await self.broker.stop()
        if self.store is not None and self._own_store:
            await self.store.close()

    async def drain(self, code: int, reason: str) -> None:
        """Close every session with ``code`` and give them ``shutdown_grace_s`` to go."""
        self.hub.close_all(code, reason)
        deadline = asyncio.get_running_loop().time() + self.settings.server.shutdown_grace_s
        while self.hub.sessions and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # sessions leave as their sockets close

    # -- sessions and keys -------------------------------------------------------------

    def key_of(self, session: Session) -> str:
        return session.principal.key_id or f"ip:{session.remote}"

    def track(self, session: Session) -> None:
        self.hub.register(session)
        key = self.key_of(session)
        self.connections_by_key[key] = self.connections_by_key.get(key, 0) + 1
        self.counters.connections_total += 1
        if key.startswith("ip:"):
            self.unauthenticated += 1

    async def untrack(self, session: Session) -> None:
        """Forget ``session``; idempotent (the read loop and the handler's guard both call
        it, so a session is released however its handler ends)."""
        if self.hub.sessions.get(session.id) is not session:
            return
        key = self.key_of(session)
        left = self.connections_by_key.get(key, 1) - 1
        if left > 0:
            self.connections_by_key[key] = left
        else:
            self.connections_by_key.pop(key, None)
        if key.startswith("ip:"):
            self.unauthenticated -= 1
        await self.hub.unregister(session)

    def rekey(self, session: Session, old_key: str) -> None:
        """Move a session's connection count after it authenticated."""
        left = self.connections_by_key.get(old_key, 1) - 1
        if left > 0:
            self.connections_by_key[old_key] = left
        else:
            self.connections_by_key.pop(old_key, None)
        key = self.key_of(session)
        self.connections_by_key[key] = self.connections_by_key.get(key, 0) + 1
        self.unauthenticated += key.startswith("ip:") - old_key.startswith("ip:")

    def close_key_sessions(self, key_id: str) -> int:
        """Close every session authenticated with ``key_id`` (4010); returns how many."""
        closed = 0
        for session in list(self.hub.sessions.values()):
            if session.principal.key_id == key_id and not session.closed:
                self.hub.fanout.close(session, CLOSE_KEY_REVOKED, "API key revoked")
                closed += 1
        return closed

    async def _watch_revocations(self) -> None:
        """Poll the store so a key revoked by any process (CLI, another node) closes its
        sessions here within a few seconds."""
        assert self.store is not None
        self._revoked_seen_ms = now_ms() - 60_000
        while True:
            await asyncio.sleep(REVOCATION_POLL_S)
            try:
                since = self._revoked_seen_ms
                self._revoked_seen_ms = now_ms() - 5_000
                ids = await self.store.revoked_key_ids(since)
                self.store_ok = True
            except Exception:
                self.store_ok = False
                log.warning("store unreachable while polling revocations", exc_info=True)
                continue
            for key_id in ids:
                if self.close_key_sessions(key_id):
                    log.info("closed sessions of revoked key %s", key_id)

    # -- access ------------------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        """The settings :func:`~cryptowire.core.access.authorize` depends on."""
        return Policy(anonymous_read=self.settings.server.anonymous_read,
                      pg_read_keys=self.settings.auth.pg_read_keys)

    def channel_refusal(self, principal: Principal, channel: Channel) -> str | None:
        """Why ``principal`` may not read ``channel``, or ``None`` (the rule the hub checks
        every subscribed channel with, for a caller outside a subscribe)."""
        denied = authorize(principal, channel, "read", self.policy)
        return None if denied is None else denied.reason

    # -- health and stats --------------------------------------------------------------

    def source_statuses(self) -> list[SourceStatus]:
        return [s.status() for s in self.sources]

    def health(self) -> tuple[bool, dict[str, Any]]:
        """``(serving, body)``: store, bus and every source.

        ``status`` is ``down`` (``serving`` false: HTTP 503) when the hub cannot serve what
        it is configured to serve: the store or the bus is down, or a source with no
        fallback is down. It is ``degraded`` (still HTTP 200) when it serves, but demo data:
        the demo source runs, or a source is down and its fallback serves meanwhile.
        ``reasons`` says why it is not ``ok``.
        """
        sources = {}
        down: list[str] = []
        degraded: list[str] = []
        if not self.store_ok:
            down.append("store: down")
        if not self.broker.healthy():
            down.append(f"bus ({self.broker.name}): down")
        for st in self.source_statuses():
            sources[st.name] = {"state": st.state, "detail": st.detail, "demo": st.demo,
                                "last_message_ms": st.last_message_ms}
            reason = f"{st.name}: {st.detail or st.state}"
            if st.state not in ("up", "connecting", "starting"):
                fallback = st.extra.get("fallback")
                (degraded if fallback else down).append(
                    reason if fallback else f"{st.name}: {st.state} ({st.detail})")
            elif st.demo:
                degraded.append(reason)
        body = {
            "status": "down" if down else "degraded" if degraded else "ok",
            "reasons": down + degraded,
            "demo": self.demo_active,
            "store": "ok" if self.store_ok else "down",
            "bus": {"type": self.broker.name,
                    "state": "ok" if self.broker.healthy() else "down"},
            "sources": sources,
        }
        return not down, body

    def stats(self) -> dict[str, Any]:
        hs = self.hub.stats
        return {
            "uptime_s": round((now_ms() - self.started_ms) / 1000, 1),
            "connections": len(self.hub.sessions),
            "connections_total": self.counters.connections_total,
            "subscriptions": sum(len(s.channels) for s in self.hub.sessions.values()),
            "channels": self.hub.channel_counts(),
            "messages_in": self.counters.messages_in,
            "messages_out": hs.messages_out,
            "bytes_out": hs.bytes_out,
            "publications": hs.publications,
            "slow_consumer_closes": hs.slow_consumer_closes,
            "dropped": hs.dropped,
            "rate_limited": self.counters.rate_limited,
            "upstream_topics": self.demand.active(),
            "bus": self.broker.stats(),
            "history_bytes": self.broker.history_bytes(),
            "sources": {st.name: {
                "state": st.state, "detail": st.detail, "demo": st.demo,
                "messages": st.messages, "errors": st.errors, "reconnects": st.reconnects,
                "topics": st.topics, "last_message_ms": st.last_message_ms, **st.extra,
            } for st in self.source_statuses()},
        }
