"""One Bybit ``orderbook.<depth>.<symbol>`` stream validated into ``book:`` publications, sans-I/O.

Bybit's rules (docs: v5/websocket/public/orderbook, "Process snapshot/delta" and the ``u``
field): after a subscribe the first frame is a ``snapshot``; ``delta``\\ s follow, each with
the update id ``u`` one more than the previous; "If you receive a new snapshot message, you
will have to reset your local orderbook"; "Occasionally, you'll receive "u"=1, which is a
snapshot data due to the restart of the service. So please overwrite your local orderbook";
a size of ``0`` deletes the level. Frames look like::

    {"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,
     "data":{"s":"BTCUSDT","b":[["30247.20","30.028"],["30240.00","0"]],"a":[...],
             "u":177400507,"seq":66544703342},"cts":1687940967464}

:class:`TopicBook` keeps the book of one topic (a :class:`~cryptowire.books.OrderBook` cut at
the topic's depth) and turns each frame into what to publish:

- a snapshot, or any frame with ``u == 1``, replaces the book -> a ``snapshot`` with the
  whole book cut at depth, bids best (highest) first, asks best (lowest) first;
- a delta with ``u`` = previous ``u`` + 1 -> a ``delta`` with the levels exactly as Bybit
  sent them, then ``[price, "0"]`` for each level the depth cut removed;
- anything else is a :class:`BookBreak`: a delta before any snapshot, a ``u`` that is not the
  next one, a malformed frame or level, a crossed result (best bid >= best ask). The book is
  dropped and every delta is ignored until the next snapshot (the connection re-subscribes
  the topic so that Bybit sends one). A book known to be wrong is never published.

``venueSeq`` is Bybit's ``u`` (the update id the book is at); ``seq`` (the cross sequence)
and ``cts`` are not published.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cryptowire.books import BookError, OrderBook
from cryptowire.sources.bybit.parser import DataFrame
from cryptowire.sources.exchange.codec import BookBreak, BookChange

#: Why a book broke: the ``reason`` label of ``cryptowire_book_resyncs_total``.
BREAK_CAUSES: tuple[str, ...] = ("sequence", "no_snapshot", "malformed", "crossed")


class TopicBook:
    """The validated book of one ``orderbook`` topic on one socket."""

    __slots__ = ("book", "depth", "symbol", "topic", "u", "waiting")

    def __init__(self, topic: str, symbol: str, depth: int) -> None:
        self.topic = topic
        self.symbol = symbol
        self.depth = depth
        self.book = OrderBook(depth)
        #: The update id the book is at; ``None`` while there is no valid book.
        self.u: int | None = None
        #: A break was reported: deltas are dropped silently until a snapshot comes.
        self.waiting = False

    def reset(self) -> None:
        """A new socket: the book is gone and its first frame must be a snapshot."""
        self.book = OrderBook(self.depth)
        self.u = None
        self.waiting = False

    def apply(self, frame: DataFrame) -> BookChange | BookBreak | None:
        """What ``frame`` changes: a publication, a break, or ``None`` (dropped while
        waiting for the snapshot that ends a break)."""
        data = frame.data
        try:
            u, bids, asks = self._fields(data)
        except BookError as exc:
            if self.waiting and frame.type != "snapshot":
                return None
            return self._break("malformed", f"malformed frame ({exc})")
        if frame.type == "snapshot" or u == 1:
            return self._snapshot(u, bids, asks)
        if self.waiting:
            return None
        if self.u is None:
            return self._break("no_snapshot", f"a delta (u={u}) before any snapshot")
        if u != self.u + 1:
            return self._break("sequence", f"update id {u} after {self.u} "
                                           f"(expected {self.u + 1})")
        try:
            removed_bids, removed_asks = self.book.apply(bids, asks)
        except BookError as exc:
            return self._break("malformed", f"malformed level in update {u} ({exc})")
        if self.book.crossed():
            return self._crossed(u)
        self.u = u
        return BookChange("delta", {
            "symbol": self.symbol,
            "bids": [list(level) for level in bids] + removed_bids,
            "asks": [list(level) for level in asks] + removed_asks,
            "venueSeq": u,
        })

    # -- pieces ---------------------------------------------------------------------------

    def _snapshot(self, u: int, bids: list[Any], asks: list[Any]) -> BookChange | BookBreak:
        book = OrderBook(self.depth)
        try:
            book.snapshot(bids, asks)
        except BookError as exc:
            return self._break("malformed", f"malformed level in snapshot {u} ({exc})")
        self.book = book
        if book.crossed():
            return self._crossed(u)
        self.u = u
        self.waiting = False
        return BookChange("snapshot", {
            "symbol": self.symbol,
            "bids": book.levels("bids"),
            "asks": book.levels("asks"),
            "venueSeq": u,
        })

    def _crossed(self, u: int) -> BookBreak:
        bid, ask = self.book.best_bid(), self.book.best_ask()
        assert bid is not None and ask is not None
        return self._break("crossed", f"crossed book at update {u} (best bid {bid[0]} >= "
                                      f"best ask {ask[0]})")

    def _break(self, cause: str, what: str) -> BookBreak:
        self.book = OrderBook(self.depth)
        self.u = None
        self.waiting = True
        return BookBreak(cause, f"{self.topic}: {what}; re-synchronising from a new snapshot")

    def _fields(self, data: object) -> tuple[int, list[Any], list[Any]]:
        if not isinstance(data, Mapping):
            raise BookError("'data' is not an object")
        if data.get("s") != self.symbol:
            raise BookError(f"symbol {data.get('s')!r}, not {self.symbol!r}")
        u = data.get("u")
        if not isinstance(u, int) or isinstance(u, bool) or u < 1:
            raise BookError(f"update id 'u' is {u!r}, not a positive integer")
        bids, asks = data.get("b"), data.get("a")
        if not isinstance(bids, list) or not isinstance(asks, list):
            raise BookError("'b' or 'a' is not a list of levels")
        return u, bids, asks
