"""A Bybit data frame -> the events of the channels its topic serves, sans-I/O.

A ticker frame is merged into the socket's :class:`~.parser.TickerBook` (Bybit sends linear
tickers as a snapshot then deltas); a kline frame gives one event per candle; a trade frame
one event; an ``allLiquidation`` frame one event per liquidation; an ``orderbook`` frame goes
through the topic's :class:`~.book.TopicBook` (a ``snapshot``, a ``delta``, nothing, or a
``gap`` whose break the connection then acts on). For the channels with a state (ticker,
kline: :data:`~cryptowire.core.channels.STATE_KINDS`) the first frame after a (re)subscribe
is the full state (``snapshot``), and so is a linear ticker snapshot (a reset); everything
else is an ``update``: event channels (trade, liquidation) never carry ``snapshot``
(PROTOCOLS.md 4.2).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from cryptowire.core.channels import STATE_KINDS
from cryptowire.events import Event
from cryptowire.sources.bybit.book import BookBreak
from cryptowire.sources.bybit.parser import (
    DataFrame,
    TickerBook,
    parse_klines,
    parse_liquidations,
    parse_trades,
)
from cryptowire.sources.bybit.subscriptions import Subscription
from cryptowire.sources.bybit.topics import Category


def events_of(frame: DataFrame, sub: Subscription, book: TickerBook, category: Category,
              source: str) -> Iterator[Event]:
    """The events of ``frame`` for every channel of ``sub``, lazily: the channels are read
    as each payload is reached, so one unsubscribed meanwhile gets no more of them."""
    payloads: list[Any]
    kind = frame.topic.kind
    if kind == "book":
        yield from _book_events(frame, sub, source)
        return
    if kind == "ticker":
        payloads = [book.apply(frame)]
    elif kind == "kline":
        payloads = list(parse_klines(frame))
    elif kind == "liquidation":
        payloads = list(parse_liquidations(frame))
    else:
        payloads = [parse_trades(frame)]
    snapshot = kind in STATE_KINDS and (
        sub.fresh or (kind == "ticker" and frame.type == "snapshot" and category == "linear"))
    sub.fresh = False
    sub.live = True
    for i, payload in enumerate(payloads):
        kind_of_event = "snapshot" if snapshot and i == 0 else "update"
        for channel in list(sub.channels):
            yield Event(channel=channel, data=payload, type=kind_of_event, ts_source=frame.ts,
                        source=source)


def _book_events(frame: DataFrame, sub: Subscription, source: str) -> Iterator[Event]:
    """A ``snapshot`` or ``delta`` of a valid book; on a break a ``gap`` (the break is left
    in ``sub.broken`` for the connection to count and re-subscribe)."""
    assert sub.book is not None
    change = sub.book.apply(frame)
    sub.live = True
    if change is None:
        return
    event_type: str
    data: object
    if isinstance(change, BookBreak):
        sub.broken = change
        event_type, data = "gap", {"reason": change.reason}
    else:
        event_type, data = change.type, change.data
    for channel in list(sub.channels):
        yield Event(channel=channel, data=data, type=event_type, ts_source=frame.ts,
                    source=source)


def reconnect_gaps(subs: Iterable[Subscription], reason: str, source: str) -> list[Event]:
    """The ``gap`` of every channel of the topics a lost socket left owing one (``since``: ms
    of the last frame before the loss), published before any data of the new socket."""
    events = []
    for sub in subs:
        if sub.gap_since is None:
            continue
        data = {"reason": f"upstream reconnected: {reason}", "since": sub.gap_since}
        sub.gap_since = None
        events += [Event(channel=channel, data=data, type="gap", source=source)
                   for channel in sub.channels]
    return events
