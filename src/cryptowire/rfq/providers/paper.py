"""The default liquidity provider: paper fills at the quoted rate, recorded in the store."""

from __future__ import annotations

import secrets

from cryptowire.clock import now_ms
from cryptowire.jsonnum import decimal_str
from cryptowire.rfq.providers import Fill, ProviderError
from cryptowire.rfq.quote import Quote
from cryptowire.store.rfq import RfqTrades, TradeRecord


class PaperProvider:
    name = "paper"

    def __init__(self, trades: RfqTrades) -> None:
        self._trades = trades

    async def execute(self, quote: Quote, key_id: str | None) -> Fill:
        trade = TradeRecord(
            id=secrets.token_hex(16), quote_id=quote.quote_id, key_id=key_id,
            provider=self.name, curr_from=quote.curr_from, curr_to=quote.curr_to,
            amount_from=decimal_str(quote.amount_from), amount_to=decimal_str(quote.amount_to),
            rate=decimal_str(quote.rate), commission=decimal_str(quote.commission),
            rate_path=quote.rate_path, created_at=now_ms(),
        )
        if await self._trades.by_quote(quote.quote_id) is not None:
            raise ProviderError(f"quote {quote.quote_id} was already filled")
        try:
            await self._trades.record(trade)
        except Exception as exc:
            raise ProviderError("could not record the paper fill") from exc
        return Fill(trade.id, quote.quote_id, trade.amount_from, trade.amount_to, trade.rate,
                    self.name)


