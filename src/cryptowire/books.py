"""A sans-I/O order book: exact price levels, snapshot and delta apply, depth cut, crossed check.

Prices and sizes are the venue's decimal strings and stay so: a level is kept as the
``(price, size)`` strings the venue sent, keyed and ordered by the exact
:class:`~decimal.Decimal` of its price (never a float). A delta is a list of ``[price, size]``
pairs per side; size ``0`` (in any spelling: ``"0"``, ``"0.000"``) removes the level. Two
spellings of one price (``"100.5"`` and ``"100.50"``) are one level: the key is the decimal's
value, the string kept is the one the venue sent last.

A price or size is a *plain* decimal string: ASCII digits with at most one ``.`` (``"17440.50"``,
``"0.001"``, ``"5."``, ``".5"``). Exponent notation (``"1E-5"``) is accepted and kept written
out in full (``"0.00001"``, scale kept), so nothing the book returns is ever in exponent
notation; anything else (a sign, ``NaN``, spaces, ``_``, non-ASCII digits, a non-string) is a
:class:`BookError`, and the message it came in changes nothing (all or nothing).

The book knows nothing of sequence numbers: a venue's validator (Bybit ``u``, Binance
``U``/``u``/``pu``, OKX ``seqId``) decides whether a message may be applied; the book applies
it and says whether the result is crossed.

Speed (``bench/book_apply.py``, ``docs/benchmarks.md``): the parse of a price string is
memoised per book (prices recur: the same few hundred ticks around the spread), a size is
checked with two string methods instead of a ``Decimal``, changing the size of a level that
exists is one dict store, and only an insert or a removal touches the sorted key list (a
``bisect``, no re-sort).

Used by the Bybit source (the book it validates and publishes), by the hub (the latest state of
a ``book:`` channel for subscribe and conflation) and by the SDK (a client's local book).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, Literal

from cryptowire.errors import CryptowireError
from cryptowire.jsonnum import decimal_str

Side = Literal["bids", "asks"]
Level = list[str]  # [price, size], both decimal strings as the venue wrote them

#: Parsed prices a book remembers before it forgets them all (a few hundred are in use at any
#: time; a book of 500 levels a side and its churn fit, and memory stays bounded).
PRICE_MEMO = 4096

#: The largest exponent written out (``"1E+100"`` is 101 characters; ``"1E+9999999"`` is
#: refused rather than written out as ten million).
_MAX_EXPONENT = 100

# One resolved level: (price key, price text, size text or None for a removal).
_Change = tuple[Decimal, str, str | None]


class BookError(CryptowireError, ValueError):
    """A level that is not two decimal strings (the message must not be applied)."""


def _shown(value: object) -> str:
    """``repr(value)`` cut to a length an error message can carry."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _plain(text: str) -> bool:
    """``text`` is ASCII digits with at most one ``.`` (and at least one digit)."""
    return text.isascii() and text.replace(".", "", 1).isdigit()


def _text(value: object, what: str) -> str:
    """``value`` as a plain decimal string, or :class:`BookError` (the slow path)."""
    if isinstance(value, str) and value.isascii():
        if _plain(value):
            return value
        mantissa, e, exponent = value.lower().partition("e")
        if exponent[:1] in ("+", "-"):
            exponent = exponent[1:]
        if e and _plain(mantissa) and exponent.isdigit() and len(exponent) < 5:
            number = Decimal(value)  # "1E-5" and the like: cannot fail after those checks
            if abs(number.as_tuple().exponent) <= _MAX_EXPONENT:  # type: ignore[arg-type]
                return decimal_str(number)
    raise BookError(f"{what} {_shown(value)} is not a plain decimal string "
                    "(digits and at most one '.', e.g. \"17440.50\")")


class _Side:
    """One side: price key -> (price text, size text), and the keys in ascending order.

    The order is ascending on both sides, so the best ask is ``order[0]`` and the best bid
    ``order[-1]``; ``bids`` says which end is best.
    """

    __slots__ = ("bids", "levels", "order")

    def __init__(self, bids: bool) -> None:
        self.bids = bids
        self.levels: dict[Decimal, tuple[str, str]] = {}
        self.order: list[Decimal] = []

    def change(self, changes: list[_Change]) -> None:
        levels, order = self.levels, self.order
        for key, price, size in changes:
            if size is None:
                if levels.pop(key, None) is not None:
                    del order[bisect_left(order, key)]
            elif levels.get(key) is None:
                levels[key] = (price, size)
                insort(order, key)
            else:
                levels[key] = (price, size)

    def load(self, changes: list[_Change]) -> None:
        """Fill an empty side (a snapshot): one sort instead of an insert per level."""
        levels = self.levels
        for key, price, size in changes:
            if size is None:
                levels.pop(key, None)
            else:
                levels[key] = (price, size)
        self.order = sorted(levels)

    def best(self) -> Decimal | None:
        order = self.order
        if not order:
            return None
        return order[-1] if self.bids else order[0]

    def keys(self, n: int | None) -> list[Decimal]:
        """The keys best first, at most ``n``."""
        order = self.order
        if self.bids:
            return order[::-1] if n is None else order[:-n - 1:-1] if n > 0 else []
        return order[:] if n is None else order[:max(n, 0)]

    def top(self, n: int | None) -> list[Level]:
        levels = self.levels
        return [list(levels[k]) for k in self.keys(n)]

    def cut(self, depth: int) -> list[Level]:
        """Remove the levels past ``depth``; return them as removals (``[price, "0"]``),
        best first."""
        order = self.order
        excess = len(order) - depth
        if excess <= 0:
            return []
        levels = self.levels
        if self.bids:
            gone = order[excess - 1::-1]
            del order[:excess]
        else:
            gone = order[depth:]
            del order[depth:]
        return [[levels.pop(k)[0], "0"] for k in gone]

    def copy(self) -> _Side:
        other = _Side(self.bids)
        other.levels = dict(self.levels)
        other.order = list(self.order)
        return other


class OrderBook:
    """The book of one symbol on one venue; ``depth`` (if given) is the cut kept."""

    __slots__ = ("_memo", "asks", "bids", "depth")

    def __init__(self, depth: int | None = None) -> None:
        if depth is not None and depth < 1:
            raise ValueError(f"depth must be at least 1, not {depth}")
        self.depth = depth
        self.bids = _Side(True)
        self.asks = _Side(False)
        self._memo: dict[str, Decimal] = {}

    # -- changes ------------------------------------------------------------------------

    def snapshot(self, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]) -> None:
        """Replace the whole book (a level of size 0 in a snapshot is ignored).

        A malformed level raises :class:`BookError` and leaves the book as it was.
        """
        bid_changes, ask_changes = self._resolve(bids), self._resolve(asks)
        new_bids, new_asks = _Side(True), _Side(False)
        new_bids.load(bid_changes)
        new_asks.load(ask_changes)
        self.bids, self.asks = new_bids, new_asks
        if self.depth is not None:
            new_bids.cut(self.depth)
            new_asks.cut(self.depth)

    def apply(self, bids: Iterable[Sequence[str]], asks: Iterable[Sequence[str]]
              ) -> tuple[list[Level], list[Level]]:
        """Apply a delta; returns the levels the depth cut removed beyond it (per side), which
        a publisher adds to the delta it sends so that its subscribers cut the same way.

        A malformed level raises :class:`BookError` before anything is changed.
        """
        bid_changes = self._resolve(bids)
        ask_changes = self._resolve(asks)
        self.bids.change(bid_changes)
        self.asks.change(ask_changes)
        depth = self.depth
        if depth is None:
            return [], []
        return self.bids.cut(depth), self.asks.cut(depth)

    def clear(self) -> None:
        self.bids = _Side(True)
        self.asks = _Side(False)

    def _resolve(self, levels: Iterable[Sequence[str]]) -> list[_Change]:
        """Check every level of one side and look its price up; changes nothing in the book."""
        memo = self._memo
        if len(memo) > PRICE_MEMO:
            memo.clear()
        out: list[_Change] = []
        append = out.append
        for level in levels:
            if level.__class__ is not list and not isinstance(level, (list, tuple)):
                raise BookError(f"level {_shown(level)} is not [price, size]")
            try:
                price, size = level
                key = memo.get(price)  # not a str: a miss, refused below
            except (ValueError, TypeError):
                raise BookError(f"level {_shown(level)} is not [price, size]") from None
            if key is None:
                price = _text(price, "price")
                key = memo[price] = Decimal(price)
            if size.__class__ is not str or not (
                    size.isascii() and size.replace(".", "", 1).isdigit()):  # _plain, inlined
                size = _text(size, "size")
            append((key, price, size if size.strip("0.") else None))
        return out

    # -- reading --------------------------------------------------------------------------

    def crossed(self) -> bool:
        """Whether the best bid is at or above the best ask (a book that cannot be right)."""
        bid, ask = self.bids.best(), self.asks.best()
        return bid is not None and ask is not None and bid >= ask

    def best_bid(self) -> Level | None:
        key = self.bids.best()
        return None if key is None else list(self.bids.levels[key])

    def best_ask(self) -> Level | None:
        key = self.asks.best()
        return None if key is None else list(self.asks.levels[key])

    def levels(self, side: Side, n: int | None = None) -> list[Level]:
        """The levels of ``side``, best first, at most ``n`` (all without)."""
        return (self.bids if side == "bids" else self.asks).top(n)

    def payload(self, symbol: str, depth: int | None = None) -> dict[str, Any]:
        """The book as a ``book:`` snapshot's data (PROTOCOLS.md 4.1): ``{"symbol", "bids",
        "asks"}``, at most ``depth`` levels a side (all without)."""
        return {"symbol": symbol, "bids": self.bids.top(depth), "asks": self.asks.top(depth)}

    def __len__(self) -> int:
        return len(self.bids.levels) + len(self.asks.levels)

    def copy(self) -> OrderBook:
        other = OrderBook(self.depth)
        other.bids = self.bids.copy()
        other.asks = self.asks.copy()
        other._memo = self._memo  # a memo of exact parses: right for any book
        return other
