"""The ``[bbo]`` section: the consolidated best bid and offer, ``bbo:<SYMBOL>``
(docs/protocol.md, "Consolidated best bid and offer")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from cryptowire.settings.base import Section

#: Venue names ``bbo.venues`` accepts: core/channels.py ``VENUES`` and ``VENUE_ALIASES``
#: (settings sit below core; a unit test keeps the two lists equal).
BboVenue = Literal["linear", "spot", "binance", "binance-spot", "okx", "okx-spot", "bybit",
                   "bybit-spot"]
#: Bybit USDT perpetuals, Binance USDⓈ-M, OKX swaps.
DEFAULT_BBO_VENUES: tuple[BboVenue, ...] = ("linear", "binance", "okx")


class BboSettings(Section):
    enabled: bool = Field(
        True, description="Serve bbo:<SYMBOL>, the best bid and offer across bbo.venues.")
    venues: list[BboVenue] = Field(
        default_factory=lambda: list(DEFAULT_BBO_VENUES), min_length=1,
        description="Venues consolidated by bbo:<SYMBOL>, listed in tie-break order "
        "(linear = Bybit USDT perpetuals).",
    )
    stale_after_ms: int = Field(
        10_000, ge=100, le=3_600_000,
        description="A venue with no book update for this long drops out of the bbo until "
        "its next update.",
    )

    @field_validator("venues")
    @classmethod
    def _distinct(cls, venues: list[str]) -> list[str]:
        aliases = {"bybit": "linear", "bybit-spot": "spot"}
        canonical = [aliases.get(v, v) for v in venues]
        if len(set(canonical)) != len(canonical):
            raise ValueError("bbo.venues: each venue once (bybit is linear, bybit-spot spot)")
        return venues
