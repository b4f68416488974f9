"""The demo order book of one symbol: a random walk on the tick grid around the demo ticker's
price, and the exact snapshot and deltas each served depth publishes (PROTOCOLS.md 4.1).

The whole book (:data:`FULL_DEPTH` levels a side, the deepest depth a venue serves) is an
:class:`~cryptowire.books.OrderBook`. Each subscribed ``book:<depth>`` channel has a *view*:
the ``OrderBook(depth)`` its subscribers hold. A step changes the whole book; a view's delta
is then the difference between the view and the whole book's top ``depth`` levels (levels
that enter the cut when a better one goes included, and size ``"0"`` for the ones that left
it), and it is applied to the view, so the view is at every step what a client holds that
applied the snapshot and every delta.

Prices are the ticker price plus or minus whole ticks (``Decimal``, so always on the grid and
exact); sizes are whole multiples of the symbol's size step. The best bid is always the
ticker's bid (price - tick) and the best ask its ask (price + tick): the book follows the
ticker's walk and is never crossed. Every step also changes the size at the best bid or ask,
so every depth (even 1) has a delta at every step, and ``venueSeq``, one counter per symbol,
goes up by exactly 1 from one frame to the next on every ``book:`` channel of the symbol.
"""

from __future__ import annotations

import random
from decimal import Decimal

from cryptowire.books import Level, OrderBook, Side
from cryptowire.core.channels import BOOK_DEPTHS
from cryptowire.events import BookData
from cryptowire.jsonnum import decimal_str

#: Levels a side in the whole book: the deepest cut any venue serves.
FULL_DEPTH = max(depth for depths in BOOK_DEPTHS.values() for depth in depths)
_SIDES: tuple[Side, Side] = ("bids", "asks")
#: Random activity (size changes, removals, insertions) happens within this many levels of
#: the top, most of it nearest the top.
_ACTIVE = 40
#: Missing levels (both sides) tolerated before the far ends are filled up again.
_SLACK = 24


class DemoBook:
    """One symbol's demo book and the views of the ``book:`` channels that serve it."""

    def __init__(self, symbol: str, tick: Decimal, size_step: Decimal,
                 rng: random.Random) -> None:
        self.symbol = symbol
        self.tick = tick
        self.size_step = size_step
        self.rng = rng
        self.book = OrderBook(FULL_DEPTH)
        #: channel name -> the book its subscribers hold (cut at the channel's depth)
        self.views: dict[str, OrderBook] = {}
        self.seq = 0

    def subscribe(self, key: str, depth: int, price: Decimal) -> BookData:
        """Start (or restart) the view ``key`` of ``depth`` levels; its snapshot."""
        if not self.views:  # nobody watched: the book stood still while the ticker walked
            self.step(price)
        view = OrderBook(depth)
        bids, asks = self.book.levels("bids", depth), self.book.levels("asks", depth)
        view.snapshot(bids, asks)
        self.views[key] = view
        return {"symbol": self.symbol, "bids": bids, "asks": asks, "venueSeq": self.seq}

    def unsubscribe(self, key: str) -> None:
        self.views.pop(key, None)

    def step(self, price: Decimal) -> dict[str, BookData]:
        """Move the book one step around ``price``; each view's delta, already applied."""
        self.seq += 1
        self._churn()
        self._follow(price)
        self._touch_best()
        self._refill()
        return {key: self._delta(view) for key, view in self.views.items()}

    # -- the walk ---------------------------------------------------------------------

    def _size(self) -> Decimal:
        steps = self.rng.randint(1, 5000)
        if self.rng.random() < 0.04:  # now and then a wall, for the depth chart
            steps *= self.rng.randint(5, 20)
        return Decimal(steps) * self.size_step

    def _apply(self, side: Side, levels: list[Level]) -> None:
        if side == "bids":
            self.book.apply(levels, [])
        else:
            self.book.apply([], levels)

    def _set(self, side: Side, price: Decimal | str, size: Decimal | str) -> None:
        self._apply(side, [[price if isinstance(price, str) else decimal_str(price),
                            size if isinstance(size, str) else decimal_str(size)]])

    def _churn(self) -> None:
        """A few levels near the top change size, go, or appear."""
        for _ in range(self.rng.randint(2, 6)):
            side: Side = self.rng.choice(("bids", "asks"))
            levels = self.book.levels(side, _ACTIVE)
            if not levels:
                return
            index = min(int(self.rng.expovariate(0.15)), len(levels) - 1)
            price = levels[index][0]
            action = self.rng.random()
            if action < 0.55:
                self._set(side, price, self._size())
            elif action < 0.75:
                self._set(side, price, "0")
            else:  # a new level (or a new size) a few ticks further out than the top
                away = self.tick * self.rng.randint(1, _ACTIVE)
                best = Decimal(levels[0][0])
                new = best - away if side == "bids" else best + away
                if new > 0:
                    self._set(side, new, self._size())

    def _follow(self, price: Decimal) -> None:
        """Bids below ``price``, asks above it; the best of each one tick away."""
        for side in _SIDES:
            self._apply(side, self._crossing(side, price))
        best_bid, best_ask = self.book.best_bid(), self.book.best_ask()
        self._quote("bids", price - self.tick, None if best_bid is None else best_bid[0])
        self._quote("asks", price + self.tick, None if best_ask is None else best_ask[0])

    def _quote(self, side: Side, best: Decimal, held: str | None) -> None:
        """Make ``best`` the best level of ``side``; when the price moved away from the
        best level held, most of the ticks in between are quoted too (a few at most)."""
        if best <= 0 or (held is not None and Decimal(held) == best):
            return
        levels: list[Level] = [[decimal_str(best), decimal_str(self._size())]]
        if held is not None:  # (bids: held < best; asks: held > best)
            outward = -self.tick if side == "bids" else self.tick
            price = best + outward
            for _ in range(8):
                if price == Decimal(held) or price <= 0:
                    break
                if self.rng.random() < 0.7:
                    levels.append([decimal_str(price), decimal_str(self._size())])
                price += outward
        self._apply(side, levels)

    def _crossing(self, side: Side, price: Decimal) -> list[Level]:
        """Removals for the levels of ``side`` at or through ``price`` (best first, so the
        first level kept ends the search; reading few levels keeps a step cheap)."""
        n = 8
        while True:
            levels = self.book.levels(side, n)
            gone: list[Level] = []
            for level_price, _ in levels:
                value = Decimal(level_price)
                if (value < price) if side == "bids" else (value > price):
                    return gone
                gone.append([level_price, "0"])
            if len(levels) < n:
                return gone
            n *= 4

    def _touch_best(self) -> None:
        """The size at the best bid or ask changes (so every depth has a delta)."""
        side: Side = self.rng.choice(("bids", "asks"))
        best = self.book.best_bid() if side == "bids" else self.book.best_ask()
        if best is None:
            return
        size = self._size()
        while size == Decimal(best[1]):
            size = self._size()
        self._set(side, best[0], size)

    def _refill(self) -> None:
        """Levels past the worst one, up to the full depth, once a few went missing (each
        step removes some and pushes some past the cut)."""
        if len(self.book) > 2 * FULL_DEPTH - _SLACK:
            return
        for side in _SIDES:
            levels = self.book.levels(side)
            if not levels:
                continue
            worst = Decimal(levels[-1][0])
            new: list[Level] = []
            for _ in range(FULL_DEPTH - len(levels)):
                away = self.tick * self.rng.randint(1, 2)
                worst = worst - away if side == "bids" else worst + away
                if worst <= 0:
                    break
                new.append([decimal_str(worst), decimal_str(self._size())])
            self._apply(side, new)

    # -- what each view is sent ---------------------------------------------------------

    def _delta(self, view: OrderBook) -> BookData:
        bids, asks = (self._changes(view, side) for side in _SIDES)
        view.apply(bids, asks)
        return {"symbol": self.symbol, "bids": bids, "asks": asks, "venueSeq": self.seq}

    def _changes(self, view: OrderBook, side: Side) -> list[Level]:
        held = {price: size for price, size in view.levels(side)}
        changed: list[Level] = []
        for price, size in self.book.levels(side, view.depth):
            if held.pop(price, None) != size:
                changed.append([price, size])
        changed.extend([price, "0"] for price in held)  # left the cut, or removed
        return changed
