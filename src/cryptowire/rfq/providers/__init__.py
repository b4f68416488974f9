"""Liquidity providers: where an accepted quote is executed. One module per provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cryptowire.errors import CryptowireError
from cryptowire.rfq.quote import Quote


class ProviderError(CryptowireError):
    """The provider refused or failed the order; ``message`` goes to ``orderFailed``."""


@dataclass(frozen=True, slots=True)
class Fill:
    trade_id: str
    quote_id: str
    amount_from: str
    amount_to: str
    rate: str
    provider: str


class LiquidityProvider(Protocol):
    name: str

    async def execute(self, quote: Quote, key_id: str | None) -> Fill:
        """Fill ``quote`` or raise :class:`ProviderError`."""
