"""Bybit V5 public frames for the shared supervisor (:mod:`cryptowire.sources.exchange`):
the codec and the per-topic state, sans-I/O.

:class:`BybitCodec` classifies a frame with :func:`~.parser.parse_frame`: a topic frame is
:class:`~cryptowire.sources.exchange.codec.Data` of the stream named by its topic, an ack an
:class:`~cryptowire.sources.exchange.codec.Ack` (refused unless ``success``, except
"already subscribed": the topic flows, as asked), a pong a ``Pong``.

:class:`BybitState` turns a topic's frames into publications: a ticker frame is merged into
the topic's :class:`~.parser.TickerBook` (Bybit sends linear tickers as a snapshot then
deltas); a kline frame gives one publication per candle; a trade frame one; an
``allLiquidation`` frame one per liquidation; an ``orderbook`` frame goes through the topic's
:class:`~.book.TopicBook` (a ``snapshot``, a ``delta``, nothing, or a ``gap`` whose break the
supervisor then counts and re-subscribes). For the channels with a state (ticker, kline:
:data:`~cryptowire.core.channels.STATE_KINDS`) the first frame after a (re)subscribe is the
full state (``snapshot``), and so is a linear ticker snapshot (a reset); everything else is
an ``update``: event channels (trade, liquidation) never carry ``snapshot`` (PROTOCOLS.md
4.2).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

from cryptowire.core.channels import STATE_KINDS, Channel
from cryptowire.sources.bybit.book import TopicBook
from cryptowire.sources.bybit.parser import (
    Ack,
    DataFrame,
    Pong,
    TickerBook,
    parse_frame,
    parse_klines,
    parse_liquidations,
    parse_trades,
)
from cryptowire.sources.bybit.topics import Topic as BybitTopic
from cryptowire.sources.exchange import codec
from cryptowire.sources.exchange.venue import Market, Topic


def is_refusal(ack: Ack) -> bool:
    """Whether ``ack`` refuses its request. Bybit answers a duplicate subscription with
    ``success:false`` ``"error:already subscribed,topic:.."``: the topic is flowing, which
    is what was asked, so that is no refusal."""
    return not ack.success and "already subscribed" not in ack.ret_msg


def rejection_reason(topic: str, category: str, ret_msg: str) -> str:
    """The client-facing reason for a refused topic, built from Bybit's ``ret_msg``."""
    said = ret_msg or "no reason given"
    return (
        f"Bybit {category} refused topic '{topic}' ({said}). Check the symbol and venue "
        "(e.g. ticker:BTCUSDT or ticker:BTCUSDT@spot)."
    )


class BybitCodec:
    """The frames of a Bybit V5 public stream (the same for linear and spot)."""

    def parse(self, raw: str | bytes) -> Sequence[codec.Item]:
        frame = parse_frame(raw)
        if isinstance(frame, DataFrame):
            return [codec.Data(frame.topic.name, frame, frame.ts)]
        if isinstance(frame, Ack):
            return [codec.Ack(frame.req_id, not is_refusal(frame), frame.ret_msg,
                              frame.conn_id)]
        assert isinstance(frame, Pong)
        return [codec.Pong(frame.conn_id)]

    def state(self, topic: Topic, market: Market) -> BybitState:
        return BybitState(BybitTopic(topic.kind, topic.symbol, topic.interval, topic.depth),
                          market.key)


class BybitState(codec.BaseState):
    """The state of one Bybit topic on its socket: ``fresh`` (the next frame of a ticker or
    kline is a ``snapshot``), the merged ticker, the validated book."""

    def __init__(self, topic: BybitTopic, category: str) -> None:
        self.topic = topic
        self.category = category
        self.fresh = True
        self.tickers = TickerBook()
        self.book = (TopicBook(topic.name, topic.symbol, topic.depth)
                     if topic.kind == "book" and topic.depth is not None else None)
        self.broken: codec.Break | None = None

    def reset(self, streams: Collection[str]) -> None:
        """A new socket: the next frame is a fresh snapshot; the book waits for one."""
        self.fresh = True
        self.tickers.clear()
        if self.book is not None:
            self.book.reset()

    def apply(self, data: codec.Data, channels: Mapping[str, Channel | None]
              ) -> Iterator[codec.Pub]:
        """The publications of ``data`` for every channel, lazily: the channels are read as
        each payload is reached, so one unsubscribed meanwhile gets no more of them."""
        frame: DataFrame = data.frame
        kind = frame.topic.kind
        if kind == "book":
            yield from self._book(frame, channels)
            return
        payloads: list[Any]
        if kind == "ticker":
            payloads = [self.tickers.apply(frame)]
        elif kind == "kline":
            payloads = list(parse_klines(frame))
        elif kind == "liquidation":
            payloads = list(parse_liquidations(frame))
        else:
            payloads = [parse_trades(frame)]
        snapshot = kind in STATE_KINDS and (self.fresh or (
            kind == "ticker" and frame.type == "snapshot" and self.category == "linear"))
        self.fresh = False
        for i, payload in enumerate(payloads):
            event_type = "snapshot" if snapshot and i == 0 else "update"
            for channel in list(channels):
                yield codec.Pub(channel, event_type, payload, frame.ts)

    def _book(self, frame: DataFrame, channels: Mapping[str, Channel | None]
              ) -> Iterator[codec.Pub]:
        """A ``snapshot`` or ``delta`` of a valid book; on a break a ``gap`` (the break is
        left in ``broken`` for the supervisor to count and re-subscribe)."""
        assert self.book is not None
        change = self.book.apply(frame)
        if change is None:
            return
        event_type: str
        payload: object
        if isinstance(change, codec.BookBreak):
            self.broken = codec.Break(change.cause, change.reason)
            event_type, payload = "gap", {"reason": change.reason}
        else:
            event_type, payload = change.type, change.data
        for channel in list(channels):
            yield codec.Pub(channel, event_type, payload, frame.ts)
