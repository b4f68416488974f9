"""A channel's current state, reduced from its publications (PROTOCOLS.md 4.1 and 4.2).

Stateful channels (:data:`~cryptowire.core.channels.STATE_KINDS`) have a value a subscriber
can start from: for ``ticker`` and ``kline`` the last publication (each carries the full
state), for ``book`` the :class:`~cryptowire.books.OrderBook` its publications build: a
``snapshot`` replaces it, a ``delta`` applies to it, a ``gap`` clears it (unknown until the
next snapshot). :class:`ChannelState` tracks the ``(epoch, offset)`` of the last publication
it includes and produces the state as one ``snapshot`` :class:`Publication` carrying that
offset, so a client that applies it and then the frames after it is exactly where the
publisher is.

It never serves a wrong book: a delta before any snapshot, after a gap, after a hole in the
offsets, one that cannot be applied, or one that leaves the book crossed, makes the state
unknown (:meth:`ChannelState.snapshot` returns ``None``) until the next snapshot.

Pure: no I/O, no clock. The brokers keep one per stateful channel they publish or serve
(:class:`StateStore`), the hub one per channel it conflates.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import orjson

from cryptowire.books import BookError, OrderBook
from cryptowire.core.channels import STATE_KINDS
from cryptowire.events import Publication


def kind_of(channel: str) -> str:
    """The kind of a canonical channel name (``book:50:BTCUSDT`` -> ``book``)."""
    return channel.partition(":")[0]


def is_stateful(channel: str) -> bool:
    """Whether the canonical channel ``channel`` has a state (ticker, kline, book)."""
    return kind_of(channel) in STATE_KINDS


def _depth_of(channel: str) -> int | None:
    depth = channel.split(":", 2)[1] if channel.count(":") >= 2 else ""
    return int(depth) if depth.isdigit() else None


class ChannelState:
    """The state of one stateful channel, fed its publications in offset order."""

    __slots__ = ("channel", "book", "epoch", "offset", "_last", "_full", "_known", "_symbol",
                 "_venue_seq", "_cached", "_lost")

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.book = OrderBook(_depth_of(channel)) if kind_of(channel) == "book" else None
        #: Where the state stands: the last publication it includes ("" / 0: none yet).
        self.epoch = ""
        self.offset = 0
        self._last: Publication | None = None
        self._full: Publication | None = None  # ticker, kline: the last value
        self._known = False
        self._symbol: Any = None
        self._venue_seq: Any = None
        self._cached: Publication | None = None
        self._lost = False  # known once, unknown since (see marker())

    @property
    def known(self) -> bool:
        return self._known

    def apply(self, pub: Publication) -> None:
        """Include ``pub``; one already included (same epoch, offset not after) is ignored,
        except a ``gap`` (the Redis bus announces one at the offset it resumes from)."""
        if pub.epoch == self.epoch and self.offset and (
                pub.offset < self.offset or (pub.offset == self.offset and pub.type != "gap")):
            return
        contiguous = pub.epoch == self.epoch and pub.offset <= self.offset + 1
        self.epoch, self.offset = pub.epoch, pub.offset
        self._last = pub
        self._cached = None
        if self.book is None:
            # Full-state kinds: the last value stays the state through a gap (the next
            # publication replaces it whole).
            if pub.type != "gap":
                self._full = pub
            self._known = self._full is not None
            return
        self._reduce_book(pub, contiguous)

    def _reduce_book(self, pub: Publication, contiguous: bool) -> None:
        book = self.book
        assert book is not None
        kind = pub.type
        try:
            if kind == "snapshot":
                data = orjson.loads(pub.data_json)
                book.snapshot(data["bids"], data["asks"])
                self._symbol = data.get("symbol")
                self._venue_seq = data.get("venueSeq")
                self._known = self._lost = False  # a new start: known unless crossed
            elif kind == "delta" and self._known and contiguous:
                data = orjson.loads(pub.data_json)
                book.apply(data["bids"], data["asks"])
                if "venueSeq" in data:
                    self._venue_seq = data["venueSeq"]
            else:  # a gap, a delta after a hole or on an unknown book, a type books lack
                raise ValueError(kind)
            if not book.crossed():
                self._known = True
                return
        except (BookError, KeyError, TypeError, ValueError):
            pass  # cannot be applied exactly: the book is unknown from here (below)
        self._lost = self._lost or self._known or kind == "snapshot"
        self._known = False
        book.clear()

    def forget(self) -> None:
        """Make the state unknown (what it was built from is in doubt)."""
        self._lost = self._lost or self._known
        self._known = False
        self._cached = None
        self._full = None
        if self.book is not None:
            self.book.clear()

    def marker(self) -> Publication | None:
        """While a state that was known is unknown: the ``gap`` that says so (the one
        published, or one made at :attr:`offset` when a delta could not be applied)."""
        last = self._last
        if self._known or last is None or not (self._lost or last.type == "gap"):
            return None
        if last.type == "gap":
            return last
        return Publication(
            channel=self.channel, type="gap", epoch=last.epoch, offset=last.offset,
            ts=last.ts, ts_received=last.ts_received, source=last.source,
            data_json=b'{"reason":"the book is unknown until its next snapshot"}')

    def snapshot(self) -> Publication | None:
        """The state as a ``snapshot`` publication at :attr:`offset`, or ``None``."""
        if not self._known or self._last is None:
            return None
        if self._cached is not None:
            return self._cached
        last = self._last
        if self.book is None:
            assert self._full is not None
            data_json = self._full.data_json
        else:
            body: dict[str, Any] = {"symbol": self._symbol,
                                    "bids": self.book.levels("bids"),
                                    "asks": self.book.levels("asks")}
            if self._venue_seq is not None:
                body["venueSeq"] = self._venue_seq
            data_json = orjson.dumps(body)
        self._cached = Publication(
            channel=self.channel, type="snapshot", epoch=last.epoch, offset=last.offset,
            ts=last.ts, ts_received=last.ts_received, source=last.source,
            data_json=data_json)
        return self._cached


class StateStore:
    """The states of many channels, at most ``max_channels`` (least recently published
    dropped first: a dropped state is rebuilt from its next snapshot)."""

    def __init__(self, max_channels: int) -> None:
        self.max_channels = max(1, max_channels)
        self._states: OrderedDict[str, ChannelState] = OrderedDict()

    def apply(self, pub: Publication) -> None:
        """Include ``pub`` in its channel's state (nothing for a channel without one)."""
        if not is_stateful(pub.channel):
            return
        state = self.get(pub.channel, create=True)
        assert state is not None
        state.apply(pub)

    def get(self, channel: str, create: bool = False) -> ChannelState | None:
        state = self._states.get(channel)
        if state is not None:
            self._states.move_to_end(channel)
        elif create:
            state = self._states[channel] = ChannelState(channel)
            while len(self._states) > self.max_channels:
                self._states.popitem(last=False)
        return state

    def snapshot(self, channel: str) -> Publication | None:
        state = self._states.get(channel)
        return state.snapshot() if state is not None else None

    def drop(self, channel: str) -> None:
        self._states.pop(channel, None)

    def __len__(self) -> int:
        return len(self._states)
