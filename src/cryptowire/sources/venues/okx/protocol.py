"""OKX v5 public WebSocket protocol: endpoints, channel arguments, requests and frame kinds.

Docs: https://www.okx.com/docs-v5/en/ (#overview-websocket-subscribe, -unsubscribe,
-connect; each channel's page; fixtures and notes in ``tests/fixtures/okx/README.md``).

- Endpoints: ``/ws/v5/public`` (tickers, trades, books, funding-rate, mark-price,
  liquidation-orders) and ``/ws/v5/business`` (candles, since 2023-06-20).
- Requests: ``{"id":"7","op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT-
  SWAP"}]}`` (``unsubscribe`` alike); ``id`` is echoed in the replies.
- Replies: ``{"id","event":"subscribe"|"unsubscribe","arg":{..},"connId"}`` per argument;
  ``{"id","event":"error","code":"60012","msg":"..","connId"}`` (which argument failed is only
  in ``msg``: the request's ``id`` tells); ``{"event":"notice","code":"64008",..}`` 60 s
  before a disconnect for an upgrade.
- Pushes: ``{"arg":{..},"data":[..]}``, books with ``"action":"snapshot"|"update"``.
- Keep-alive: the text frame ``ping``, answered by the text ``pong`` (not JSON); OKX drops a
  connection after 30 s without a push.

The hub's channel kinds map to OKX arguments by :func:`channel_args`: a ``ticker`` is
``tickers`` plus, on swaps, ``funding-rate`` and ``mark-price`` (merged into one ticker by
:class:`~cryptowire.sources.venues.okx.parser.TickerMerge`); ``liquidation`` is the one
``liquidation-orders`` stream of all SWAP instruments (filtered per symbol).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from cryptowire.errors import SourceError
from cryptowire.sources.exchange.codec import json_object

PUBLIC_PATH = "/ws/v5/public"
BUSINESS_PATH = "/ws/v5/business"
DEFAULT_WS_URL = "wss://ws.okx.com:8443"
DEFAULT_REST_URL = "https://www.okx.com"
INSTRUMENTS_PATH = "/api/v5/public/instruments"

PING = "ping"
PONG = "pong"
#: OKX closes a connection after 30 s without data; ping well before.
PING_INTERVAL_S = 20.0
#: "the total length of multiple channels cannot exceed 64 KB" per request.
MAX_REQUEST_BYTES = 64 * 1024
#: "subscribe/unsubscribe/login requests per connection is limited to 480 times per hour".
MAX_REQUESTS_PER_HOUR = 480
#: "recommended to subscribe through multiple websocket connections, with each of less than
#: 30 channels" (order book channels of 50 or 400 levels).
MAX_BOOKS_PER_CONNECTION = 29
#: The ``notice`` code sent 60 s before a disconnect for a service upgrade.
NOTICE_RECONNECT = "64008"

#: Hub interval -> OKX bar. 6h and above use OKX's UTC-aligned bars (``6Hutc`` ...): the
#: plain ``6H``/``12H``/``1D``/``1W``/``1M`` open on Hong Kong time (UTC+8), while Bybit's
#: (and the hub's) candles open on UTC.
BARS: dict[str, str] = {
    "1m": "1m", "3m": "3m", "5m": "5m", "15m": "15m", "30m": "30m",
    "1h": "1H", "2h": "2H", "4h": "4H", "6h": "6Hutc", "12h": "12Hutc",
    "1d": "1Dutc", "1w": "1Wutc", "1M": "1Mutc",
}  # fmt: skip
INTERVALS: dict[str, str] = {bar: interval for interval, bar in BARS.items()}

#: OKX channels that feed each hub kind (swap / spot).
TICKER_CHANNELS: dict[str, tuple[str, ...]] = {
    "okx": ("tickers", "funding-rate", "mark-price"), "okx-spot": ("tickers",),
}  # fmt: skip

Arg = dict[str, str]


class OkxFrameError(SourceError, ValueError):
    """An OKX frame that cannot be understood; ``reason`` says what is wrong with it."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed OKX frame: {reason}")
        self.reason = reason


def endpoint(kind: str) -> str:
    """The path serving the OKX channels of a hub ``kind``."""
    return BUSINESS_PATH if kind == "kline" else PUBLIC_PATH


def channel_args(kind: str, venue: str, inst_id: str, interval: str | None = None) -> list[Arg]:
    """The OKX subscription arguments for one hub channel (``ValueError`` if none)."""
    if kind == "ticker":
        return [{"channel": name, "instId": inst_id} for name in TICKER_CHANNELS[venue]]
    if kind == "trade":
        return [{"channel": "trades", "instId": inst_id}]
    if kind == "book":
        return [{"channel": "books", "instId": inst_id}]
    if kind == "kline":
        if interval not in BARS:
            raise ValueError(f"OKX has no candle interval {interval!r}")
        return [{"channel": f"candle{BARS[interval]}", "instId": inst_id}]
    if kind == "liquidation" and venue == "okx":
        return [{"channel": "liquidation-orders", "instType": "SWAP"}]
    raise ValueError(f"OKX @{venue} has no {kind} channel")


def arg_key(arg: Mapping[str, Any]) -> tuple[str, str]:
    """An argument's identity: ``(channel, instId or instType)``."""
    target = arg.get("instId") or arg.get("instType") or arg.get("instFamily") or ""
    return str(arg.get("channel", "")), str(target)


def request(op: str, args: Sequence[Mapping[str, str]], req_id: str | None = None) -> str:
    """A ``subscribe``/``unsubscribe`` request as text."""
    body: dict[str, Any] = {} if req_id is None else {"id": req_id}
    body["op"] = op
    body["args"] = [dict(arg) for arg in args]
    return orjson.dumps(body).decode()


@dataclass(frozen=True, slots=True)
class Pong:
    """The text ``pong``."""


@dataclass(frozen=True, slots=True)
class Ack:
    """``{"id","event":"subscribe"|"unsubscribe","arg","connId"}``."""

    op: str
    arg: Arg
    req_id: str | None
    conn_id: str | None


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """``{"id","event":"error","code","msg","connId"}`` (``code`` a string)."""

    code: str
    msg: str
    req_id: str | None


@dataclass(frozen=True, slots=True)
class Notice:
    """``{"event":"notice","code":"64008","msg":..}``: reconnect (upgrade in 60 s)."""

    code: str
    msg: str


@dataclass(frozen=True, slots=True)
class Push:
    """A channel push; ``data`` is still OKX's (checked by the parsers)."""

    arg: Arg
    data: list[Any]
    action: str | None = None

    @property
    def channel(self) -> str:
        return self.arg.get("channel", "")


Frame = Pong | Ack | ErrorReply | Notice | Push


def parse_frame(raw: str | bytes) -> Frame:
    """Classify one text frame (:class:`OkxFrameError` if it is none of the kinds above)."""
    if raw == PONG or raw == b"pong":
        return Pong()
    return classify(json_object(raw, OkxFrameError))


def classify(obj: Mapping[str, Any]) -> Frame:
    """Classify a decoded frame (see :func:`parse_frame`)."""
    event, arg = obj.get("event"), obj.get("arg")
    if event is None:
        if not isinstance(arg, dict) or not isinstance(arg.get("channel"), str):
            raise OkxFrameError("a push without an 'arg' object naming its channel")
        data = obj.get("data")
        if not isinstance(data, list):
            raise OkxFrameError(f"{arg['channel']}: 'data' is not a list")
        action = obj.get("action")
        if action is not None and action not in ("snapshot", "update"):
            raise OkxFrameError(f"{arg['channel']}: action {action!r}")
        return Push(_arg(arg), data, action)
    req_id = _opt_str(obj.get("id"))
    if event in ("subscribe", "unsubscribe"):
        if not isinstance(arg, dict):
            raise OkxFrameError(f"a {event} reply without 'arg'")
        return Ack(event, _arg(arg), req_id, _opt_str(obj.get("connId")))
    if event == "error":
        return ErrorReply(str(obj.get("code", "")), str(obj.get("msg", "")), req_id)
    if event == "notice":
        return Notice(str(obj.get("code", "")), str(obj.get("msg", "")))
    raise OkxFrameError(f"unknown event {event!r}")


def _arg(arg: Mapping[str, Any]) -> Arg:
    return {str(k): str(v) for k, v in arg.items()}


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
