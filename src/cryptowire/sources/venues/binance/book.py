"""The book of one symbol on one Binance market, published as ``book:<depth>`` channels.

One :class:`~cryptowire.sources.venues.binance_book.DepthSync` per symbol keeps the whole
local book by Binance's documented procedure (REST snapshot + buffered ``@depth@100ms``
diffs, ``U``/``u`` on spot, ``pu`` on futures); every ``book:<depth>:<SYMBOL>@binance…``
channel of the symbol is a cut of it. Publications follow PROTOCOLS.md 4.1:

- once the sync holds (a snapshot and its bridging event), each channel gets a ``snapshot``:
  its cut of the book (bids best first, asks best first) with ``venueSeq`` = the book's
  update id;
- then, per applied diff, a ``delta`` per channel: the levels of its cut that changed, and
  ``[price, "0"]`` for each level that left the cut (removed, or pushed below it). The delta
  is computed between the cut before and after the diff, since a diff may touch levels
  below the cut and a removal may bring a deeper level into it. A diff that changes
  nothing in a channel's cut publishes nothing on it;
- on any break (a sequence break, a snapshot older than the stream, a malformed diff, a
  crossed book, a lost connection) each channel gets one ``gap`` with the reason, the book is
  dropped and a new REST snapshot is asked for (:meth:`SymbolBook.wants_snapshot`).

A REST snapshot holds at most ``limit`` levels a side (1000 on futures, 5000 on spot): when a
side came full, levels beyond its deepest price are unknown until they change, so a cut never
reaches past that price (it is shorter rather than wrong); a side whose known range empties
(the market moved past it) asks for a new snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cryptowire.books import BookError, Level
from cryptowire.events import Event
from cryptowire.sources.venues.binance.cut import cut_delta, deepest
from cryptowire.sources.venues.binance.markets import MarketName
from cryptowire.sources.venues.binance_book import DepthSync, DepthSyncError, Step

Cut = dict[Decimal, tuple[str, str]]  # price key -> (price, size), one side of a cut


@dataclass(slots=True)
class BookOutput:
    """What one input produced: the events to publish."""

    events: list[Event] = field(default_factory=list)


@dataclass(slots=True)
class _View:
    """One channel: its depth and the deepest key of each side of what it last published."""

    depth: int
    last: dict[str, Decimal | None] = field(
        default_factory=lambda: {"bids": None, "asks": None})


class SymbolBook:
    """The local book of ``symbol`` and the channels cut from it; see the module docstring."""

    def __init__(self, symbol: str, market: MarketName, limit: int, source: str) -> None:
        self.symbol = symbol
        self.market = market
        self.limit = limit
        self.source = source
        self.sync = DepthSync(market)
        self.views: dict[str, _View] = {}
        self.live = False  # snapshots went out since the last gap
        self.seen = False  # a diff came since the book (re)started: a snapshot may be fetched
        #: Why the book last broke (``sequence``, ``malformed``, ``crossed``,
        #: ``snapshot_range``), for the resync counter; the reader clears it.
        self.cause: str | None = None
        self._floor: dict[str, Decimal | None] = {"bids": None, "asks": None}

    # -- channels ---------------------------------------------------------------------------

    def add(self, channel: str, depth: int) -> list[Event]:
        """A new channel; its snapshot at once when the book is live."""
        view = self.views[channel] = _View(depth)
        if not self.live:
            return []
        return [self._snapshot_event(channel, view, None)]

    def remove(self, channel: str) -> None:
        self.views.pop(channel, None)

    # -- inputs -----------------------------------------------------------------------------

    def on_event(self, payload: Mapping[str, Any]) -> BookOutput:
        """One ``depthUpdate`` payload."""
        self.seen = True
        try:
            step = self.sync.on_event(payload)
        except DepthSyncError as exc:
            return self.broken(f"malformed depth event ({exc})", "malformed")
        ts = payload.get("E")
        return self._after(step, ts if isinstance(ts, int) else None)

    def on_snapshot(self, payload: Mapping[str, Any]) -> BookOutput:
        """The JSON of ``GET …/depth``; the buffered diffs are replayed on it."""
        try:
            step = self.sync.on_snapshot(payload)
        except (DepthSyncError, BookError):
            self.cause = "malformed"
            return BookOutput()  # the buffered diffs are kept: another snapshot is wanted
        self._floor = {side: _deepest(payload.get(side), self.limit) for side in ("bids", "asks")}
        ts = payload.get("E")
        return self._after(step, ts if isinstance(ts, int) else None)

    def wants_snapshot(self) -> bool:
        """A snapshot is needed and the diff stream has begun (Binance's order: buffer the
        stream first, then fetch)."""
        return self.sync.needs_snapshot and self.seen

    def restart(self) -> None:
        """Start the sync over without a ``gap`` (a new socket: its owner published it)."""
        self.sync = DepthSync(self.market)
        self.live = self.seen = False

    def broken(self, reason: str, cause: str) -> BookOutput:
        """Drop the book (a bad diff, a crossed book): ``gap`` and a new sync, whose
        snapshot is wanted once the next diff came."""
        out = BookOutput(self._gap(reason))
        self.restart()
        self.cause = cause
        return out

    # -- pieces -----------------------------------------------------------------------------

    def _after(self, step: Step, ts: int | None) -> BookOutput:
        if step.resync is not None:
            self.cause = "sequence"
            return BookOutput(self._gap(step.resync))
        if not self.sync.synced:
            return BookOutput()
        if not step.applied:
            return BookOutput()
        book = self.sync.book
        if book.crossed():
            bid, ask = book.best_bid(), book.best_ask()
            assert bid is not None and ask is not None
            return self.broken(f"crossed book at update {self.sync.update_id} "
                               f"(best bid {bid[0]} >= best ask {ask[0]})", "crossed")
        if self._emptied():
            return self.broken("the market moved past the depth snapshot's levels",
                               "snapshot_range")
        if not self.live or step.snapshot:
            self.live = True
            return BookOutput([self._snapshot_event(c, v, ts) for c, v in self.views.items()])
        changes: dict[str, list[Level]] = {"bids": [], "asks": []}
        for depth in step.applied:
            changes["bids"] += depth.bids
            changes["asks"] += depth.asks
        return BookOutput([e for c, v in self.views.items()
                           if (e := self._delta_event(c, v, changes, ts)) is not None])

    def _gap(self, reason: str) -> list[Event]:
        if not self.live:
            return []
        self.live = False
        text = f"{self.symbol}@{self.market}: {reason}; re-synchronising from a new snapshot"
        return [Event(channel=c, data={"reason": text}, type="gap", source=self.source)
                for c in self.views]

    def _cut(self, side: str, depth: int) -> Cut:
        part = self.sync.book.bids if side == "bids" else self.sync.book.asks
        floor, levels = self._floor[side], part.levels
        keys = part.keys(depth)
        if floor is not None:
            keys = [k for k in keys if (k >= floor if side == "bids" else k <= floor)]
        return {k: levels[k] for k in keys}

    def _emptied(self) -> bool:
        book = self.sync.book
        return any(self._floor[side] is not None
                   and deepest(book.bids if side == "bids" else book.asks, 1,
                               self._floor[side]) is None
                   for side in ("bids", "asks"))

    def _snapshot_event(self, channel: str, view: _View, ts: int | None) -> Event:
        data: dict[str, Any] = {"symbol": self.symbol}
        for side in ("bids", "asks"):
            cut = self._cut(side, view.depth)
            data[side] = [list(level) for level in cut.values()]
            view.last[side] = next(reversed(cut)) if cut else None
        data["venueSeq"] = self.sync.update_id
        return Event(channel=channel, data=data, type="snapshot", ts_source=ts,
                     source=self.source)

    def _delta_event(self, channel: str, view: _View, changes: dict[str, list[Level]],
                     ts: int | None) -> Event | None:
        data: dict[str, Any] = {"symbol": self.symbol, "bids": [], "asks": []}
        book = self.sync.book
        for side, levels in changes.items():
            if levels:
                part = book.bids if side == "bids" else book.asks
                data[side], view.last[side] = cut_delta(
                    part, view.depth, self._floor[side], view.last[side], levels)
        if not data["bids"] and not data["asks"]:
            return None
        data["venueSeq"] = self.sync.update_id
        return Event(channel=channel, data=data, type="delta", ts_source=ts, source=self.source)


def _deepest(levels: object, limit: int) -> Decimal | None:
    """The deepest price of a snapshot side that came full (``limit`` levels), else None."""
    if not isinstance(levels, list) or len(levels) < limit:
        return None
    return Decimal(levels[-1][0])

