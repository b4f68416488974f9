"""A Bybit data frame -> the events of the channels its topic serves, sans-I/O.

A ticker frame is merged into the socket's :class:`~.parser.TickerBook` (Bybit sends linear
tickers as a snapshot then deltas); a kline frame gives one event per candle; a trade frame
one event. The first frame after a (re)subscribe is the full state (``snapshot``), and so is a
linear ticker snapshot (a reset); everything else is an ``update``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cryptowire.events import Event
from cryptowire.sources.bybit.parser import DataFrame, TickerBook, parse_klines, parse_trades
from cryptowire.sources.bybit.subscriptions import Subscription
from cryptowire.sources.bybit.topics import Category


def events_of(frame: DataFrame, sub: Subscription, book: TickerBook, category: Category,
              source: str) -> Iterator[Event]:
    """The events of ``frame`` for every channel of ``sub``, lazily: the channels are read
    as each payload is reached, so one unsubscribed meanwhile gets no more of them."""
    payloads: list[Any]
    kind = frame.topic.kind
    if kind == "ticker":
        payloads = [book.apply(frame)]
    elif kind == "kline":
        payloads = list(parse_klines(frame))
    else:
        payloads = [parse_trades(frame)]
    snapshot = sub.fresh or (kind == "ticker" and frame.type == "snapshot"
                             and category == "linear")
    sub.fresh = False
    sub.live = True
    for i, payload in enumerate(payloads):
        kind_of_event = "snapshot" if snapshot and i == 0 else "update"
        for channel in list(sub.channels):
            yield Event(channel=channel, data=payload, type=kind_of_event, ts_source=frame.ts,
                        source=source)
