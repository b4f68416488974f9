"""The venue books of the BBO benchmark's peers (bbo_peer.py): one book per (venue, symbol),
moved by one top-of-book change per frame, the new top's size stamped with the send time.

:class:`TopBook` starts from a fixture's book (Bybit ``linear.generated.jsonl``, Binance
``futures-depth-snapshot.json``, OKX ``swap-books.jsonl``) and :meth:`TopBook.move` changes
the best level of one side (chosen at random) each call:

- 60 %: the best level's size changes;
- 20 %: a new best level one tick inside the spread (only while the spread is >= 2 ticks,
  else a size change);
- 20 %: the best level goes (size ``"0"``), the next one becomes the best and its size
  changes in the same frame, and a level is added one tick beyond the deepest, so the book
  keeps its number of levels (only while the side has > 10 levels, else a size change).

The book never crosses. Every frame changes the venue's top, and the size of the new best
level of the side that moved ends in the send time in ns as 19 more decimals (``"1.593"`` ->
``"1.5931764652345678901234"``, the same stamp as books.py): a valid decimal string that
each venue's source passes through (OKX contracts are multiplied by ``ctVal`` = 0.01 by moving
the decimal point, which keeps the digits) into the hub's book, the bbo source's top of that
venue, and the ``venues.<venue>.bid|ask`` of the ``bbo:`` payload.
"""

from __future__ import annotations

import random
from decimal import Decimal

Levels = list[list[str]]


def stamped(size: str, ns: int) -> str:
    """``size`` with ``ns`` appended as 19 more decimals."""
    return f"{size}{'' if '.' in size else '.'}{ns:019d}"


def stamp_of_pair(pair: list[str] | None) -> int:
    """The ns stamp in the size of a bbo ``[price, size]`` (0 if it has none)."""
    if not pair:
        return 0
    frac = pair[1].partition(".")[2]
    return int(frac[-19:]) if len(frac) >= 19 else 0


class TopBook:
    """One venue book of one symbol; see the module docstring."""

    def __init__(self, bids: Levels, asks: Levels, tick: str, qty_places: int,
                 seed: int) -> None:
        self.bids = {Decimal(p): s for p, s, *_ in bids}
        self.asks = {Decimal(p): s for p, s, *_ in asks}
        self.tick = Decimal(tick)
        self.price_places = len(bids[0][0].partition(".")[2])
        self.qty_places = qty_places
        self.rng = random.Random(seed)

    def levels(self, side: str, n: int | None = None) -> Levels:
        book = self.bids if side == "bids" else self.asks
        prices = sorted(book, reverse=side == "bids")[:n]
        return [[self._price(p), book[p]] for p in prices]

    def _price(self, price: Decimal) -> str:
        return f"{price:.{self.price_places}f}"

    def _qty(self) -> str:
        return f"{Decimal(self.rng.randint(1, 40000)).scaleb(-self.qty_places):.{self.qty_places}f}"

    def move(self, ns: int) -> tuple[Levels, Levels]:
        """One change of the top of one side, stamped with ``ns``: the changed levels
        ``(bids, asks)``, best first, size ``"0"`` for a level gone."""
        side = self.rng.choice(("bids", "asks"))
        book, sign = (self.bids, 1) if side == "bids" else (self.asks, -1)
        best_bid, best_ask = max(self.bids), min(self.asks)
        best = best_bid if side == "bids" else best_ask
        changes: dict[Decimal, str] = {}
        r = self.rng.random()
        if r < 0.2 and best_ask - best_bid >= 2 * self.tick:
            best = best + sign * self.tick  # a new best level inside the spread
        elif r < 0.4 and len(book) > 10:
            changes[best] = "0"
            del book[best]
            best = max(book) if side == "bids" else min(book)
            far = (min(book) if side == "bids" else max(book)) - sign * self.tick
            book[far] = changes[far] = self._qty()
        book[best] = changes[best] = stamped(self._qty(), ns)
        levels = [[self._price(p), changes[p]] for p in sorted(changes, reverse=side == "bids")]
        return (levels, []) if side == "bids" else ([], levels)
