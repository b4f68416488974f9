"""A local order book kept from the hub's ``book:`` frames (``docs/protocol.md``, "Order books").

The hub's contract: a client that applies the latest ``snapshot`` and then every ``delta`` of
the same epoch in offset order holds exactly the venue's book cut at the channel's depth. A
:class:`Book` applies exactly that and checks it: a delta whose offset is not the next one of
the epoch it stands at (a hole), a ``gap`` frame from the hub, a client :class:`Gap`, or a
message the book cannot apply, make it *invalid* until the next ``snapshot``; it never shows a
book it knows to be incomplete as valid. Sans-I/O: feed it what the client yields.
"""

from __future__ import annotations

from typing import Any

from cryptowire.books import BookError, Level, OrderBook, Side
from cryptowire.client._messages import ClientEvent, Gap, Message


def book_channel(channel: str) -> tuple[str, int | None]:
    """The name a ``book:`` channel's messages carry, and its depth: ``book:50:BTCUSDT`` stays
    as it is; the Bybit alias ``orderbook.50.BTCUSDT`` becomes ``book:50:BTCUSDT``."""
    if channel.startswith("orderbook."):
        parts = channel.split(".")
        if len(parts) == 3:
            channel = f"book:{parts[1]}:{parts[2]}"
    parts = channel.split(":")
    if len(parts) != 3 or parts[0] != "book" or not parts[1].isdigit():
        raise ValueError(f"{channel!r} is not a book channel: use book:<depth>:<SYMBOL>, "
                         "e.g. book:50:BTCUSDT")
    return channel, int(parts[1]) or None


class Book:
    """The order book of one ``book:`` channel, as the hub's frames describe it.

    ::

        book = Book("book:50:BTCUSDT")
        async for item in client:
            if book.apply(item) and book.valid:
                print(book.best_bid(), book.best_ask())

    ``valid`` is False until the first snapshot and from a hole, a gap or a refused message
    until the next snapshot (``reason`` says why); the levels it held stay readable
    meanwhile, for a display that greys them out. ``epoch``/``offset`` are the position of
    the last frame of the channel it applied or skipped. A book that is invalid because of a
    hole gets a snapshot when the hub resynchronises, or at once on a new subscribe.
    """

    def __init__(self, channel: str) -> None:
        self.channel, depth = book_channel(channel)
        self._book = OrderBook(depth)
        self.valid = False
        self.reason = "no snapshot yet"
        self.epoch: str | None = None
        self.offset: int | None = None
        self.ts: int | None = None
        self.symbol: str | None = None
        #: The venue's sequence number of the last message applied, when the hub gives it.
        self.venue_seq: int | None = None

    @property
    def depth(self) -> int | None:
        return self._book.depth

    # -- applying -------------------------------------------------------------------------

    def apply(self, item: ClientEvent) -> bool:
        """Apply what the client yielded; True when it concerned this book (a message or a
        gap of its channel), False for anything else (ignored)."""
        if isinstance(item, Gap):
            if item.channel != self.channel:
                return False
            self._invalid(f"messages lost: {item.reason}")
            return True
        if not isinstance(item, Message) or item.channel != self.channel:
            return False
        if item.type not in ("snapshot", "delta", "gap") or self._seen(item):
            return False
        if item.type == "snapshot":
            self._snapshot(item)
        elif item.type == "gap":
            reason = item.data.get("reason") if isinstance(item.data, dict) else None
            self._invalid(f"the hub lost the venue's book: {reason or 'no reason given'}")
        elif self.valid:
            self._delta(item)
        self.epoch, self.offset, self.ts = item.epoch, item.offset, item.ts
        return True

    def _seen(self, item: Message) -> bool:
        """A message at or before the position of the same epoch (already applied)."""
        return (item.offset >= 0 and item.epoch == self.epoch and self.offset is not None
                and item.offset <= self.offset)

    def _snapshot(self, item: Message) -> None:
        data = item.data
        try:
            if not isinstance(data, dict):
                raise BookError("the data is not an object with bids and asks")
            self._book.snapshot(data.get("bids") or [], data.get("asks") or [])
        except BookError as exc:
            self._invalid(f"snapshot at offset {item.offset} refused: {exc}")
            return
        self.valid, self.reason = True, ""
        self._meta(data)

    def _delta(self, item: Message) -> None:
        if item.offset >= 0 and item.epoch != self.epoch:
            self._invalid(f"the epoch changed from {self.epoch} to {item.epoch} without a "
                          "snapshot")
            return
        if item.offset >= 0 and self.offset is not None and item.offset != self.offset + 1:
            self._invalid(f"offsets {self.offset + 1}..{item.offset - 1} of epoch "
                          f"{item.epoch} are missing")
            return
        data = item.data
        try:
            if not isinstance(data, dict):
                raise BookError("the data is not an object with bids and asks")
            self._book.apply(data.get("bids") or [], data.get("asks") or [])
        except BookError as exc:
            self._invalid(f"delta at offset {item.offset} refused: {exc}")
            return
        self._meta(data)

    def _meta(self, data: dict[str, Any]) -> None:
        symbol, seq = data.get("symbol"), data.get("venueSeq")
        if isinstance(symbol, str):
            self.symbol = symbol
        if isinstance(seq, int) and not isinstance(seq, bool):
            self.venue_seq = seq

    def _invalid(self, reason: str) -> None:
        self.valid, self.reason = False, reason

    # -- reading ----------------------------------------------------------------------------

    def best_bid(self) -> Level | None:
        """``[price, size]`` of the highest bid (decimal strings), or None."""
        return self._book.best_bid()

    def best_ask(self) -> Level | None:
        """``[price, size]`` of the lowest ask (decimal strings), or None."""
        return self._book.best_ask()

    def levels(self, side: Side, n: int | None = None) -> list[Level]:
        """The levels of ``side`` (``"bids"`` or ``"asks"``), best first, at most ``n``."""
        return self._book.levels(side, n)

    def crossed(self) -> bool:
        """Best bid at or above best ask (the hub never sends such a book knowingly)."""
        return self._book.crossed()

    def __len__(self) -> int:
        return len(self._book)

    def __repr__(self) -> str:
        state = "valid" if self.valid else f"invalid: {self.reason}"
        return (f"Book({self.channel!r}, {len(self)} levels, at {self.epoch}/{self.offset}, "
                f"{state})")
