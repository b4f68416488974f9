"""What the hub offers besides its sockets: ``[rfq]`` quotes and ``[telegram]`` alerts."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from cryptowire.settings.base import Section


class RfqSettings(Section):
    interval_s: float = Field(4.0, description="Seconds between offers of a quote session.")
    commission: Decimal = Field(
        Decimal("0.01"), description="Commission taken from amountTo (0.01 = 1%)."
    )
    quote_ttl_s: float = Field(10.0, description="A quote can be accepted for this long.")
    max_offers: int = Field(121, description="Offers without acceptance before 'timeout'.")
    display_decimals: int = Field(2, description="Decimals of displayed amounts and rates.")
    max_rate_age_s: float = Field(
        30.0, description="A ticker rate older than this is stale (offer-failed)."
    )
    quote_currency: str = Field("USDT", description="Currency cross rates go through.")
    cryptocompare_url: str | None = Field(
        None, description="CryptoCompare-compatible REST base URL; unset = live tickers."
    )
    cryptocompare_api_key: SecretStr | None = Field(
        None, description="API key sent to the CryptoCompare-compatible API."
    )
    provider: Literal["paper"] = Field(
        "paper", description="Liquidity provider that executes accepted quotes."
    )
    max_session_starts: int = Field(
        30, ge=1, description="Quote sessions one connection may start (or move to another "
        "pair) per minute; more get an error reply."
    )
    max_session_starts_per_key: int = Field(
        120, ge=1, description="The same for all connections of one API key (anonymous "
        "clients count per address)."
    )

    @field_validator("commission")
    @classmethod
    def _commission_range(cls, value: Decimal) -> Decimal:
        if not Decimal(0) <= value < Decimal(1):
            raise ValueError("commission must be in [0, 1)")
        return value


class TelegramSettings(Section):
    enabled: bool = Field(False, description="Post swaps and burns to the chats of a group.")
    bot_token: SecretStr | None = Field(None, description="Bot API token from @BotFather.")
    base_url: str = Field(
        "https://api.telegram.org/bot", description="Bot API base URL (the token is appended)."
    )
    queue_size: int = Field(
        1000, description="Messages waiting to be sent; the oldest are dropped beyond it."
    )
    max_retries: int = Field(3, description="Retries of a message the Bot API refused (429).")
    timeout_s: float = Field(10.0, description="HTTP timeout of one Bot API call.")
