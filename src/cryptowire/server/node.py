"""What the server needs of the node it serves: the seam between ``server`` and ``app``.

The server sits below the application in the layers (``docs/architecture.md``), so it never
imports :class:`cryptowire.app.node.Node`; it declares here, as protocols, exactly the
attributes and methods its modules use, and ``Node`` satisfies them structurally (mypy checks
it where :func:`~cryptowire.server.app.create_app` is called with a ``Node``). A member
the server does not use does not belong here.

Members the server only reads are properties (so ``Node`` may keep them as plain
attributes of a narrower type); ``store_ok`` is written by the readiness probe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cryptowire.bus.base import Broker
    from cryptowire.core.access import Policy
    from cryptowire.core.channels import Channel, ChannelGrammar
    from cryptowire.core.demand import Demand
    from cryptowire.core.hub import Hub
    from cryptowire.core.session import Principal, Session
    from cryptowire.core.source import Source, SourceStatus
    from cryptowire.rfq.providers import LiquidityProvider
    from cryptowire.settings import Settings
    from cryptowire.sources.evm.tokens import TokenAdmin
    from cryptowire.sources.prices import RateProvider
    from cryptowire.store.sql import SqlStore


class ServerCounters(Protocol):
    """The node's counters the socket handlers bump (and ``/stats``, ``/metrics`` read)."""

    messages_in: int
    connections_total: int
    rejected_connections: int
    rate_limited: int
    rate_limit_closes: int
    ping_timeouts: int
    errors_sent: int


class ServerNode(Protocol):
    """The node as the server sees it: what it serves from, and the session bookkeeping."""

    # -- what it is built from (read only) ---------------------------------------------

    @property
    def settings(self) -> Settings: ...
    @property
    def grammar(self) -> ChannelGrammar: ...
    @property
    def hub(self) -> Hub: ...
    @property
    def broker(self) -> Broker: ...
    @property
    def demand(self) -> Demand: ...
    @property
    def store(self) -> SqlStore | None: ...
    @property
    def counters(self) -> ServerCounters: ...
    @property
    def tokens(self) -> TokenAdmin: ...
    @property
    def liquidity(self) -> LiquidityProvider: ...
    @property
    def rates(self) -> RateProvider: ...
    @property
    def policy(self) -> Policy: ...

    # -- state -------------------------------------------------------------------------

    store_ok: bool

    @property
    def ready(self) -> bool: ...
    @property
    def demo_active(self) -> bool: ...
    @property
    def unauthenticated(self) -> int: ...
    @property
    def connections_by_key(self) -> Mapping[str, int]: ...

    # -- lifecycle (the aiohttp application starts and stops the node) -----------------

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def drain(self, code: int, reason: str) -> None: ...

    # -- sources and access -------------------------------------------------------------

    def route(self, channel: Channel) -> Source | None: ...
    def channel_refusal(self, principal: Principal, channel: Channel) -> str | None: ...

    # -- sessions and keys -------------------------------------------------------------

    def key_of(self, session: Session) -> str: ...
    def track(self, session: Session) -> None: ...
    async def untrack(self, session: Session) -> None: ...
    def rekey(self, session: Session, old_key: str) -> None: ...
    def close_key_sessions(self, key_id: str) -> int: ...

    # -- health and stats --------------------------------------------------------------

    def source_statuses(self) -> list[SourceStatus]: ...
    def health(self) -> tuple[bool, dict[str, Any]]: ...
    def stats(self) -> dict[str, Any]: ...
