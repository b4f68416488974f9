"""One Binance market's channels over its connections, sans-I/O: :class:`BinanceFeed`.

The connection layer (the exchange seam's supervisor) owns the sockets and the REST calls;
this class decides what to send and what to publish:

- :meth:`BinanceFeed.add` / :meth:`BinanceFeed.remove` a channel -> the streams to
  ``SUBSCRIBE`` / ``UNSUBSCRIBE`` per connection (a stream shared by channels, e.g. one
  ``@depth@100ms`` for every book depth of a symbol or ``bookTicker`` for the ticker, is
  asked for once and dropped with its last channel), and, for a book channel joining a live
  book, its snapshot at once;
- :meth:`BinanceFeed.on_message` (a text frame of one connection) -> the events to publish,
  the symbols whose REST depth snapshot must be fetched now, the request answers;
- :meth:`BinanceFeed.on_depth_snapshot` -> the events of a synchronised book;
- :meth:`BinanceFeed.on_disconnect` -> a ``gap`` on every book of that connection (its
  books restart from a new snapshot after the resubscribe).

Ticker and kline channels publish ``snapshot`` first after a (re)subscribe, ``update`` then;
trade and liquidation channels always ``update`` (PROTOCOLS.md 4.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptowire.core.channels import Channel
from cryptowire.events import Event
from cryptowire.sources.venues.binance.book import BookOutput, SymbolBook
from cryptowire.sources.venues.binance.frames import (
    MalformedFrameError,
    Reply,
    Shutdown,
    StreamFrame,
    parse_frame,
)
from cryptowire.sources.venues.binance.markets import (
    DEPTH_STREAM,
    BinanceMarket,
    Endpoint,
    symbol_of,
)
from cryptowire.sources.venues.binance.payloads import (
    TickerMerge,
    parse_kline,
    parse_liquidation,
    parse_trade,
)


@dataclass(slots=True)
class Output:
    """What one input produced."""

    events: list[Event] = field(default_factory=list)
    fetch: list[str] = field(default_factory=list)  # symbols whose depth snapshot to GET
    reply: Reply | None = None
    shutdown: bool = False


@dataclass(slots=True)
class _Route:
    """The channels one stream feeds."""

    endpoint: Endpoint
    channels: set[str] = field(default_factory=set)


class BinanceFeed:
    """See the module docstring. ``source`` names the events' source (``"binance"``)."""

    def __init__(self, market: BinanceMarket, source: str = "binance") -> None:
        self.market = market
        self.source = source
        self.tickers = TickerMerge(market.market)
        self.books: dict[str, SymbolBook] = {}
        self.routes: dict[str, _Route] = {}
        self._fresh: set[str] = set()  # state channels whose next publication is a snapshot
        self._kinds: dict[str, str] = {}

    # -- channels ---------------------------------------------------------------------------

    def add(self, channel: Channel) -> tuple[dict[Endpoint, list[str]], list[Event]]:
        """Streams to subscribe (new ones only) and events to publish now; raises
        :class:`~cryptowire.errors.SourceError` with a reason for a channel it cannot serve."""
        streams = self.market.streams(channel)
        new: dict[Endpoint, list[str]] = {}
        for stream in streams:
            route = self.routes.get(stream.name)
            if route is None:
                route = self.routes[stream.name] = _Route(stream.endpoint)
                new.setdefault(stream.endpoint, []).append(stream.name)
            route.channels.add(channel.name)
        self._kinds[channel.name] = channel.kind
        events: list[Event] = []
        if channel.kind == "book":
            assert channel.symbol is not None and channel.depth is not None
            book = self.books.get(channel.symbol)
            if book is None:
                book = self.books[channel.symbol] = SymbolBook(
                    channel.symbol, self.market.market, self.market.depth_limit, self.source)
            events = book.add(channel.name, channel.depth)
        elif channel.kind in ("ticker", "kline"):
            self._fresh.add(channel.name)
            if channel.kind == "ticker" and channel.symbol is not None:
                ticker = self.tickers.ticker(channel.symbol)
                if ticker is not None:  # the merged state is whole already
                    self._fresh.discard(channel.name)
                    events = [self._event(channel.name, ticker, "snapshot", None)]
        return new, events

    def remove(self, channel: Channel) -> dict[Endpoint, list[str]]:
        """Streams no channel needs any more."""
        gone: dict[Endpoint, list[str]] = {}
        for stream in self.market.streams(channel):
            route = self.routes.get(stream.name)
            if route is None:
                continue
            route.channels.discard(channel.name)
            if not route.channels:
                del self.routes[stream.name]
                gone.setdefault(route.endpoint, []).append(stream.name)
        self._fresh.discard(channel.name)
        self._kinds.pop(channel.name, None)
        if channel.kind == "book" and channel.symbol in self.books:
            book = self.books[channel.symbol]
            book.remove(channel.name)
            if not book.views:
                del self.books[channel.symbol]
        if channel.kind == "ticker" and channel.symbol is not None and not any(
                r.startswith(f"{channel.symbol.lower()}@") and r.endswith("Ticker")
                for r in self.routes):
            self.tickers.clear(channel.symbol)
        return gone

    def streams(self, endpoint: Endpoint) -> list[str]:
        """Every stream wanted on ``endpoint`` (what a new connection subscribes)."""
        return [name for name, route in self.routes.items() if route.endpoint == endpoint]

    # -- inputs -----------------------------------------------------------------------------

    def on_message(self, raw: str | bytes) -> Output:
        """One text frame; :class:`MalformedFrameError` for one that cannot be read."""
        frame = parse_frame(raw)
        if isinstance(frame, Reply):
            return Output(reply=frame)
        if isinstance(frame, Shutdown):
            return Output(shutdown=True)
        return self.on_stream(frame)

    def on_stream(self, frame: StreamFrame) -> Output:
        route = self.routes.get(frame.stream)
        if route is None or not route.channels:
            return Output()  # unsubscribed meanwhile
        data = frame.data
        name = frame.stream.partition("@")[2]
        ts = data.get("E")
        ts = ts if isinstance(ts, int) and not isinstance(ts, bool) else None
        if name == DEPTH_STREAM:
            symbol = symbol_of(frame.stream)
            book = self.books.get(symbol)
            return self._book(symbol, book.on_event(data)) if book is not None else Output()
        if name in ("ticker", "bookTicker", "markPrice@1s"):
            _, ticker = self.tickers.apply(data)
            if ticker is None:
                return Output()
            return Output([self._state(c, ticker, ts) for c in sorted(route.channels)])
        if name.startswith("kline_"):
            kline = parse_kline(data)
            return Output([self._state(c, kline, ts) for c in sorted(route.channels)])
        if name == "forceOrder":
            payload: Any = parse_liquidation(data)
        elif name in ("aggTrade", "trade"):
            payload = [parse_trade(data, self.market.market)]
        else:
            raise MalformedFrameError(f"unexpected stream {frame.stream!r}")
        return Output([self._event(c, payload, "update", ts) for c in sorted(route.channels)])

    def on_depth_snapshot(self, symbol: str, payload: Mapping[str, Any]) -> Output:
        book = self.books.get(symbol)
        if book is None:
            return Output()
        return self._book(symbol, book.on_snapshot(payload))

    def on_depth_failure(self, symbol: str) -> None:
        """The REST snapshot could not be had: the next diff asks for it again."""
        book = self.books.get(symbol)
        if book is not None:
            book.fetching = False

    def on_disconnect(self, endpoint: Endpoint, reason: str) -> Output:
        """A connection is gone: its books break; state channels start with a snapshot."""
        out = Output()
        for name, route in self.routes.items():
            if route.endpoint != endpoint:
                continue
            for channel in route.channels:
                if self._kinds.get(channel) in ("ticker", "kline"):
                    self._fresh.add(channel)
            if name.endswith(f"@{DEPTH_STREAM}"):
                book = self.books.get(symbol_of(name))
                if book is not None:
                    result = book.broken(f"upstream connection lost ({reason})", fetch=False)
                    out.events += result.events
        return out

    # -- pieces -----------------------------------------------------------------------------

    @staticmethod
    def _book(symbol: str, result: BookOutput) -> Output:
        return Output(result.events, [symbol] if result.fetch else [])

    def _state(self, channel: str, data: Any, ts: int | None) -> Event:
        kind = "snapshot" if channel in self._fresh else "update"
        self._fresh.discard(channel)
        return self._event(channel, data, kind, ts)

    def _event(self, channel: str, data: Any, kind: str, ts: int | None) -> Event:
        return Event(channel=channel, data=data, type=kind, ts_source=ts, source=self.source)
