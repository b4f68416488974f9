"""The consolidated best bid and offer of one symbol across venues (PROTOCOLS.md 4.5).

Pure: no I/O, no clock (``now`` is an argument), nothing of the hub. :class:`Consolidation`
is told each venue's top of book (:meth:`~Consolidation.update`, with the time the hub
received the update) or that the venue's book is unknown (:meth:`~Consolidation.unknown`:
a ``gap``, or no book yet), and builds the ``bbo:<SYMBOL>`` payload:

``{"symbol", "bid": {"price","size","venue"} | null, "ask": ... | null,
"venues": {<venue>: {"bid": [p, s] | null, "ask": [p, s] | null, "ts": ms}},
"excluded": {<venue>: "waiting" | "gap" | "stale"}}``

Rules (docs/protocol.md, "Consolidated best bid and offer"):

- Prices and sizes are the venues' strings, unchanged; they are compared as ``Decimal``
  (``"100.10"`` equals ``"100.1"``), never as floats.
- The best bid is the highest bid price, the best ask the lowest ask price. Ties: the larger
  size, then the fresher update (larger ``ts``), then the venue listed first.
- A venue is in the consolidation while its book is known and its last update is younger than
  ``stale_after_ms``; otherwise it is in ``excluded`` with the reason, until its next update
  (``stale``) or its next snapshot (``gap``). With no venue left, ``bid`` and ``ask`` are
  ``null`` and ``venues`` is empty: a price is never made up.
- :meth:`Consolidation.changed` returns the payload only when it differs from the last one it
  returned, leaving the ``ts`` values aside: a publication per change of a best price or size,
  of any venue's top, or of the venues in and out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Quote = tuple[str, str]  # (price, size) as the venue wrote them


@dataclass(frozen=True, slots=True)
class VenueTop:
    """A venue's best bid and ask (``None``: that side of its book is empty) and when the
    hub received the update that made them (ms)."""

    bid: Quote | None
    ask: Quote | None
    ts: int


class Consolidation:
    """The best bid and offer of ``symbol`` across ``venues`` (listed in tie-break order)."""

    def __init__(self, symbol: str, venues: Sequence[str], stale_after_ms: int) -> None:
        if stale_after_ms <= 0:
            raise ValueError("stale_after_ms must be positive")
        self.symbol = symbol
        self.venues = list(venues)
        self.stale_after_ms = stale_after_ms
        self._order = list(venues)  # as configured: what remove() and add() keep
        self._rank = {venue: i for i, venue in enumerate(self.venues)}
        self._tops: dict[str, VenueTop] = {}
        self._out: dict[str, str] = dict.fromkeys(self.venues, "waiting")
        self._last_key: object = None

    def update(self, venue: str, bid: Quote | None, ask: Quote | None, ts: int) -> None:
        """``venue``'s book is known and its top is ``bid``/``ask`` as of ``ts``."""
        self._check(venue)
        self._tops[venue] = VenueTop(bid, ask, ts)
        self._out.pop(venue, None)

    def unknown(self, venue: str, reason: str = "gap") -> None:
        """``venue``'s book is unknown (``gap``) or not there yet (``waiting``)."""
        self._check(venue)
        self._tops.pop(venue, None)
        self._out[venue] = reason

    def remove(self, venue: str) -> None:
        """``venue`` no longer takes part at all (its source refused the symbol)."""
        if venue in self._rank:
            self.venues.remove(venue)
            self._rank = {v: i for i, v in enumerate(self.venues)}
        self._tops.pop(venue, None)
        self._out.pop(venue, None)

    def add(self, venue: str) -> None:
        """``venue``, removed before, takes part again (in its configured place), waiting
        for its book."""
        if venue not in self._order:
            raise KeyError(f"{venue!r} is not a venue of this consolidation")
        if venue in self._rank:
            return
        self.venues = [v for v in self._order if v in self._rank or v == venue]
        self._rank = {v: i for i, v in enumerate(self.venues)}
        self._out[venue] = "waiting"

    def _check(self, venue: str) -> None:
        if venue not in self._rank:
            raise KeyError(f"{venue!r} is not a venue of this consolidation")

    def included(self, now: int) -> dict[str, VenueTop]:
        """The venues in the consolidation at ``now`` (known and fresh), in venue order."""
        return {v: top for v in self.venues if (top := self._tops.get(v)) is not None
                and now - top.ts < self.stale_after_ms}

    def next_stale(self, now: int) -> int | None:
        """When the next venue still included at ``now`` goes stale (ms), or ``None``."""
        times = [top.ts + self.stale_after_ms for top in self.included(now).values()]
        return min(times) if times else None

    def state(self, now: int) -> dict[str, Any]:
        """The ``bbo:`` payload at ``now``."""
        fresh = self.included(now)
        excluded = {v: self._out.get(v, "stale") for v in self.venues if v not in fresh}
        return {
            "symbol": self.symbol,
            "bid": self._best(fresh, "bid"),
            "ask": self._best(fresh, "ask"),
            "venues": {v: {"bid": _pair(top.bid), "ask": _pair(top.ask), "ts": top.ts}
                       for v, top in fresh.items()},
            "excluded": excluded,
        }

    def changed(self, now: int) -> dict[str, Any] | None:
        """The payload at ``now`` if it differs from the last one returned (ts aside)."""
        state = self.state(now)
        key = (state["bid"], state["ask"], state["excluded"],
               {v: (e["bid"], e["ask"]) for v, e in state["venues"].items()})
        if key == self._last_key:
            return None
        self._last_key = key
        return state

    def forget_published(self) -> None:
        """The next :meth:`changed` returns the state whatever it is (a new start)."""
        self._last_key = None

    def _best(self, fresh: dict[str, VenueTop], side: str) -> dict[str, str] | None:
        best: tuple[tuple[Decimal, Decimal, int, int], str, Quote] | None = None
        for venue, top in fresh.items():
            quote = top.bid if side == "bid" else top.ask
            if quote is None:
                continue
            price = Decimal(quote[0])
            # Highest bid / lowest ask, then the larger size, the fresher, the first listed.
            key = (price if side == "bid" else -price, Decimal(quote[1]), top.ts,
                   -self._rank[venue])
            if best is None or key > best[0]:
                best = (key, venue, quote)
        if best is None:
            return None
        return {"price": best[2][0], "size": best[2][1], "venue": best[1]}


def _pair(quote: Quote | None) -> list[str] | None:
    return None if quote is None else [quote[0], quote[1]]
