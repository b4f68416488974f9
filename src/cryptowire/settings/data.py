"""Where data lives and how it moves: ``[history]``, ``[store]``, ``[bus]``, ``[demand]``."""

from __future__ import annotations

from pydantic import Field, field_validator

from cryptowire.settings.base import Section

#: Default ``history.kind_shares``: the groups of core/history_budget.py (market = ticker,
#: trade, kline; onchain = swap, burn) and the share of the history budget each is guaranteed.
HISTORY_KIND_SHARES: dict[str, float] = {
    "market": 0.3, "onchain": 0.15, "service": 0.05, "pg": 0.2, "app": 0.3,
}


class HistorySettings(Section):
    size: int = Field(1000, description="Messages kept per channel for recovery.")
    ttl_s: float = Field(600.0, description="Messages older than this are dropped from history.")
    max_channels: int = Field(100_000, description="Channels with history kept at once.")
    max_bytes: int = Field(
        256 * 1024 * 1024, ge=0,
        description="Bytes of history the node keeps (data + ~200 B per message, ~1.3 KB per "
                    "channel); over it the oldest messages go first.",
    )
    max_channel_bytes: int = Field(
        16 * 1024 * 1024, ge=0,
        description="Bytes of history one channel keeps (memory and Redis); over it the "
                    "channel's oldest messages go first.",
    )
    kind_shares: dict[str, float] = Field(
        default_factory=lambda: dict(HISTORY_KIND_SHARES),
        description="Share of max_bytes and max_channels guaranteed to each kind group; a "
                    "group within its share never loses history to another group.",
    )

    @field_validator("kind_shares")
    @classmethod
    def _shares_add_up(cls, shares: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(shares) - set(HISTORY_KIND_SHARES))
        if unknown:
            raise ValueError(f"unknown kind group {unknown}; use {list(HISTORY_KIND_SHARES)}")
        if any(v < 0 for v in shares.values()) or sum(shares.values()) > 1.0 + 1e-9:
            raise ValueError("shares are fractions >= 0 that add up to at most 1")
        return shares


class StoreSettings(Section):
    url: str = Field(
        "sqlite+aiosqlite:///cryptowire.db",
        description="SQLAlchemy URL: sqlite+aiosqlite:///file or postgresql+asyncpg://...; a "
        "relative SQLite file is next to the config file, else in $XDG_DATA_HOME/cryptowire.",
    )


class BusSettings(Section):
    url: str = Field("memory://", description="memory:// (one process) or redis://host:port/db.")
    prefix: str = Field("cw", description="Redis key prefix; nodes of one cluster share it.")
    lease_ttl_s: float = Field(
        3.0, description="Source lease lifetime; a dead leader is replaced within about this."
    )
    node_ttl_s: float = Field(
        5.0, description="A node missing its heartbeat this long no longer counts for demand."
    )
    meta_ttl_s: float = Field(
        604_800.0, description="Offset/epoch of an idle channel are kept this long in Redis."
    )
    backoff_cap_s: float = Field(5.0, description="Longest wait between Redis reconnect tries.")
    max_connections: int = Field(
        64, ge=2,
        description="Redis connections per node for commands (pub/sub takes one); a command "
                    "waits up to 5 s for a free one instead of failing.",
    )


class DemandSettings(Section):
    linger_s: float = Field(
        2.0, description="Keep an upstream topic this long after its last subscriber leaves."
    )
