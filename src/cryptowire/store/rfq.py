"""RFQ trades: every filled order with its quote at full precision (decimal strings)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cryptowire.store.tables import rfq_trades


@dataclass(frozen=True, slots=True)
class TradeRecord:
    id: str
    quote_id: str
    key_id: str | None
    provider: str
    curr_from: str
    curr_to: str
    amount_from: str
    amount_to: str
    rate: str
    commission: str
    rate_path: str
    created_at: int


class RfqTrades:
    """Insert and read RFQ trades through the store's engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, trade: TradeRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(rfq_trades).values(**_as_dict(trade)))

    async def by_quote(self, quote_id: str) -> TradeRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(
                select(rfq_trades).where(rfq_trades.c.quote_id == quote_id))).first()
        return None if row is None else TradeRecord(**row._mapping)

    async def recent(self, limit: int = 100) -> list[TradeRecord]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(
                select(rfq_trades).order_by(rfq_trades.c.created_at.desc()).limit(limit)))
            return [TradeRecord(**r._mapping) for r in rows]


def _as_dict(trade: TradeRecord) -> dict[str, object]:
    return {name: getattr(trade, name) for name in TradeRecord.__slots__}
