"""Bybit V5 public frames -> normalized payloads, sans-I/O (no sockets, no clock).

:func:`parse_frame` classifies one text frame as an :class:`Ack` (subscribe/unsubscribe
answer), a :class:`Pong` or a :class:`DataFrame` (a topic frame), or raises
:class:`MalformedFrameError`, which the connection counts and logs without stopping.

Payloads follow PROTOCOLS.md section 1 (the Mudrex seed's shapes):

- :class:`TickerBook` merges a linear ``snapshot`` and its ``delta``\\ s into the full state of
  each symbol (a field absent from a delta is unchanged; docs: v5/websocket/public/ticker);
  spot sends snapshots only. A field the upstream never sent is ``None``, never ``"0"``.
- :func:`parse_klines` -> one :class:`~cryptowire.events.KlineData` per candle of the frame,
  with the canonical interval of the topic (the interval asked for is the one delivered).
- :func:`parse_trades` -> the frame's trades as one list of
  :class:`~cryptowire.events.TradeData`;
- :func:`parse_liquidations` -> one :class:`~cryptowire.events.LiquidationData` per item of
  an ``allLiquidation`` frame. Order books are validated by :mod:`.book`.

Prices and sizes stay the upstream's decimal strings, byte for byte; a JSON float in a money
field is refused as malformed rather than turned into a string that was never sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from cryptowire.core.channels import KLINE_INTERVALS
from cryptowire.errors import SourceError
from cryptowire.events import KlineData, LiquidationData, TickerData, TradeData
from cryptowire.jsonnum import decimal_str
from cryptowire.sources.bybit.topics import (
    CATEGORIES,
    MAX_ARGS_PER_REQUEST,
    Category,
    Topic,
    build_requests,
    category_of,
    channel_for,
    parse_topic,
    ping_request,
    topic_for,
)
from cryptowire.sources.exchange.codec import json_object

__all__ = [
    "CATEGORIES",
    "MAX_ARGS_PER_REQUEST",
    "Ack",
    "Category",
    "DataFrame",
    "Frame",
    "MalformedFrameError",
    "Pong",
    "TickerBook",
    "Topic",
    "build_requests",
    "category_of",
    "channel_for",
    "classify",
    "normalize_ticker",
    "parse_frame",
    "parse_klines",
    "parse_liquidations",
    "parse_topic",
    "parse_trades",
    "ping_request",
    "topic_for",
]


class MalformedFrameError(SourceError, ValueError):
    """An upstream frame that cannot be understood; ``reason`` says what is wrong with it."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed Bybit frame: {reason}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Ack:
    """The answer to a request: ``{"success":true,"ret_msg":"","conn_id":..,"req_id":..,
    "op":"subscribe"}``; on refusal ``ret_msg`` says why (e.g. ``error:handler not found,
    topic:tickers.NOPEUSDT``)."""

    op: str
    success: bool
    ret_msg: str
    req_id: str | None
    conn_id: str | None


@dataclass(frozen=True, slots=True)
class Pong:
    """A heartbeat answer: ``{"success":true,"ret_msg":"pong",..,"op":"ping"}`` (public) or
    ``{"op":"pong",..}`` (the shape of Bybit's private streams, accepted too)."""

    req_id: str | None
    conn_id: str | None


@dataclass(frozen=True, slots=True)
class DataFrame:
    """A topic frame; ``data`` is still the upstream's (validated by the ``parse_*``)."""

    topic: Topic
    type: str  # "snapshot" | "delta"
    ts: int
    data: Any
    cs: int | None = None


Frame = Ack | Pong | DataFrame


def parse_frame(raw: str | bytes) -> Frame:
    """Classify one text frame; :class:`MalformedFrameError` if it is not JSON or not one of
    the three kinds of frame a public stream sends."""
    return classify(json_object(raw, MalformedFrameError))


def classify(obj: Mapping[str, Any]) -> Frame:
    """Classify a decoded frame (see :func:`parse_frame`)."""
    topic = obj.get("topic")
    if topic is not None:
        if not isinstance(topic, str):
            raise MalformedFrameError("'topic' is not a string")
        try:
            parsed = parse_topic(topic)
        except ValueError as exc:
            raise MalformedFrameError(str(exc)) from exc
        frame_type = obj.get("type")
        if frame_type not in ("snapshot", "delta"):
            raise MalformedFrameError(f"'type' is {frame_type!r}, not snapshot or delta")
        ts = obj.get("ts")
        if not isinstance(ts, int) or isinstance(ts, bool):
            raise MalformedFrameError("'ts' is missing or not an integer")
        if "data" not in obj:
            raise MalformedFrameError("topic frame without 'data'")
        cs = obj.get("cs")
        return DataFrame(parsed, frame_type, ts, obj["data"], cs if _is_int(cs) else None)
    op = obj.get("op")
    if op == "pong" or obj.get("ret_msg") == "pong":
        return Pong(_opt_str(obj.get("req_id")), _opt_str(obj.get("conn_id")))
    success = obj.get("success")
    if isinstance(op, str) and isinstance(success, bool):
        ret_msg = obj.get("ret_msg")
        return Ack(
            op=op,
            success=success,
            ret_msg=ret_msg if isinstance(ret_msg, str) else "",
            req_id=_opt_str(obj.get("req_id")),
            conn_id=_opt_str(obj.get("conn_id")),
        )
    raise MalformedFrameError("neither a topic frame, an ack nor a pong")


# -- tickers ---------------------------------------------------------------------------------

#: The Bybit ticker fields cryptowire reads (docs: v5/websocket/public/ticker, linear and spot).
_UPSTREAM_TICKER_FIELDS: tuple[str, ...] = (
    "lastPrice", "markPrice", "indexPrice", "highPrice24h", "lowPrice24h", "prevPrice24h",
    "volume24h", "turnover24h", "price24hPcnt", "tickDirection", "openInterest",
    "openInterestValue", "fundingRate", "nextFundingTime",
    "bid1Price", "bid1Size", "ask1Price", "ask1Size",
)  # fmt: skip

TickerState = dict[str, str | None]


class TickerBook:
    """The merged upstream ticker state of every symbol on one socket (one category).

    Clear it when the socket is replaced: Bybit sends a fresh snapshot after each subscribe,
    and a delta must never be merged into a state from an earlier connection.
    """

    def __init__(self) -> None:
        self._state: dict[str, TickerState] = {}

    def apply(self, frame: DataFrame) -> TickerData:
        """Merge a ticker frame and return the symbol's full normalized state.

        A ``snapshot`` replaces the state (fields it lacks are null); a ``delta`` changes only
        the fields it carries. A delta before any snapshot is malformed: merging it would
        publish a partial state as if it were whole (the seed 003 bug).
        """
        if frame.topic.kind != "ticker":
            raise MalformedFrameError(f"{frame.topic.name} is not a ticker topic")
        data = frame.data
        if not isinstance(data, dict):
            raise MalformedFrameError(f"{frame.topic.name}: ticker 'data' is not an object")
        symbol = frame.topic.symbol
        if data.get("symbol", symbol) != symbol:
            raise MalformedFrameError(
                f"{frame.topic.name}: data is for symbol {data.get('symbol')!r}"
            )
        # Validate every field before touching the state, so a bad delta changes nothing.
        fields = {name: _text(data[name], name) for name in _UPSTREAM_TICKER_FIELDS if name in data}
        if frame.type == "snapshot":
            state: TickerState = fields
        else:
            previous = self._state.get(symbol)
            if previous is None:
                raise MalformedFrameError(f"{frame.topic.name}: delta before any snapshot")
            state = {**previous, **fields}
        normalized = normalize_ticker(symbol, state)  # may refuse the frame: state untouched
        self._state[symbol] = state
        return normalized

    def get(self, symbol: str) -> TickerData | None:
        """The current normalized state of ``symbol``, if a snapshot was seen."""
        state = self._state.get(symbol)
        return None if state is None else normalize_ticker(symbol, state)

    def clear(self, symbol: str | None = None) -> None:
        """Forget one symbol's state, or every symbol's."""
        if symbol is None:
            self._state.clear()
        else:
            self._state.pop(symbol, None)

    def __len__(self) -> int:
        return len(self._state)


def percent_of_fraction(text: str | None) -> str | None:
    """``"0.0144"`` -> ``"1.44"``, exactly; ``None`` (or a non-number) stays ``None``."""
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return decimal_str(value.scaleb(2)) if value.is_finite() else None


def normalize_ticker(symbol: str, state: Mapping[str, str | None]) -> TickerData:
    """The PROTOCOLS.md ticker shape of a merged upstream state; absent fields are null."""
    get = state.get
    return {
        "symbol": symbol,
        "price": get("lastPrice"),
        "markPrice": get("markPrice"),
        # Spot's ``usdIndexPrice`` is the coin's USD index, not the instrument's index price,
        # so it is not passed off as ``indexPrice``: on spot ``indexPrice`` is null.
        "indexPrice": get("indexPrice"),
        "high24h": get("highPrice24h"),
        "low24h": get("lowPrice24h"),
        "prevPrice24h": get("prevPrice24h"),
        "volume24h": get("volume24h"),
        "turnover24h": get("turnover24h"),
        # ``price24hPcnt`` is a *fraction* ("-0.158315" = -15.8315 %); the seed 003 shape
        # is a percent ("1.44" for 0.0144, as its transformer sent it). Moving the decimal
        # point two places (Decimal.scaleb) is exact: no float, no rounding.
        "change24hPercent": percent_of_fraction(get("price24hPcnt")),
        "tickDirection": get("tickDirection"),
        "bid": {"price": get("bid1Price"), "size": get("bid1Size")},
        "ask": {"price": get("ask1Price"), "size": get("ask1Size")},
        "openInterest": get("openInterest"),
        "openInterestValue": get("openInterestValue"),
        "fundingRate": get("fundingRate"),
        "nextFundingTime": get("nextFundingTime"),
    }


# -- klines and trades -----------------------------------------------------------------------


def parse_klines(frame: DataFrame) -> list[KlineData]:
    """The candles of a ``kline.<interval>.<symbol>`` frame (docs: v5/websocket/public/kline):
    ``start``/``end`` -> ``openTime``/``closeTime``, ``confirm`` -> ``confirmed``."""
    topic = frame.topic
    if topic.kind != "kline" or topic.interval is None:
        raise MalformedFrameError(f"{topic.name} is not a kline topic")
    items = _object_list(frame)
    bybit_interval = KLINE_INTERVALS[topic.interval]
    klines: list[KlineData] = []
    for item in items:
        interval = item.get("interval", bybit_interval)
        if interval != bybit_interval:
            raise MalformedFrameError(f"{topic.name}: candle interval {interval!r}")
        klines.append(
            {
                "symbol": topic.symbol,
                "interval": topic.interval,
                "openTime": _int(item, "start"),
                "closeTime": _int(item, "end"),
                "open": _req_text(item, "open"),
                "high": _req_text(item, "high"),
                "low": _req_text(item, "low"),
                "close": _req_text(item, "close"),
                "volume": _req_text(item, "volume"),
                "turnover": _req_text(item, "turnover"),
                "confirmed": _bool(item, "confirm"),
            }
        )
    return klines


def parse_trades(frame: DataFrame) -> list[TradeData]:
    """The trades of a ``publicTrade.<symbol>`` frame (docs: v5/websocket/public/trade): ``i``
    id, ``s`` symbol, ``p`` price, ``v`` size, ``S`` side, ``T`` time, ``BT`` block trade."""
    if frame.topic.kind != "trade":
        raise MalformedFrameError(f"{frame.topic.name} is not a trade topic")
    trades: list[TradeData] = []
    for item in _object_list(frame):
        trades.append(
            {
                "id": _req_text(item, "i"),
                "symbol": _req_text(item, "s"),
                "price": _req_text(item, "p"),
                "quantity": _req_text(item, "v"),
                "side": _req_text(item, "S").lower(),  # "buy"/"sell", as seed 003 sends
                "time": _int(item, "T"),
                # Bybit documents BT on every trade; a frame without it is a plain trade.
                "isBlockTrade": _bool(item, "BT") if "BT" in item else False,
            }
        )
    return trades


def parse_liquidations(frame: DataFrame) -> list[LiquidationData]:
    """The liquidations of an ``allLiquidation.<symbol>`` frame (docs:
    v5/websocket/public/all-liquidation): ``T`` time, ``s`` symbol, ``S`` position side
    (``Buy``: a long was liquidated), ``v`` size, ``p`` bankruptcy price; strings as sent."""
    if frame.topic.kind != "liquidation":
        raise MalformedFrameError(f"{frame.topic.name} is not an allLiquidation topic")
    items = _object_list(frame)
    out: list[LiquidationData] = []
    for item in items:
        symbol = _req_text(item, "s")
        if symbol != frame.topic.symbol:
            raise MalformedFrameError(f"{frame.topic.name}: liquidation of {symbol!r}")
        out.append({"symbol": symbol, "side": _req_text(item, "S"),
                    "price": _req_text(item, "p"), "size": _req_text(item, "v"),
                    "time": _int(item, "T")})
    return out


# -- field checks ----------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _opt_str(value: object) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def _text(value: object, name: str) -> str | None:
    """A decimal (or enum) string as sent; ``""`` and null are "no value". Integers are
    accepted as their exact digits; a float is refused (it may already have lost digits)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    if _is_int(value):
        return str(value)
    raise MalformedFrameError(f"field {name!r} is a {type(value).__name__}, not a string")


def _req_text(item: Mapping[str, Any], name: str) -> str:
    value = _text(item.get(name), name)
    if value is None:
        raise MalformedFrameError(f"field {name!r} is missing")
    return value


def _int(item: Mapping[str, Any], name: str) -> int:
    value = item.get(name)
    if _is_int(value):
        return int(value)  # type: ignore[arg-type]
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise MalformedFrameError(f"field {name!r} is not an integer")


def _bool(item: Mapping[str, Any], name: str) -> bool:
    value = item.get(name)
    if isinstance(value, bool):
        return value
    raise MalformedFrameError(f"field {name!r} is not a boolean")


def _object_list(frame: DataFrame) -> list[Mapping[str, Any]]:
    data = frame.data
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise MalformedFrameError(f"{frame.topic.name}: 'data' is not a list of objects")
    return data
