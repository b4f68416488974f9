"""One OKX ``books`` stream validated and published as ``book:<depth>`` cut views, sans-I/O.

OKX's ``books`` channel (docs: #order-book-trading-market-data-ws-order-book-channel) pushes
the 400-level book as a ``snapshot`` then ``update``\\ s, each with ``seqId`` and
``prevSeqId`` (an update continues the book iff its ``prevSeqId`` is the last ``seqId``:
:func:`~cryptowire.sources.venues.okx_book.sequence_gap`) and a ``checksum`` (CRC32 of the
top 25 levels; ``0`` since OKX deprecated it on 2026-06-23, then not checked:
:func:`~cryptowire.sources.venues.okx_book.check`). Levels are ``[px, sz, "0", orders]``;
size ``"0"`` deletes.

:class:`OkxBook` keeps the book of one instrument (an :class:`~cryptowire.books.OrderBook`
cut at OKX's 400 levels) and, for each ``book:<depth>`` channel subscribed, a cut view:

- a snapshot -> a ``snapshot`` per depth (the whole book cut at the depth);
- an update that continues the book -> per depth, a ``delta`` of the cut view: the levels
  of the cut whose size changed or that entered it, then ``[price, "0"]`` for each level that
  left it (deleted, or pushed out by a better one); no publication for a depth whose cut did
  not change;
- anything else -> a :class:`BookBreak` (``sequence``: ``prevSeqId`` mismatch; ``checksum``:
  a non-zero checksum that is not the merged book's; ``no_snapshot``; ``malformed``;
  ``crossed``): the book is dropped, updates are ignored until the next snapshot, and the
  connection re-subscribes ``books`` for a fresh one. A book known to be wrong is never
  published.

Sizes are published in base units (swap contracts x ``ctVal``, exactly:
:meth:`~cryptowire.sources.venues.okx.instruments.Instrument.base_size`); the book itself
keeps OKX's strings, which the checksum is computed on. ``venueSeq`` is OKX's ``seqId``.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from cryptowire.books import BookError, Level, OrderBook, Side
from cryptowire.events import BookData
from cryptowire.sources.exchange.codec import BookBreak, BookChange
from cryptowire.sources.venues.okx.instruments import Instrument
from cryptowire.sources.venues.okx.protocol import Push
from cryptowire.sources.venues.okx_book import check, sequence_gap

#: The levels per side of OKX's ``books`` channel.
VENUE_DEPTH = 400
#: Why a book broke: the ``reason`` label of ``cryptowire_book_resyncs_total``.
BREAK_CAUSES: tuple[str, ...] = ("sequence", "checksum", "no_snapshot", "malformed", "crossed")
_SIDES: tuple[Side, Side] = ("bids", "asks")


class _View:
    """The cut one ``book:<depth>`` channel publishes, known by its last price per side.

    After an update the cut's changes are found without rebuilding it: the levels the update
    touched that are in the new cut (their new size) or were in the old one and are not in
    the new (``"0"``), then the untouched levels that crossed the cut's end because it moved
    (entered: their size; left: ``"0"``), read from the book's sorted prices by bisection.
    The end of a cut holding a whole side is that side's infinity.
    """

    __slots__ = ("depth", "worst")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.worst: dict[Side, Decimal] = {"bids": _NEG_INF, "asks": _POS_INF}

    def load(self, book: OrderBook) -> dict[Side, list[Level]]:
        for side in _SIDES:
            self.worst[side] = self._end(book, side)
        return {side: book.levels(side, self.depth) for side in _SIDES}

    def _end(self, book: OrderBook, side: Side) -> Decimal:
        order = book.bids.order if side == "bids" else book.asks.order
        if len(order) < self.depth:
            return _NEG_INF if side == "bids" else _POS_INF
        return order[-self.depth] if side == "bids" else order[self.depth - 1]

    def changes(self, book: OrderBook, side: Side, touched: list[tuple[Decimal, str]]
                ) -> list[Level]:
        """The cut's changes on ``side`` after the levels ``touched`` (price key and text)
        were applied."""
        old, new = self.worst[side], self._end(book, side)
        self.worst[side] = new
        if not touched and old == new:
            return []
        bids = side == "bids"
        book_side = book.bids if bids else book.asks
        levels, order = book_side.levels, book_side.order
        out: list[Level] = []
        for key, price in touched:
            level = levels.get(key)
            if level is not None and (key >= new if bids else key <= new):
                out.append(list(level))
            elif key >= old if bids else key <= old:
                out.append([price if level is None else level[0], "0"])
        if old != new:
            if bids:
                low, high = sorted((old, new))
                span = order[bisect_left(order, low):bisect_left(order, high)]
            else:
                low, high = sorted((old, new))
                span = order[bisect_right(order, low):bisect_right(order, high)]
            entered = new < old if bids else new > old
            keys = {key for key, _ in touched}
            for key in span:
                if key not in keys:
                    price, size = levels[key]
                    out.append([price, size if entered else "0"])
        return out


_NEG_INF = Decimal("-Infinity")
_POS_INF = Decimal("Infinity")


class OkxBook:
    """The validated ``books`` stream of one instrument and its cut views."""

    def __init__(self, instrument: Instrument, depths: Iterable[int] = ()) -> None:
        self.instrument = instrument
        self.book = OrderBook(VENUE_DEPTH)
        #: The ``seqId`` the book is at; ``None`` while there is no valid book.
        self.seq: int | None = None
        #: A break was reported: updates are dropped until a snapshot comes.
        self.waiting = False
        self.views: dict[int, _View] = {depth: _View(depth) for depth in depths}

    @property
    def valid(self) -> bool:
        return self.seq is not None

    def add_depth(self, depth: int) -> BookChange | None:
        """Publish ``book:<depth>`` too; its snapshot now if the book is valid."""
        view = self.views.setdefault(depth, _View(depth))
        return self._snapshot_of(view) if self.valid else None

    def remove_depth(self, depth: int) -> None:
        self.views.pop(depth, None)

    def reset(self) -> None:
        """A new connection: the book is gone, the first push must be a snapshot."""
        self.book = OrderBook(VENUE_DEPTH)
        self.seq = None
        self.waiting = False

    def apply(self, push: Push) -> dict[int, BookChange] | BookBreak | None:
        """What a ``books`` push changes: the publications per depth, a break, or ``None``
        (an update dropped while waiting for the snapshot that ends a break)."""
        snapshot = push.action == "snapshot"
        try:
            seq_data, bids, asks, checksum = self._fields(push)
        except BookError as exc:
            if self.waiting and not snapshot:
                return None
            return self._break("malformed", f"malformed push ({exc})")
        if snapshot:
            return self._snapshot(seq_data, bids, asks, checksum)
        if self.waiting:
            return None
        if self.seq is None:
            return self._break("no_snapshot", f"an update (seqId {seq_data['seqId']}) "
                                              "before any snapshot")
        gap = sequence_gap(self.seq, seq_data)
        if gap is not None:
            return self._break("sequence", gap)
        try:
            self.book.apply(bids, asks)
        except BookError as exc:
            return self._break("malformed", f"malformed level in update {seq_data['seqId']} "
                                            f"({exc})")
        problem = self._check(checksum, seq_data["seqId"])
        if problem is not None:
            return problem
        self.seq = seq_data["seqId"]
        out: dict[int, BookChange] = {}
        if not self.views:
            return out
        bid_keys = [(Decimal(level[0]), level[0]) for level in bids]
        ask_keys = [(Decimal(level[0]), level[0]) for level in asks]
        for depth, view in self.views.items():
            changed_bids = view.changes(self.book, "bids", bid_keys)
            changed_asks = view.changes(self.book, "asks", ask_keys)
            if changed_bids or changed_asks:
                out[depth] = BookChange("delta", self._data(changed_bids, changed_asks))
        return out

    # -- pieces ---------------------------------------------------------------------------

    def _snapshot(self, seq_data: Mapping[str, int], bids: list[Level], asks: list[Level],
                  checksum: int) -> dict[int, BookChange] | BookBreak:
        book = OrderBook(VENUE_DEPTH)
        try:
            book.snapshot(bids, asks)
        except BookError as exc:
            return self._break("malformed", f"malformed level in snapshot ({exc})")
        self.book = book
        problem = self._check(checksum, seq_data["seqId"])
        if problem is not None:
            return problem
        self.seq = seq_data["seqId"]
        self.waiting = False
        return {depth: self._snapshot_of(view) for depth, view in self.views.items()}

    def _snapshot_of(self, view: _View) -> BookChange:
        top = view.load(self.book)
        return BookChange("snapshot", self._data(top["bids"], top["asks"]))

    def _check(self, checksum: int, seq_id: int) -> BookBreak | None:
        book = self.book
        if book.crossed():
            bid, ask = book.best_bid(), book.best_ask()
            assert bid is not None and ask is not None
            return self._break("crossed", f"crossed book at seqId {seq_id} (best bid {bid[0]} "
                                          f">= best ask {ask[0]})")
        if checksum and check(book.levels("bids", 25), book.levels("asks", 25),
                              checksum) is False:
            return self._break("checksum", f"checksum {checksum} is not the book's at seqId "
                                           f"{seq_id}")
        return None

    def _data(self, bids: list[Level], asks: list[Level]) -> BookData:
        base = self.instrument.base_size
        return {"symbol": self.instrument.symbol,
                "bids": [[price, base(size)] for price, size in bids],
                "asks": [[price, base(size)] for price, size in asks],
                "venueSeq": self.seq if self.seq is not None else -1}

    def _break(self, cause: str, what: str) -> BookBreak:
        self.book = OrderBook(VENUE_DEPTH)
        self.seq = None
        self.waiting = True
        return BookBreak(cause, f"books {self.instrument.inst_id}: {what}; "
                                "re-synchronising from a new snapshot")

    def _fields(self, push: Push) -> tuple[dict[str, int], list[Level], list[Level], int]:
        if push.arg.get("instId") != self.instrument.inst_id:
            raise BookError(f"push for {push.arg.get('instId')!r}")
        if len(push.data) != 1 or not isinstance(push.data[0], dict):
            raise BookError("'data' is not one object")
        data: dict[str, Any] = push.data[0]
        seq_data: dict[str, int] = {}
        for name in ("seqId", "prevSeqId"):
            value = data.get(name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise BookError(f"{name} {value!r} is not an integer")
            seq_data[name] = value
        checksum = data.get("checksum", 0)
        if not isinstance(checksum, int) or isinstance(checksum, bool):
            raise BookError(f"checksum {checksum!r} is not an integer")
        return seq_data, _levels(data.get("bids")), _levels(data.get("asks")), checksum


def _levels(levels: object) -> list[Level]:
    """OKX levels ``[px, sz, "0", orders]`` as ``[px, sz]`` (checked by the book)."""
    if not isinstance(levels, list):
        raise BookError("'bids' or 'asks' is not a list of levels")
    out: list[Level] = []
    for level in levels:
        if not isinstance(level, list) or len(level) < 2:
            raise BookError(f"level {level!r} is not [px, sz, ...]")
        out.append(level[:2])
    return out
