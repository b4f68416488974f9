"""The delta of a depth cut, computed from what changed: no walk over the whole cut.

A ``book:<depth>`` channel publishes the changes of the book *cut at its depth* (PROTOCOLS.md
4.1). After a diff is applied to the whole local book, the cut's delta is:

- each changed level of the diff that is inside the new cut, with its new size;
- ``[price, "0"]`` for each changed level that was inside the old cut and is not any more
  (removed, or pushed below the cut);
- when the cut's deepest price moved deeper (levels above it were removed), the levels now
  inside that the diff did not touch (they enter the cut), with their size;
- when it moved up (levels were inserted above it), ``[price, "0"]`` for the untouched
  levels between the new and the old deepest price (they leave the cut).

The cut of a side is the best ``depth`` levels, never past ``floor`` (the deepest price a
full REST snapshot vouched for). Only the diff's levels and the span between the old and the
new deepest price are visited, found by bisection in the side's sorted keys: the cost does
not grow with the depth (``bench/venue_parse.py``).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol

Level = list[str]


class SideView(Protocol):
    """What :class:`cryptowire.books.OrderBook` keeps per side (``OrderBook.bids``/``asks``):
    ascending keys, key -> ``(price, size)``, and which side it is."""

    bids: bool
    order: list[Decimal]
    levels: dict[Decimal, tuple[str, str]]


def deepest(side: SideView, depth: int, floor: Decimal | None) -> Decimal | None:
    """The deepest key of the cut (``None`` when the cut is empty)."""
    order = side.order
    if not order:
        return None
    if side.bids:
        last = order[-depth] if len(order) >= depth else order[0]
        if floor is not None and last < floor:
            index = bisect_left(order, floor)
            return order[index] if index < len(order) else None
        return last
    last = order[depth - 1] if len(order) >= depth else order[-1]
    if floor is not None and last > floor:
        index = bisect_right(order, floor) - 1
        return order[index] if index >= 0 else None
    return last


def inside(key: Decimal, last: Decimal | None, bids: bool) -> bool:
    """``key`` is at or above the cut's deepest key ``last``."""
    if last is None:
        return False
    return key >= last if bids else key <= last


def cut_delta(side: SideView, depth: int, floor: Decimal | None, old_last: Decimal | None,
              changes: Sequence[Sequence[str]]) -> tuple[list[Level], Decimal | None]:
    """The delta of the cut after ``changes`` (the diff's levels of this side, already
    applied to ``side``) and the cut's new deepest key."""
    bids, levels = side.bids, side.levels
    new_last = deepest(side, depth, floor)
    if old_last is None:  # nothing was published on this side: all of the cut is new
        return _span(side, None, new_last, grow=True, skip=set()), new_last
    out: list[Level] = []
    touched: set[Decimal] = set()
    for price, _ in changes:
        key = Decimal(price)
        touched.add(key)
        level = levels.get(key)
        if level is not None and inside(key, new_last, bids):
            out.append(list(level))
        elif inside(key, old_last, bids):
            out.append([price, "0"])
    if new_last != old_last:
        grow = new_last is not None and not inside(new_last, old_last, bids)
        if grow:
            out += _span(side, old_last, new_last, grow=True, skip=touched)
        else:
            out += _span(side, new_last, old_last, grow=False, skip=touched)
    return out, new_last


def _span(side: SideView, start: Decimal | None, end: Decimal | None, *, grow: bool,
          skip: set[Decimal]) -> list[Level]:
    """The untouched levels strictly below ``start`` (``None``: from the best) down to
    ``end`` inclusive: with their size when they enter the cut (``grow``), as removals when
    they leave it."""
    order, levels = side.order, side.levels
    if end is None:
        return []
    if side.bids:  # descending from start (exclusive) to end (inclusive)
        lo = bisect_left(order, end)
        hi = len(order) if start is None else bisect_left(order, start)
        keys = order[lo:hi][::-1]
    else:
        lo = 0 if start is None else bisect_right(order, start)
        keys = order[lo:bisect_right(order, end)]
    if grow:
        return [list(levels[k]) for k in keys if k not in skip]
    return [[levels[k][0], "0"] for k in keys if k not in skip]
