"""The instruments of one OKX market for the exchange seam: symbol mapping and ``ctVal``.

The shared catalog (:class:`~cryptowire.sources.exchange.instruments.InstrumentCatalog`)
fetches ``GET /api/v5/public/instruments?instType=SWAP|SPOT`` and checks symbols with what
:meth:`InstrumentTable.parse` returns (``{instId: status}``); the table keeps the parsed
:class:`~.instruments.Instruments` too, because a swap's sizes cannot be published without
its ``ctVal`` (contracts -> base units). Until the list is fetched, symbols map by rule
(``BTCUSDT`` -> ``BTC-USDT-SWAP``; spot by the known quote currencies) and swap frames are
dropped (counted as errors: publishing contracts as base units would be wrong).
"""

from __future__ import annotations

from typing import Any

from cryptowire.errors import SourceError
from cryptowire.sources.venues.okx.instruments import (
    INST_TYPES,
    Instrument,
    Instruments,
    parse_instruments,
)
from cryptowire.sources.venues.okx.protocol import INSTRUMENTS_PATH

#: OKX ``state`` -> the status word the catalog shows; all but ``live`` are refused.
STATES: dict[str, str] = {"live": "Trading", "suspend": "Suspended", "preopen": "Pre-open",
                          "test": "Test"}
CLOSED: frozenset[str] = frozenset({"Suspended", "Pre-open", "Test", "Not live"})
#: Quote currencies tried, longest first, to split a spot symbol before the list is known.
SPOT_QUOTES: tuple[str, ...] = ("USDT", "USDC", "EURI", "BTC", "ETH", "EUR", "USD", "DAI",
                                "OKB", "TRY", "BRL", "AUD", "SGD", "AED")


class InstrumentTable:
    """The instruments of one OKX market (``okx`` or ``okx-spot``)."""

    def __init__(self, venue: str) -> None:
        self.venue = venue
        self.inst_type = INST_TYPES[venue]
        self.items: Instruments | None = None

    def request(self, cursor: str) -> tuple[str, dict[str, str]]:
        return INSTRUMENTS_PATH, {"instType": self.inst_type}

    def parse(self, body: Any) -> tuple[dict[str, str], str]:
        """``({instId: status}, "")`` of the response (one page: OKX does not paginate it)."""
        if not isinstance(body, dict):
            raise ValueError("response is not a JSON object")
        items = parse_instruments(self.venue, body)
        self.items = items
        return {i.inst_id: STATES.get(i.state, "Not live") for i in items.by_inst_id.values()}, ""

    def from_native(self, inst_id: str) -> str | None:
        if self.items is not None and (item := self.items.by_inst_id.get(inst_id)):
            return item.symbol
        parts = inst_id.split("-")
        if self.inst_type == "SWAP":
            return f"{parts[0]}USDT" if len(parts) == 3 and parts[1:] == ["USDT", "SWAP"] \
                else None
        return "".join(parts) if len(parts) == 2 else None

    def to_native(self, symbol: str) -> str:
        """``BTCUSDT`` -> ``BTC-USDT-SWAP`` (``okx``) / ``BTC-USDT`` (``okx-spot``), or
        :class:`SourceError` for a symbol that cannot be one of the market's."""
        if self.items is not None and (item := self.items.get(symbol)):
            return item.inst_id
        if self.inst_type == "SWAP":
            if symbol.endswith("USDT") and len(symbol) > 4:
                return f"{symbol[:-4]}-USDT-SWAP"
            raise SourceError(f"OKX @okx serves USDT swaps only; '{symbol}' is not a USDT "
                              "pair (e.g. BTCUSDT), or add @okx-spot for a spot pair.")
        for quote in SPOT_QUOTES:
            if symbol.endswith(quote) and len(symbol) > len(quote):
                return f"{symbol[:-len(quote)]}-{quote}"
        raise SourceError(f"Unknown symbol '{symbol}' on OKX spot (no known quote currency; "
                          "e.g. BTCUSDT).")

    def instrument(self, symbol: str, inst_id: str) -> Instrument:
        """The instrument a topic's frames are read with; :class:`ValueError` for a swap
        whose ``ctVal`` is not known yet (its sizes cannot be converted)."""
        item = self.items.by_inst_id.get(inst_id) if self.items is not None else None
        if item is not None:
            return item
        if self.inst_type == "SWAP":
            raise ValueError(f"{inst_id}: contract size (ctVal) unknown: the OKX instruments "
                             "list has not been fetched")
        return Instrument(symbol, inst_id, self.venue, "live")
