"""OKX frames for the exchange seam (:mod:`cryptowire.sources.exchange`): codec and states.

:class:`OkxCodec` classifies a frame (:func:`~.protocol.parse_frame`): a push is
:class:`~cryptowire.sources.exchange.codec.Data` of the stream ``<channel>:<instId>`` (or
``liquidation-orders:SWAP``), a subscribe/unsubscribe reply an ``Ack`` (matched by the
request's ``id``), an ``error`` event a refused ``Ack``, the text ``pong`` a ``Pong``, the
``64008`` notice a ``Notice`` that replaces the socket.

One state per topic (:func:`state`):

- ticker: ``tickers`` (+ ``funding-rate`` + ``mark-price`` on swaps) merged by
  :class:`~.parser.TickerMerge`; the first publication after a (re)subscribe is a
  ``snapshot``, the others ``update``\\ s;
- trade: one ``update`` per push carrying the list of its trades (as Bybit's);
- kline: one publication per candle, the first after a (re)subscribe a ``snapshot``;
- book: :class:`~.book.OkxBook` with one cut view per subscribed depth (channels of every
  depth of an instrument share the topic); a break publishes ``gap`` on every depth and is
  left in ``broken`` for the supervisor to re-subscribe ``books``;
- liquidation: the shared ``liquidation-orders`` stream filtered to the topic's instrument,
  one ``update`` per liquidation.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, TypeGuard

from cryptowire.core.channels import Channel
from cryptowire.sources.exchange import codec
from cryptowire.sources.exchange.venue import Topic
from cryptowire.sources.venues.okx.book import OkxBook
from cryptowire.sources.venues.okx.instruments import Instrument
from cryptowire.sources.venues.okx.parser import (
    TickerMerge,
    parse_candles,
    parse_liquidations,
    parse_trades,
)
from cryptowire.sources.venues.okx.protocol import (
    NOTICE_RECONNECT,
    Ack,
    ErrorReply,
    Notice,
    Pong,
    Push,
    arg_key,
    parse_frame,
)
from cryptowire.sources.venues.okx.table import InstrumentTable


def stream_key(arg: Mapping[str, Any]) -> str:
    """The seam's stream key of an OKX argument: ``tickers:BTC-USDT-SWAP``."""
    channel, target = arg_key(arg)
    return f"{channel}:{target}"


def sequence(frame: Push) -> tuple[int | None, int | None]:
    """A ``books`` push's place in its stream, the same on every socket (what a socket
    rotation hands a stream over by): ``seqId`` following ``prevSeqId`` (a snapshot follows
    nothing); a single trade's ``tradeId``; ``None`` for the full-state channels."""
    data = frame.data[0] if len(frame.data) == 1 and isinstance(frame.data[0], dict) else None
    if data is None:
        return None, None
    if frame.channel.startswith("books"):
        seq, prev = data.get("seqId"), data.get("prevSeqId")
        if not _is_int(seq):
            return None, None
        if frame.action == "snapshot" or not _is_int(prev) or prev < 0:
            return seq, None
        return seq, prev
    if frame.channel == "trades":
        trade_id = data.get("tradeId")
        if isinstance(trade_id, str) and trade_id.isdigit():
            return int(trade_id), None
    return None, None


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


class OkxCodec:
    """The frames of OKX's public and business sockets (both markets)."""

    def __init__(self, tables: Mapping[str, InstrumentTable]) -> None:
        self.tables = tables

    def parse(self, raw: str | bytes) -> Sequence[codec.Item]:
        frame = parse_frame(raw)
        if isinstance(frame, Push):
            seq, prev = sequence(frame)
            return [codec.Data(stream_key(frame.arg), frame, seq=seq, prev=prev)]
        if isinstance(frame, Ack):
            return [codec.Ack(frame.req_id, True, "", frame.conn_id)]
        if isinstance(frame, ErrorReply):
            return [codec.Ack(frame.req_id, False, f"{frame.code}: {frame.msg}")]
        if isinstance(frame, Notice):
            return [codec.Notice(f"{frame.code} {frame.msg}",
                                 reconnect=frame.code == NOTICE_RECONNECT)]
        assert isinstance(frame, Pong)
        return [codec.Pong()]

    def state(self, topic: Topic, market: Any) -> codec.TopicState:
        table = self.tables[market.key]
        inst_id = topic.key.rsplit(":", 1)[1]
        made: type[_State] = _STATES[topic.kind]
        return made(table, topic.symbol, inst_id)


class _State(codec.BaseState):
    """What every OKX topic state shares: its instrument (known once the list is) and
    whether the next state publication is the first after a (re)subscribe."""

    def __init__(self, table: InstrumentTable, symbol: str, inst_id: str) -> None:
        self.table = table
        self.symbol = symbol
        self.inst_id = inst_id
        self.fresh = True
        self.broken: codec.Break | None = None
        self._instrument: Instrument | None = None

    @property
    def instrument(self) -> Instrument:
        if self._instrument is None:
            self._instrument = self.table.instrument(self.symbol, self.inst_id)
        return self._instrument

    def reset(self, streams: Collection[str]) -> None:
        self.fresh = True

    def _type(self) -> str:
        first, self.fresh = self.fresh, False
        return "snapshot" if first else "update"


class TickerState(_State):
    def __init__(self, table: InstrumentTable, symbol: str, inst_id: str) -> None:
        super().__init__(table, symbol, inst_id)
        self.merge: TickerMerge | None = None

    def reset(self, streams: Collection[str]) -> None:
        super().reset(streams)
        if self.merge is not None:
            self.merge.clear()

    def apply(self, data: codec.Data, channels: Mapping[str, Channel]) -> Iterator[codec.Pub]:
        if self.merge is None:
            self.merge = TickerMerge(self.instrument)
        ticker = self.merge.apply(data.frame)
        if ticker is None:
            return
        kind = self._type()
        for name in list(channels):
            yield codec.Pub(name, kind, ticker, self.merge.ts)


class TradeState(_State):
    def apply(self, data: codec.Data, channels: Mapping[str, Channel]) -> Iterator[codec.Pub]:
        trades = parse_trades(data.frame, self.instrument)
        if not trades:
            return
        ts = trades[-1]["time"]
        for name in list(channels):
            yield codec.Pub(name, "update", trades, ts)


class KlineState(_State):
    def apply(self, data: codec.Data, channels: Mapping[str, Channel]) -> Iterator[codec.Pub]:
        for candle in parse_candles(data.frame, self.instrument):
            kind = self._type()
            for name in list(channels):
                yield codec.Pub(name, kind, candle, None)


class LiquidationState(_State):
    def apply(self, data: codec.Data, channels: Mapping[str, Channel]) -> Iterator[codec.Pub]:
        push: Push = data.frame
        if not any(isinstance(item, dict) and item.get("instId") == self.inst_id
                   for item in push.data):
            return  # another instrument's liquidation (the stream carries every swap)
        for liquidation in parse_liquidations(push, {self.inst_id: self.instrument}):
            for name in list(channels):
                yield codec.Pub(name, "update", liquidation, liquidation["time"])


class BookState(_State):
    """The ``books`` stream of one instrument, published to each depth's channels."""

    def __init__(self, table: InstrumentTable, symbol: str, inst_id: str) -> None:
        super().__init__(table, symbol, inst_id)
        self.book: OkxBook | None = None

    def reset(self, streams: Collection[str]) -> None:
        if self.book is not None:
            self.book.reset()

    def added(self, channel: Channel) -> Iterator[codec.Pub]:
        if channel.depth is None or self.book is None:
            return
        change = self.book.add_depth(channel.depth)
        if change is not None:
            yield codec.Pub(channel.name, change.type, change.data, None)

    def apply(self, data: codec.Data, channels: Mapping[str, Channel]) -> Iterator[codec.Pub]:
        if self.book is None:
            self.book = OkxBook(self.instrument)
        book, (by_depth, joined) = self.book, self._depths(channels)
        yield from joined
        push: Push = data.frame
        result = book.apply(push)
        if result is None:
            return
        ts = _book_ts(push)
        if isinstance(result, codec.BookBreak):
            self.broken = codec.Break(result.cause, result.reason)
            for name in list(channels):
                yield codec.Pub(name, "gap", {"reason": result.reason}, ts)
            return
        for depth, change in result.items():
            for name in by_depth.get(depth, ()):
                if name in channels:
                    yield codec.Pub(name, change.type, change.data, ts)

    def _depths(self, channels: Mapping[str, Channel]
                ) -> tuple[dict[int, list[str]], list[codec.Pub]]:
        """The channel names per depth (the book's views follow them), and the snapshot of
        a depth that got its view only now while the book is valid."""
        assert self.book is not None
        by_depth: dict[int, list[str]] = {}
        for name, channel in channels.items():
            if channel is not None and channel.depth is not None:
                by_depth.setdefault(channel.depth, []).append(name)
        for depth in list(self.book.views):
            if depth not in by_depth:
                self.book.remove_depth(depth)
        joined: list[codec.Pub] = []
        for depth, names in by_depth.items():
            if depth not in self.book.views:
                change = self.book.add_depth(depth)
                if change is not None:
                    joined += [codec.Pub(n, change.type, change.data, None) for n in names]
        return by_depth, joined


def _book_ts(push: Push) -> int | None:
    item = push.data[0] if push.data else None
    ts = item.get("ts") if isinstance(item, dict) else None
    return int(ts) if isinstance(ts, str) and ts.isdigit() else None


_STATES: dict[str, type[_State]] = {"ticker": TickerState, "trade": TradeState,
                                    "kline": KlineState, "book": BookState,
                                    "liquidation": LiquidationState}
