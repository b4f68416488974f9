"""Binance's two markets as declarations: endpoints, stream names, symbols, requests, sans-I/O.

A :class:`~cryptowire.core.channels.Channel` on ``@binance`` (USDⓈ-M perpetuals) or
``@binance-spot`` maps to one or more Binance streams, each on one connection
(``tests/fixtures/binance/README.md`` cites the pages):

====================================  ===========================================  ==========
channel                               streams                                      connection
====================================  ===========================================  ==========
``ticker:BTCUSDT@binance``            ``btcusdt@ticker``, ``btcusdt@markPrice@1s``  market
                                      ``btcusdt@bookTicker``                        public
``trade:BTCUSDT@binance``             ``btcusdt@aggTrade``                          market
``kline:1h:BTCUSDT@binance``          ``btcusdt@kline_1h``                          market
``book:50:BTCUSDT@binance``           ``btcusdt@depth@100ms`` (+ REST snapshot)     public
``liquidation:BTCUSDT@binance``       ``btcusdt@forceOrder``                        market
``ticker:BTCUSDT@binance-spot``       ``btcusdt@ticker``, ``btcusdt@bookTicker``    public
``trade:BTCUSDT@binance-spot``        ``btcusdt@trade``                             public
====================================  ===========================================  ==========

USDⓈ-M futures serve high-frequency streams (``depth``, ``bookTicker``) on
``wss://fstream.binance.com/public`` and the rest on ``/market`` (the old ``/stream`` URL was
retired on 2026-04-23); spot serves all on ``wss://stream.binance.com:9443/stream``. Every
book depth of a symbol shares one ``@depth@100ms`` stream and one local book, cut per
channel. Spot has no liquidations: that channel is refused with a reason.

Requests: ``{"method":"SUBSCRIBE","params":[...],"id":N}`` (``UNSUBSCRIBE`` alike), at most
:data:`MAX_PARAMS_PER_REQUEST` streams each; the answer is ``{"result":null,"id":N}`` or
``{"error":{"code":..,"msg":..},"id":N}`` (futures) / ``{"code":..,"msg":..,"id":N}`` (spot,
"Error Messages").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from cryptowire.core.channels import KLINE_INTERVALS, Channel
from cryptowire.errors import SourceError

MarketName = Literal["futures", "spot"]
#: Connections: futures ``public`` and ``market``; spot its one socket (``public``).
Endpoint = Literal["public", "market"]

#: Canonical kline interval -> Binance's name (F-WS and S-WS "Kline/Candlestick Streams":
#: 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M; spot adds 1s). Every canonical interval
#: has the same name on Binance; the map is declared so that a difference would be one line.
INTERVALS: dict[str, str] = {interval: interval for interval in KLINE_INTERVALS}
INTERVAL_OF: dict[str, str] = {name: interval for interval, name in INTERVALS.items()}

#: Streams per SUBSCRIBE request (kept well under the 1024 streams a connection may hold and
#: the 10 (futures) / 5 (spot) incoming messages per second).
MAX_PARAMS_PER_REQUEST = 50
#: Streams a connection may hold (F-WS, S-WS "WebSocket Limits").
MAX_STREAMS_PER_CONNECTION = 1024
#: The book stream (the fastest diff stream both markets serve).
DEPTH_STREAM = "depth@100ms"


@dataclass(frozen=True, slots=True)
class Stream:
    """One Binance stream of a channel: its name and the connection that carries it."""

    name: str
    endpoint: Endpoint


@dataclass(frozen=True, slots=True)
class BinanceMarket:
    """One Binance market: its venue name, endpoints and REST paths."""

    venue: str  # "binance" | "binance-spot"
    market: MarketName
    ws_urls: dict[Endpoint, str]
    rest_url: str
    depth_path: str
    depth_limit: int
    info_path: str
    trade_stream: str  # "aggTrade" | "trade"

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(self.ws_urls)

    # -- symbols and streams ---------------------------------------------------------------

    def streams(self, channel: Channel) -> list[Stream]:
        """The streams serving ``channel``; :class:`SourceError` (with a reason) when this
        market has none for it."""
        if channel.venue != self.venue or channel.symbol is None:
            raise SourceError(f"{channel.name} is not a Binance {self.market} channel")
        s = stream_symbol(channel.symbol)
        kind = channel.kind
        if kind == "ticker":
            out = [Stream(f"{s}@ticker", self._data), Stream(f"{s}@bookTicker", self._fast)]
            if self.market == "futures":
                out.append(Stream(f"{s}@markPrice@1s", self._data))
            return out
        if kind == "trade":
            return [Stream(f"{s}@{self.trade_stream}", self._data)]
        if kind == "kline":
            assert channel.interval is not None
            return [Stream(f"{s}@kline_{INTERVALS[channel.interval]}", self._data)]
        if kind == "book":
            return [Stream(f"{s}@{DEPTH_STREAM}", self._fast)]
        if kind == "liquidation":
            if self.market == "spot":
                raise SourceError(
                    f"No liquidations on Binance spot ({channel.name}): forceOrder is a "
                    f"USDⓈ-M futures stream. Use liquidation:{channel.symbol}@binance.")
            return [Stream(f"{s}@forceOrder", self._data)]
        raise SourceError(f"Binance does not serve {kind} channels ({channel.name})")

    @property
    def _data(self) -> Endpoint:
        return "market" if self.market == "futures" else "public"

    @property
    def _fast(self) -> Endpoint:
        return "public"

    def depth_url(self, symbol: str) -> str:
        return f"{self.rest_url}{self.depth_path}?symbol={symbol}&limit={self.depth_limit}"

    def info_url(self) -> str:
        return f"{self.rest_url}{self.info_path}"


def futures(public_url: str = "wss://fstream.binance.com/public/stream",
            market_url: str = "wss://fstream.binance.com/market/stream",
            rest_url: str = "https://fapi.binance.com") -> BinanceMarket:
    """USDⓈ-M perpetuals (``@binance``): two connections, ``/public`` and ``/market``."""
    return BinanceMarket(
        venue="binance", market="futures",
        ws_urls={"public": public_url, "market": market_url},
        rest_url=rest_url.rstrip("/"), depth_path="/fapi/v1/depth", depth_limit=1000,
        info_path="/fapi/v1/exchangeInfo", trade_stream="aggTrade")


def spot(ws_url: str = "wss://stream.binance.com:9443/stream",
         rest_url: str = "https://api.binance.com") -> BinanceMarket:
    """Spot (``@binance-spot``): one connection (named ``public``)."""
    return BinanceMarket(
        venue="binance-spot", market="spot", ws_urls={"public": ws_url},
        rest_url=rest_url.rstrip("/"), depth_path="/api/v3/depth", depth_limit=5000,
        info_path="/api/v3/exchangeInfo", trade_stream="trade")


def stream_symbol(symbol: str) -> str:
    """``BTCUSDT`` -> ``btcusdt`` (stream names are lower case)."""
    return symbol.lower()


def symbol_of(stream: str) -> str:
    """``btcusdt@depth@100ms`` -> ``BTCUSDT``."""
    return stream.partition("@")[0].upper()


# -- requests and replies -------------------------------------------------------------------


def subscribe_request(streams: list[str], request_id: int) -> dict[str, Any]:
    return {"method": "SUBSCRIBE", "params": list(streams), "id": request_id}


def unsubscribe_request(streams: list[str], request_id: int) -> dict[str, Any]:
    return {"method": "UNSUBSCRIBE", "params": list(streams), "id": request_id}


def chunks(streams: list[str], size: int = MAX_PARAMS_PER_REQUEST) -> list[list[str]]:
    """``streams`` in requests of at most ``size``."""
    return [streams[i:i + size] for i in range(0, len(streams), size)]
