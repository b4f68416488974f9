"""Binance stream payloads -> the normalized payloads of :mod:`cryptowire.events`, sans-I/O.

Prices and sizes are Binance's strings, byte for byte (a JSON number in a money field is
converted from its JSON text, never through a float: see :func:`money`). Fields Binance does
not give are omitted, never invented:

- trade (``aggTrade`` on futures, ``trade`` on spot): ``id`` = ``a`` / ``t`` (as a string),
  ``price`` ``p``, ``quantity`` ``q``, ``time`` ``T``, ``side`` the taker's side: ``m`` (the
  buyer is the maker) -> ``"sell"``, else ``"buy"``. No ``isBlockTrade``: Binance's streams
  do not say.
- kline (``kline``): ``openTime`` ``k.t``, ``closeTime`` ``k.T``, ``open``/``high``/``low``/
  ``close`` ``k.o``/``k.h``/``k.l``/``k.c``, ``volume`` ``k.v`` (base), ``turnover`` ``k.q``
  (quote), ``confirmed`` ``k.x``; ``interval`` the canonical name of ``k.i``.
- liquidation (``forceOrder``, futures): ``symbol`` ``o.s``, ``price`` ``o.p`` (the order's
  price: the bankruptcy price the liquidation order is sent at, as Bybit's ``p``; the average
  fill ``o.ap`` is not carried), ``size`` ``o.z`` (the quantity filled, as Bybit's executed
  size ``v``), ``time`` ``o.T``, ``side`` the liquidated *position* as Bybit writes it: the
  order ``S`` = ``SELL`` closes a long -> ``"Buy"``, ``BUY`` closes a short -> ``"Sell"``.
- ticker: :class:`TickerMerge`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, TypedDict

import orjson

from cryptowire.events import KlineData, LiquidationData, TickerData
from cryptowire.jsonnum import decimal_str
from cryptowire.sources.venues.binance.frames import MalformedFrameError
from cryptowire.sources.venues.binance.markets import INTERVAL_OF, MarketName


class Trade(TypedDict):
    """:class:`~cryptowire.events.TradeData` without ``isBlockTrade`` (Binance gives none)."""

    id: str
    symbol: str
    price: str
    quantity: str
    side: str
    time: int


def money(value: object, name: str) -> str:
    """A price or size as sent: a string unchanged; a JSON number (an ``int``, or the
    ``orjson.Fragment``/``Decimal`` of an exact parse) written out exactly; a float refused
    (its digits may already be lost)."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, Decimal) and value.is_finite():
        return decimal_str(value)
    if isinstance(value, orjson.Fragment):  # a number of jsonnum.loads_exact: its digits
        try:
            return decimal_str(Decimal(orjson.dumps(value).decode()))
        except (InvalidOperation, ValueError):
            pass
    raise MalformedFrameError(f"field {name!r} is {value!r}, not a decimal string")


def integer(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise MalformedFrameError(f"field {name!r} is {value!r}, not an integer")


def _flag(data: Mapping[str, Any], name: str) -> bool:
    value = data.get(name)
    if isinstance(value, bool):
        return value
    raise MalformedFrameError(f"field {name!r} is {value!r}, not a boolean")


def _obj(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    if isinstance(value, dict):
        return value
    raise MalformedFrameError(f"field {name!r} is not an object")


def _event(data: Mapping[str, Any], *types: str) -> None:
    if data.get("e") not in types:
        raise MalformedFrameError(f"event type {data.get('e')!r}, expected {' or '.join(types)}")


def parse_trade(data: Mapping[str, Any], market: MarketName) -> Trade:
    if market == "futures":
        _event(data, "aggTrade")
        trade_id = integer(data, "a")
    else:
        _event(data, "trade")
        trade_id = integer(data, "t")
    return {"id": str(trade_id), "symbol": money(data.get("s"), "s"),
            "price": money(data.get("p"), "p"), "quantity": money(data.get("q"), "q"),
            "side": "sell" if _flag(data, "m") else "buy", "time": integer(data, "T")}


def parse_kline(data: Mapping[str, Any]) -> KlineData:
    _event(data, "kline")
    k = _obj(data, "k")
    interval = INTERVAL_OF.get(str(k.get("i")))
    if interval is None:
        raise MalformedFrameError(f"kline interval {k.get('i')!r} is not a channel interval")
    return {"symbol": money(k.get("s", data.get("s")), "s"), "interval": interval,
            "openTime": integer(k, "t"), "closeTime": integer(k, "T"),
            "open": money(k.get("o"), "o"), "high": money(k.get("h"), "h"),
            "low": money(k.get("l"), "l"), "close": money(k.get("c"), "c"),
            "volume": money(k.get("v"), "v"), "turnover": money(k.get("q"), "q"),
            "confirmed": _flag(k, "x")}


#: forceOrder order side -> the side of the liquidated position, as Bybit writes it.
_POSITION_SIDE = {"SELL": "Buy", "BUY": "Sell"}


def parse_liquidation(data: Mapping[str, Any]) -> LiquidationData:
    _event(data, "forceOrder")
    o = _obj(data, "o")
    side = _POSITION_SIDE.get(str(o.get("S")))
    if side is None:
        raise MalformedFrameError(f"forceOrder side {o.get('S')!r} is not BUY or SELL")
    return {"symbol": money(o.get("s"), "s"), "side": side, "price": money(o.get("p"), "p"),
            "size": money(o.get("z"), "z"), "time": integer(o, "T")}


# -- tickers ---------------------------------------------------------------------------------

#: ``24hrTicker`` field -> ticker field. ``o`` (the open of the rolling 24 h window) is the
#: reference Binance's change is taken from (``p`` = ``c`` - ``o``, ``P`` = ``p`` / ``o`` in
#: percent), which is what Bybit's ``prevPrice24h`` is to its ``price24hPcnt``. ``P`` is a
#: percent already (``"1.501"``), as ``change24hPercent`` is.
TICKER_FIELDS: dict[str, str] = {
    "c": "price", "h": "high24h", "l": "low24h", "o": "prevPrice24h", "v": "volume24h",
    "q": "turnover24h", "P": "change24hPercent",
}  # fmt: skip
#: ``markPriceUpdate`` field -> ticker field (futures).
MARK_FIELDS: dict[str, str] = {
    "p": "markPrice", "i": "indexPrice", "r": "fundingRate", "T": "nextFundingTime",
}  # fmt: skip


class TickerMerge:
    """The ticker of each symbol of one market, merged from its streams.

    ``24hrTicker`` gives the last price and the 24 h figures, ``bookTicker`` the best bid and
    ask, ``markPriceUpdate`` (futures) the mark and index prices and the funding; each frame
    replaces its own part. Nothing is published until every part has come once (a ticker
    without its bid/ask or mark would read as "not given"); then every frame publishes the
    whole merged state. ``nextFundingTime`` is written as a string, as Bybit's is.
    """

    def __init__(self, market: MarketName) -> None:
        self.market = market
        self.parts = ("ticker", "book", "mark") if market == "futures" else ("ticker", "book")
        self._state: dict[str, dict[str, dict[str, Any]]] = {}

    def apply(self, data: Mapping[str, Any]) -> tuple[str, TickerData | None]:
        """Merge one payload; ``(symbol, full ticker)``, or ``(symbol, None)`` while a part
        is still missing."""
        part, symbol, fields = self._fields(data)
        state = self._state.setdefault(symbol, {})
        state[part] = fields
        if len(state) < len(self.parts):
            return symbol, None
        return symbol, self.ticker(symbol)

    def ticker(self, symbol: str) -> TickerData | None:
        state = self._state.get(symbol)
        if state is None or len(state) < len(self.parts):
            return None
        out: dict[str, Any] = {"symbol": symbol}
        for part in self.parts:
            out.update(state[part])
        return out  # type: ignore[return-value]

    def clear(self, symbol: str | None = None) -> None:
        if symbol is None:
            self._state.clear()
        else:
            self._state.pop(symbol, None)

    def _fields(self, data: Mapping[str, Any]) -> tuple[str, str, dict[str, Any]]:
        event = data.get("e")
        symbol = money(data.get("s"), "s")
        if event == "24hrTicker":
            return "ticker", symbol, {out: money(data.get(key), key)
                                      for key, out in TICKER_FIELDS.items()}
        if event == "markPriceUpdate" and self.market == "futures":
            fields = {out: money(data.get(key), key) for key, out in MARK_FIELDS.items()
                      if key != "T"}
            fields["nextFundingTime"] = str(integer(data, "T"))
            return "mark", symbol, fields
        if event == "bookTicker" or (event is None and "b" in data and "a" in data):
            return "book", symbol, {
                "bid": {"price": money(data.get("b"), "b"), "size": money(data.get("B"), "B")},
                "ask": {"price": money(data.get("a"), "a"), "size": money(data.get("A"), "A")},
            }
        raise MalformedFrameError(f"event {event!r} is not a ticker part on {self.market}")


# -- instruments -----------------------------------------------------------------------------


#: Symbol statuses that are not trading (``enums.md`` "Symbol status" on spot; the futures
#: ``exchangeInfo`` page's contract statuses).
CLOSED_STATUSES = frozenset({
    "PRE_TRADING", "POST_TRADING", "END_OF_DAY", "HALT", "AUCTION_MATCH", "BREAK",
    "PENDING_TRADING", "PRE_DELIVERING", "DELIVERING", "DELIVERED", "PRE_SETTLE", "SETTLING",
    "CLOSE",
})  # fmt: skip


def instrument_statuses(payload: object, market: MarketName) -> dict[str, str]:
    """``{symbol: status}`` of an ``exchangeInfo`` answer; on futures only ``contractType``
    ``PERPETUAL`` (``@binance`` is the perpetuals venue: a quarterly is not listed)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("symbols"), list):
        raise MalformedFrameError("exchangeInfo without a 'symbols' list")
    out: dict[str, str] = {}
    for item in payload["symbols"]:
        if not isinstance(item, dict) or not isinstance(item.get("symbol"), str):
            continue
        if market == "futures" and item.get("contractType") != "PERPETUAL":
            continue
        out[item["symbol"]] = str(item.get("status"))
    return out


def parse_instruments(payload: object, market: MarketName) -> frozenset[str]:
    """The symbols of an ``exchangeInfo`` answer that trade (``status`` ``TRADING``)."""
    return frozenset(symbol for symbol, status in instrument_statuses(payload, market).items()
                     if status == "TRADING")
