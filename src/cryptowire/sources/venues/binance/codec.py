"""Binance frames for the shared supervisor (:mod:`cryptowire.sources.exchange`): the codec
and one state per topic, sans-I/O.

:class:`BinanceCodec` classifies a combined-stream frame (:mod:`.frames`): a stream's frame
is :class:`~cryptowire.sources.exchange.codec.Data` of that stream (``ts`` its ``E``), the
answer to a request an :class:`~cryptowire.sources.exchange.codec.Ack` (refused when it
carries an error; matched by ``id``), the answer to the keep-alive (``id`` 0, see
:data:`KEEPALIVE`) a ``Pong``, spot's ``serverShutdown`` a ``Notice`` that replaces the
socket now.

The states (:meth:`BinanceCodec.state`) turn a topic's frames into publications:
:class:`TickerState` (the merge of ``24hrTicker``, ``bookTicker`` and, on futures,
``markPriceUpdate``), :class:`KlineState`, :class:`EventState` (trades, liquidations: always
``update``) and :class:`BookState` (one symbol's local book, every depth a cut of it, synced
from a REST snapshot the state asks for: :meth:`BookState.snapshot_request`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeGuard

from cryptowire.core.channels import Channel
from cryptowire.events import Event
from cryptowire.sources.exchange import codec
from cryptowire.sources.exchange.venue import Market, Topic
from cryptowire.sources.venues.binance.book import SymbolBook
from cryptowire.sources.venues.binance.frames import Reply, Shutdown, parse_frame
from cryptowire.sources.venues.binance.markets import BinanceMarket
from cryptowire.sources.venues.binance.payloads import (
    TickerMerge,
    parse_kline,
    parse_liquidation,
    parse_trade,
)

#: Binance has no JSON ping and its WebSocket pings never reach the reader, so the client's
#: keep-alive is a request whose answer proves the socket alive (a cheap one: the list of
#: the socket's streams). Its ``id`` 0 is never a subscribe's (those count from 1).
KEEPALIVE = '{"method":"LIST_SUBSCRIPTIONS","id":0}'


class BinanceCodec:
    """The frames of one Binance market's sockets."""

    def __init__(self, spec: BinanceMarket) -> None:
        self.spec = spec

    def parse(self, raw: str | bytes) -> Sequence[codec.Item]:
        frame = parse_frame(raw)
        if isinstance(frame, Reply):
            if frame.id == 0 and frame.error is None:
                return [codec.Pong()]
            if frame.id is None:  # an answer to nothing we can name (e.g. bad JSON)
                raise ValueError(f"request refused without an id: {frame.error}")
            return [codec.Ack(str(frame.id), frame.error is None, frame.error or "")]
        if isinstance(frame, Shutdown):
            return [codec.Notice("Binance announced a server shutdown (serverShutdown)",
                                 reconnect=True)]
        ts = frame.data.get("E")
        seq, prev = self.sequence(frame.data)
        return [codec.Data(frame.stream, frame.data,
                           ts if isinstance(ts, int) and not isinstance(ts, bool) else None,
                           seq, prev)]

    def sequence(self, data: Mapping[str, Any]) -> tuple[int | None, int | None]:
        """The frame's place in its stream, the same on every socket (what a socket rotation
        hands a stream over by): a depth update's last id ``u`` following ``pu`` (futures) or
        ``U - 1`` (spot), a trade's id (``a`` aggregate, ``t`` trade); ``None`` for the
        full-state frames (tickers, klines)."""
        event = data.get("e")
        if event == "depthUpdate":
            last, first, prior = data.get("u"), data.get("U"), data.get("pu")
            if not _is_int(last):
                return None, None
            if self.spec.market == "futures":
                return last, prior if _is_int(prior) else None
            return last, first - 1 if _is_int(first) else None
        if event in ("aggTrade", "trade"):
            trade_id = data.get("a" if event == "aggTrade" else "t")
            return (trade_id if _is_int(trade_id) else None), None
        return None, None

    def state(self, topic: Topic, market: Market) -> codec.TopicState:
        if topic.kind == "ticker":
            return TickerState(self.spec)
        if topic.kind == "kline":
            return KlineState()
        if topic.kind == "book":
            return BookState(topic.symbol, self.spec)
        return EventState(self.spec, topic.kind)


class TickerState(codec.BaseState):
    """One symbol's ticker: published once every part came, then on each part's frame."""

    def __init__(self, spec: BinanceMarket) -> None:
        self.merge = TickerMerge(spec.market)
        self.fresh = True
        self.broken = None

    def apply(self, data: codec.Data, channels: Mapping[str, Channel]) -> Iterator[codec.Pub]:
        _, ticker = self.merge.apply(data.frame)
        if ticker is None:
            return
        kind = "snapshot" if self.fresh else "update"
        self.fresh = False
        for name in list(channels):
            yield codec.Pub(name, kind, ticker, data.ts)

    def reset(self, streams: Collection[str]) -> None:
        """A new socket: parts from before it are not mixed with new ones."""
        self.merge.clear()
        self.fresh = True

    def added(self, channel: Channel) -> Iterable[codec.Pub]:
        ticker = self.merge.ticker(channel.symbol or "")
        return [] if ticker is None else [codec.Pub(channel.name, "snapshot", ticker)]


class KlineState(codec.BaseState):
    """One candle stream: every frame is the candle's whole state."""

    def __init__(self) -> None:
        self.fresh = True
        self.broken = None

    def apply(self, data: codec.Data, channels: Mapping[str, Channel]) -> Iterator[codec.Pub]:
        kline = parse_kline(data.frame)
        kind = "snapshot" if self.fresh else "update"
        self.fresh = False
        for name in list(channels):
            yield codec.Pub(name, kind, kline, data.ts)

    def reset(self, streams: Collection[str]) -> None:
        self.fresh = True


class EventState(codec.BaseState):
    """Trades (``[trade]`` per frame) and liquidations: always ``update``."""

    def __init__(self, spec: BinanceMarket, kind: str) -> None:
        self.market = spec.market
        self.kind = kind
        self.broken = None

    def apply(self, data: codec.Data, channels: Mapping[str, Channel]) -> Iterator[codec.Pub]:
        payload: Any
        if self.kind == "liquidation":
            payload = parse_liquidation(data.frame)
        else:
            payload = [parse_trade(data.frame, self.market)]
        for name in list(channels):
            yield codec.Pub(name, "update", payload, data.ts)


class BookState(codec.BaseState):
    """One symbol's local book (:class:`~.book.SymbolBook`) for the seam: each of the
    topic's channels (one per depth) is a cut of it."""

    def __init__(self, symbol: str, spec: BinanceMarket) -> None:
        self.spec = spec
        self.book = SymbolBook(symbol, spec.market, spec.depth_limit, "binance")
        self.broken = None

    def apply(self, data: codec.Data, channels: Mapping[str, Channel]) -> list[codec.Pub]:
        self._views(channels)
        return self._pubs(self.book.on_event(data.frame).events)

    def on_snapshot(self, body: Any, channels: Mapping[str, Channel]) -> list[codec.Pub]:
        self._views(channels)
        if not isinstance(body, dict):
            body = {}
        return self._pubs(self.book.on_snapshot(body).events)

    def snapshot_request(self) -> str | None:
        """The REST depth snapshot, once the diff stream has begun and while the book waits
        for one (the documented order: buffer first, then fetch)."""
        if not self.book.wants_snapshot():
            return None
        spec = self.spec
        return f"{spec.depth_path}?symbol={self.book.symbol}&limit={spec.depth_limit}"

    def reset(self, streams: Collection[str]) -> None:
        """A new socket: the book starts over (the supervisor published the gap)."""
        self.book.restart()

    def added(self, channel: Channel) -> Iterable[codec.Pub]:
        if channel.depth is None:
            return []
        return self._pubs(self.book.add(channel.name, channel.depth))

    def _views(self, channels: Mapping[str, Channel]) -> None:
        views = self.book.views
        for name, channel in channels.items():
            if name not in views and channel.depth is not None:
                self.book.add(name, channel.depth)  # the topic's first channel
        for name in [n for n in views if n not in channels]:
            self.book.remove(name)

    def _pubs(self, events: list[Event]) -> list[codec.Pub]:
        pubs = [codec.Pub(e.channel, e.type, e.data, e.ts_source) for e in events]
        if self.book.cause is not None:
            gap = next((e for e in events if e.type == "gap"), None)
            reason = gap.data["reason"] if gap is not None else self.book.cause
            self.broken = codec.Break(self.book.cause, reason)
            self.book.cause = None
        return pubs


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
