"""A sans-I/O order book: exact price levels, snapshot and delta apply, depth cut, crossed check.

Prices and sizes are the venue's decimal strings and stay so: a level is keyed by its price
string, and the order of the levels is kept on the exact :class:`~decimal.Decimal` of that
string (never a float). A delta is a list of ``[price, size]`` pairs per side; size ``0``
(in any spelling: ``"0"``, ``"0.000"``) removes the level. Two spellings of one price
(``"100.0"`` and ``"100.00"``) are one level: the key is the decimal's value, the string kept
is the one the venue sent last.

The book knows nothing of sequence numbers: a venue's validator (Bybit ``u``, Binance
``U``/``u``/``pu``, OKX ``seqId``) decides whether a message may be applied; the book applies
it and says whether the result is crossed.

Used by the Bybit source (the book it validates and publishes), by the hub (the latest state of
a ``book:`` channel for subscribe and conflation) and by the SDK (a client's local book).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Literal

Side = Literal["bids", "asks"]
Level = list[str]  # [price, size], both decimal strings as the venue wrote them


class BookError(ValueError):
    """A level that is not two decimal strings (the message must not be applied)."""


def _decimal(text: object, what: str) -> Decimal:
    if not isinstance(text, str):
        raise BookError(f"{what} {text!r} is not a decimal string")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise BookError(f"{what} {text!r} is not a decimal string") from None
    if not value.is_finite() or value < 0:
        raise BookError(f"{what} {text!r} is not a finite non-negative decimal")
    return value


class _Side:
    """One side: price key -> (price text, size text), and the keys in best-first order.

    ``order`` holds the keys ascending for asks and *negated* ascending for bids, so that index
    0 is the best level on both sides and ``bisect`` works unchanged.
    """

    __slots__ = ("levels", "order", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.levels: dict[Decimal, tuple[str, str]] = {}
        self.order: list[Decimal] = []

    def set(self, price: str, size: str) -> None:
        key = _decimal(price, "price")
        amount = _decimal(size, "size")
        levels = self.levels
        if amount == 0:
            if levels.pop(key, None) is not None:
                order = self.order
                del order[bisect_left(order, key * self.sign)]
            return
        if key not in levels:
            insort(self.order, key * self.sign)
        levels[key] = (price, size)

    def clear(self) -> None:
        self.levels.clear()
        self.order.clear()

    def best(self) -> Decimal | None:
        return self.order[0] * self.sign if self.order else None

    def top(self, n: int | None) -> list[Level]:
        keys = self.order if n is None else self.order[:n]
        sign, levels = self.sign, self.levels
        return [list(levels[k * sign]) for k in keys]

    def cut(self, depth: int) -> list[Level]:
        """Remove the levels past ``depth``; return them as removals (``[price, "0"]``)."""
        if len(self.order) <= depth:
            return []
        sign, levels = self.sign, self.levels
        removed = [[levels.pop(k * sign)[0], "0"] for k in self.order[depth:]]
        del self.order[depth:]
        return removed


class OrderBook:
    """The book of one symbol on one venue; ``depth`` (if given) is the cut kept."""

    __slots__ = ("asks", "bids", "depth")

    def __init__(self, depth: int | None = None) -> None:
        self.depth = depth
        self.bids = _Side(-1)
        self.asks = _Side(1)

    # -- changes ------------------------------------------------------------------------

    def snapshot(self, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]) -> None:
        """Replace the whole book (a level of size 0 in a snapshot is ignored)."""
        new_bids, new_asks = _Side(-1), _Side(1)
        self._apply_side(new_bids, bids)
        self._apply_side(new_asks, asks)
        self.bids, self.asks = new_bids, new_asks
        if self.depth is not None:
            self.bids.cut(self.depth)
            self.asks.cut(self.depth)

    def apply(self, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]
              ) -> tuple[list[Level], list[Level]]:
        """Apply a delta; returns the levels the depth cut removed beyond it (per side), which
        a publisher adds to the delta it sends so that its subscribers cut the same way.

        A malformed level raises :class:`BookError` before anything is changed.
        """
        bid_list = [_pair(level) for level in bids]
        ask_list = [_pair(level) for level in asks]
        for price, size in bid_list + ask_list:  # validate all first: all or nothing
            _decimal(price, "price")
            _decimal(size, "size")
        for price, size in bid_list:
            self.bids.set(price, size)
        for price, size in ask_list:
            self.asks.set(price, size)
        if self.depth is None:
            return [], []
        return self.bids.cut(self.depth), self.asks.cut(self.depth)

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()

    # -- reading --------------------------------------------------------------------------

    def crossed(self) -> bool:
        """Whether the best bid is at or above the best ask (a book that cannot be right)."""
        bid, ask = self.bids.best(), self.asks.best()
        return bid is not None and ask is not None and bid >= ask

    def best_bid(self) -> Level | None:
        top = self.bids.top(1)
        return top[0] if top else None

    def best_ask(self) -> Level | None:
        top = self.asks.top(1)
        return top[0] if top else None

    def levels(self, side: Side, n: int | None = None) -> list[Level]:
        """The levels of ``side``, best first, at most ``n`` (all without)."""
        return (self.bids if side == "bids" else self.asks).top(n)

    def __len__(self) -> int:
        return len(self.bids.levels) + len(self.asks.levels)

    def copy(self) -> OrderBook:
        other = OrderBook(self.depth)
        for mine, theirs in ((self.bids, other.bids), (self.asks, other.asks)):
            theirs.levels = dict(mine.levels)
            theirs.order = list(mine.order)
        return other

    @staticmethod
    def _apply_side(side: _Side, levels: Iterable[Sequence[str]]) -> None:
        for level in levels:
            price, size = _pair(level)
            side.set(price, size)


def _pair(level: Sequence[str]) -> tuple[str, str]:
    if not isinstance(level, (list, tuple)) or len(level) != 2:
        raise BookError(f"level {level!r} is not [price, size]")
    return level[0], level[1]
