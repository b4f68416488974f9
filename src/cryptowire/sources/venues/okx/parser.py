"""OKX pushes -> the hub's normalized payloads (Bybit's shapes, ``events.py``), sans-I/O.

Mapping (docs: each channel's page; choices explained in ``tests/fixtures/okx/README.md``):

- **ticker** (:class:`TickerMerge`): ``tickers`` ``last`` -> ``price``, ``high24h``/
  ``low24h``, ``open24h`` -> ``prevPrice24h`` (the price 24 h ago, Bybit's meaning),
  ``bidPx``/``bidSz`` and ``askPx``/``askSz`` -> ``bid``/``ask`` (sizes in base units);
  ``volume24h`` is in base units: ``volCcy24h`` on swaps ("the number of base currency" for
  derivatives; ``vol24h`` counts contracts), ``vol24h`` on spot; ``turnover24h`` (quote) is
  spot's ``volCcy24h`` and is omitted on swaps (OKX gives no quote volume there).
  ``mark-price`` ``markPx`` -> ``markPrice``; ``funding-rate`` ``fundingRate`` ->
  ``fundingRate`` and its ``fundingTime`` (the settlement of the current period, when that
  rate is charged) -> ``nextFundingTime`` (Bybit's meaning). Omitted, as OKX's ``tickers``
  does not give them: ``indexPrice``, ``change24hPercent`` (it would be a division, not a
  value OKX sent), ``tickDirection``, ``openInterest``, ``openInterestValue``.
- **trade**: ``tradeId`` -> ``id``, ``px``, ``sz`` (base units), ``side`` (the taker's,
  ``buy``/``sell`` as Bybit's lower-cased), ``ts``; ``isBlockTrade`` is ``false``: OKX's block
  trades are on another channel (``block-trades``), never on ``trades``.
- **kline**: ``[ts,o,h,l,c,vol,volCcy,volCcyQuote,confirm]``; ``volume`` in base units
  (``volCcy`` on swaps, ``vol`` on spot), ``turnover`` = ``volCcyQuote``; ``closeTime`` =
  the next bar's open - 1 ms (Bybit's ``end``).
- **liquidation**: each ``details[]`` item of ``liquidation-orders`` for a subscribed
  ``instId``: ``bkPx`` -> ``price``, ``sz`` (contracts) -> ``size`` in base units, ``ts``,
  and ``side`` in Bybit's meaning (``Buy`` = a long was liquidated): OKX's ``side`` is the
  liquidation *order's* side, so ``sell`` (a long closed by a sell) -> ``Buy``.

Every price and size is OKX's string unchanged, except swap sizes, which are multiplied by
the instrument's ``ctVal`` exactly (:meth:`Instrument.base_size`).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cryptowire.events import BookLevel, KlineData, LiquidationData, TickerData, TradeData
from cryptowire.sources.venues.okx.instruments import Instrument
from cryptowire.sources.venues.okx.protocol import INTERVALS, OkxFrameError, Push

_MINUTE = 60_000
_SPANS_MS: dict[str, int] = {
    "1m": _MINUTE, "3m": 3 * _MINUTE, "5m": 5 * _MINUTE, "15m": 15 * _MINUTE,
    "30m": 30 * _MINUTE, "1h": 60 * _MINUTE, "2h": 120 * _MINUTE, "4h": 240 * _MINUTE,
    "6h": 360 * _MINUTE, "12h": 720 * _MINUTE, "1d": 1440 * _MINUTE, "1w": 10080 * _MINUTE,
}  # fmt: skip


class TickerMerge:
    """The merged ticker state of one instrument: ``tickers`` + ``funding-rate`` +
    ``mark-price``. Nothing is published before the first ``tickers`` push (a ticker of
    only a funding rate is not the instrument's ticker); clear it on a new connection."""

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self._ticker: dict[str, Any] = {}
        self._extra: dict[str, str] = {}
        self.ts: int | None = None

    def clear(self) -> None:
        self._ticker.clear()
        self._extra.clear()
        self.ts = None

    def apply(self, push: Push) -> TickerData | None:
        """Merge a push of one of the three channels; the full ticker, or ``None`` while no
        ``tickers`` push has come."""
        item = _one(push, self.instrument.inst_id)
        channel = push.channel
        if channel == "tickers":
            self._ticker = self._from_tickers(item)
        elif channel == "mark-price":
            self._extra["markPrice"] = _text(item, "markPx")
        elif channel == "funding-rate":
            self._extra["fundingRate"] = _text(item, "fundingRate")
            self._extra["nextFundingTime"] = _text(item, "fundingTime")
        else:
            raise OkxFrameError(f"{channel} is not a ticker channel")
        self.ts = _int(item, "ts")
        return self.get()

    def get(self) -> TickerData | None:
        if not self._ticker:
            return None
        out: dict[str, Any] = {"symbol": self.instrument.symbol, **self._ticker, **self._extra}
        return out  # type: ignore[return-value]  # TickerData is total=False

    def _from_tickers(self, item: Mapping[str, Any]) -> dict[str, Any]:
        spot = self.instrument.ct_val is None
        fields: dict[str, Any] = {}
        for name, source in (("price", "last"), ("high24h", "high24h"), ("low24h", "low24h"),
                             ("prevPrice24h", "open24h"),
                             ("volume24h", "vol24h" if spot else "volCcy24h")):
            _put(fields, name, item, source)
        if spot:
            _put(fields, "turnover24h", item, "volCcy24h")
        for name, px, sz in (("bid", "bidPx", "bidSz"), ("ask", "askPx", "askSz")):
            level = self._level(item, px, sz)
            if level is not None:
                fields[name] = level
        return fields

    def _level(self, item: Mapping[str, Any], px: str, sz: str) -> BookLevel | None:
        price, size = _opt_text(item, px), _opt_text(item, sz)
        if price is None or size is None:
            return None
        return {"price": price, "size": _base(self.instrument, size, sz)}


def parse_trades(push: Push, instrument: Instrument) -> list[TradeData]:
    """The trades of a ``trades`` push."""
    if push.channel != "trades":
        raise OkxFrameError(f"{push.channel} is not the trades channel")
    out: list[TradeData] = []
    for item in _items(push, instrument.inst_id):
        side = _text(item, "side")
        if side not in ("buy", "sell"):
            raise OkxFrameError(f"trades: side {side!r}")
        out.append({"id": _text(item, "tradeId"), "symbol": instrument.symbol,
                    "price": _text(item, "px"),
                    "quantity": _base(instrument, _text(item, "sz"), "sz"),
                    "side": side, "time": _int(item, "ts"), "isBlockTrade": False})
    return out


def parse_candles(push: Push, instrument: Instrument) -> list[KlineData]:
    """The candles of a ``candle<bar>`` push, with the hub's interval name."""
    bar = push.channel.removeprefix("candle")
    interval = INTERVALS.get(bar)
    if not push.channel.startswith("candle") or interval is None:
        raise OkxFrameError(f"{push.channel} is not a candle channel the hub serves")
    if push.arg.get("instId") != instrument.inst_id:
        raise OkxFrameError(f"{push.channel}: candles of {push.arg.get('instId')!r}")
    spot = instrument.ct_val is None
    out: list[KlineData] = []
    for row in push.data:
        if not isinstance(row, list) or len(row) < 9 or not all(isinstance(v, str) for v in row):
            raise OkxFrameError(f"{push.channel}: candle {row!r} is not 9 strings")
        if row[8] not in ("0", "1") or not row[0].isdigit():
            raise OkxFrameError(f"{push.channel}: candle ts/confirm {row[0]!r}/{row[8]!r}")
        open_time = int(row[0])
        out.append({"symbol": instrument.symbol, "interval": interval, "openTime": open_time,
                    "closeTime": close_time(interval, open_time), "open": row[1],
                    "high": row[2], "low": row[3], "close": row[4],
                    "volume": row[5] if spot else row[6], "turnover": row[7],
                    "confirmed": row[8] == "1"})
    return out


def close_time(interval: str, open_time: int) -> int:
    """The last millisecond of the bar opening at ``open_time`` (months by the calendar)."""
    span = _SPANS_MS.get(interval)
    if span is not None:
        return open_time + span - 1
    try:
        start = datetime.fromtimestamp(open_time // 1000, UTC)  # 1M: to the next month's 1st
    except (OverflowError, OSError) as exc:
        raise ValueError(f"candle time {open_time} is out of range") from exc
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    following = datetime(year, month, 1, tzinfo=UTC)
    return calendar.timegm(following.timetuple()) * 1000 - 1


def parse_liquidations(push: Push, instruments: Mapping[str, Instrument]) -> list[LiquidationData]:
    """The liquidations of a ``liquidation-orders`` push for the instruments of
    ``instruments`` (by ``instId``; the channel carries every SWAP instrument)."""
    if push.channel != "liquidation-orders":
        raise OkxFrameError(f"{push.channel} is not the liquidation-orders channel")
    out: list[LiquidationData] = []
    for item in push.data:
        if not isinstance(item, dict):
            raise OkxFrameError("liquidation-orders: an item is not an object")
        instrument = instruments.get(str(item.get("instId")))
        if instrument is None:
            continue
        details = item.get("details")
        if not isinstance(details, list):
            raise OkxFrameError("liquidation-orders: 'details' is not a list")
        for detail in details:
            if not isinstance(detail, dict):
                raise OkxFrameError("liquidation-orders: a detail is not an object")
            out.append(_liquidation(instrument, detail))
    return out


def _liquidation(instrument: Instrument, detail: Mapping[str, Any]) -> LiquidationData:
    side = _text(detail, "side")
    if side not in ("buy", "sell"):
        raise OkxFrameError(f"liquidation-orders: side {side!r}")
    return {"symbol": instrument.symbol, "side": "Buy" if side == "sell" else "Sell",
            "price": _text(detail, "bkPx"), "size": _base(instrument, _text(detail, "sz"), "sz"),
            "time": _int(detail, "ts")}


# -- field checks ----------------------------------------------------------------------------


def _items(push: Push, inst_id: str) -> Sequence[Mapping[str, Any]]:
    if push.arg.get("instId") != inst_id:
        raise OkxFrameError(f"{push.channel}: push for {push.arg.get('instId')!r}")
    for item in push.data:
        if not isinstance(item, dict):
            raise OkxFrameError(f"{push.channel}: an item is not an object")
        if item.get("instId", inst_id) != inst_id:
            raise OkxFrameError(f"{push.channel}: item of {item.get('instId')!r}")
    return push.data


def _one(push: Push, inst_id: str) -> Mapping[str, Any]:
    items = _items(push, inst_id)
    if len(items) != 1:
        raise OkxFrameError(f"{push.channel}: {len(items)} items, not one")
    return items[0]


def _opt_text(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise OkxFrameError(f"field {name!r} is a {type(value).__name__}, not a string")
    return value


def _text(item: Mapping[str, Any], name: str) -> str:
    value = _opt_text(item, name)
    if value is None:
        raise OkxFrameError(f"field {name!r} is missing")
    return value


def _put(fields: dict[str, Any], name: str, item: Mapping[str, Any], source: str) -> None:
    value = _opt_text(item, source)
    if value is not None:
        fields[name] = value


def _int(item: Mapping[str, Any], name: str) -> int:
    value = item.get(name)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise OkxFrameError(f"field {name!r} is not an integer")


def _base(instrument: Instrument, size: str, name: str) -> str:
    try:
        return instrument.base_size(size)
    except ValueError as exc:
        raise OkxFrameError(f"field {name!r}: {exc}") from exc
