"""Binance's documented local order book procedure, sans-I/O: :class:`DepthSync`.

The caller feeds it the ``depthUpdate`` payloads of ``<symbol>@depth[@100ms]`` (the
``"data"`` of a combined-stream frame) and the JSON of a REST depth snapshot
(``GET /api/v3/depth`` on spot, ``GET /fapi/v1/depth`` on USD-M futures); it answers with
what it applied to its :class:`~cryptowire.books.OrderBook` and, on any break, why a new
snapshot is needed. It never fetches anything itself.

Spot, "How to manage a local order book correctly" in
https://github.com/binance/binance-spot-api-docs/blob/master/web-socket-streams.md
(= https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams):

1. buffer the events; get a snapshot; discard buffered events with ``u <= lastUpdateId``;
   the book's update ID is then ``lastUpdateId``;
2. per event: ``u`` below the book's update ID -> ignore; ``U`` greater than the book's
   update ID + 1 -> "you have missed some events", discard the book and restart; otherwise
   apply (absolute quantities, ``0`` removes) and set the update ID to ``u``.

So the first applied event has ``U <= lastUpdateId + 1 <= u`` (the wording before the
November 2025 revision), and each next one ``U <= previous u + 1`` ("Normally, ``U`` of the
next event is equal to ``u + 1`` of the previous event"). The page's step 4 ("If the
``lastUpdateId`` from the snapshot is strictly less than the ``U`` from step 2, go back to
step 3") is stricter by one only at ``lastUpdateId == U - 1``, where the update procedure
itself shows nothing is missing; this class follows the update procedure there.

USD-M futures, https://developers.binance.com/docs/derivatives/usds-margined-futures/
websocket-market-streams/How-to-manage-a-local-order-book-correctly:

1. "Drop any event where ``u`` is < ``lastUpdateId`` in the snapshot";
2. "The first processed event should have ``U <= lastUpdateId`` AND ``u >= lastUpdateId``";
3. "each new event's ``pu`` should be equal to the previous event's ``u``, otherwise
   initialize the process from step 3" (futures update IDs are not contiguous, ``pu`` is
   the chain).

The book is kept whole (no depth cut): a diff stream only reports changes, so a level cut
away could never be known again when it comes back into range; publishers cut on output.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Literal

from cryptowire.books import Level, OrderBook

Market = Literal["spot", "futures"]


class DepthSyncError(ValueError):
    """A payload that is not a well-formed depth event or snapshot (nothing was changed)."""


@dataclass(frozen=True, slots=True)
class Depth:
    """One ``depthUpdate`` event, parsed: ``U``, ``u``, ``pu`` (futures) and the levels."""

    first_id: int
    final_id: int
    prev_final_id: int | None
    bids: list[Level]
    asks: list[Level]


@dataclass(frozen=True, slots=True)
class Step:
    """What one call did: the events applied (in order), whether the book now stands on the
    snapshot just given, and, when the book is unknown until a new snapshot, why
    (``resync``; the events from the break on are kept for that next snapshot)."""

    applied: tuple[Depth, ...] = ()
    snapshot: bool = False
    resync: str | None = None


@dataclass(slots=True)
class DepthSync:
    """Local book of one symbol on one Binance market, kept by the documented procedure.

    ``needs_snapshot`` says when the caller should fetch (again) a REST snapshot; until
    then events are buffered (at most ``max_buffer``, oldest dropped: the bridge rule
    detects a snapshot older than what is left).
    """

    market: Market
    max_buffer: int = 10_000
    book: OrderBook = field(default_factory=OrderBook)
    update_id: int | None = None  # the book's update ID; None while no snapshot holds
    _bridged: bool = False  # the first event after the snapshot has been applied
    _buffer: deque[Depth] = field(default_factory=deque)

    @property
    def needs_snapshot(self) -> bool:
        return self.update_id is None

    @property
    def synced(self) -> bool:
        """The book is exact as of ``update_id`` (a snapshot and its bridging event held)."""
        return self.update_id is not None and self._bridged

    def on_event(self, payload: Mapping[str, object]) -> Step:
        """Feed one ``depthUpdate`` payload."""
        event = parse_event(payload, self.market)
        if self.update_id is None:
            self._keep(event)
            return Step()
        return self._apply_all([event])

    def on_snapshot(self, payload: Mapping[str, object]) -> Step:
        """Feed the JSON of a REST depth snapshot; the buffered events are replayed on it."""
        last_update_id, bids, asks = parse_snapshot(payload)
        self.book.snapshot(bids, asks)
        self.update_id, self._bridged = last_update_id, False
        buffered = list(self._buffer)
        self._buffer.clear()
        step = self._apply_all(buffered)
        return Step(step.applied, step.resync is None, step.resync)

    def _apply_all(self, events: Sequence[Depth]) -> Step:
        applied: list[Depth] = []
        for index, event in enumerate(events):
            reason = self._gap(event)
            if reason is not None:
                self._restart(events[index:])
                return Step(tuple(applied), False, reason)
            if self._stale(event):
                continue
            self.book.apply(event.bids, event.asks)
            self.update_id, self._bridged = event.final_id, True
            applied.append(event)
        return Step(tuple(applied))

    def _stale(self, event: Depth) -> bool:
        """Already in the book, to be skipped: spot ``u <= id`` (step 5 and the update
        procedure); futures, before the bridge only, ``u < lastUpdateId`` (its documented
        rule keeps ``u == lastUpdateId``). After the futures bridge every event must chain
        by ``pu``, so none is skipped."""
        assert self.update_id is not None
        if self.market == "spot":
            return event.final_id <= self.update_id
        return not self._bridged and event.final_id < self.update_id

    def _gap(self, event: Depth) -> str | None:
        book_id = self.update_id
        assert book_id is not None
        if self._stale(event):
            return None
        if self.market == "spot":
            if event.first_id > book_id + 1:
                what = "first event" if not self._bridged else "event"
                return (f"{what} U={event.first_id} > update id {book_id} + 1: "
                        "missed events, a new snapshot is needed")
            return None
        if not self._bridged:
            if event.first_id > book_id:
                return (f"first event U={event.first_id} > lastUpdateId {book_id}: "
                        "the snapshot is older than the stream, a new one is needed")
            return None
        if event.prev_final_id != book_id:
            return f"pu={event.prev_final_id} is not the previous u={book_id}: events missed"
        return None

    def _restart(self, pending: Sequence[Depth]) -> None:
        """Discard the book; keep the events from the break on for the next snapshot."""
        self.book.clear()
        self.update_id, self._bridged = None, False
        self._buffer.clear()
        for event in pending:
            self._keep(event)

    def _keep(self, event: Depth) -> None:
        if len(self._buffer) >= self.max_buffer:
            self._buffer.popleft()
        self._buffer.append(event)


def parse_event(payload: Mapping[str, object], market: Market) -> Depth:
    """A ``depthUpdate`` payload as :class:`Depth`; ``pu`` is required on futures."""
    if payload.get("e") != "depthUpdate":
        raise DepthSyncError(f"not a depthUpdate event: e={payload.get('e')!r}")
    first_id, final_id = _int(payload, "U"), _int(payload, "u")
    if first_id > final_id:
        raise DepthSyncError(f"U={first_id} > u={final_id}")
    prev = _int(payload, "pu") if market == "futures" else None
    return Depth(first_id, final_id, prev, _levels(payload, "b"), _levels(payload, "a"))


def parse_snapshot(payload: Mapping[str, object]) -> tuple[int, list[Level], list[Level]]:
    """``lastUpdateId``, bids and asks of a REST depth snapshot."""
    return _int(payload, "lastUpdateId"), _levels(payload, "bids"), _levels(payload, "asks")


def _int(payload: Mapping[str, object], key: str) -> int:
    value = payload.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise DepthSyncError(f"{key}={value!r} is not an integer")
    return value


def _levels(payload: Mapping[str, object], key: str) -> list[Level]:
    raw = payload.get(key)
    if not isinstance(raw, list):
        raise DepthSyncError(f"{key}={raw!r} is not a list of levels")
    levels: list[Level] = []
    for level in raw:
        if (not isinstance(level, list) or len(level) != 2
                or not all(_is_amount(text) for text in level)):
            raise DepthSyncError(f"level {level!r} in {key} is not [price, size] decimal strings")
        levels.append([level[0], level[1]])
    return levels


def _is_amount(text: object) -> bool:
    """A finite, non-negative decimal string (what :class:`OrderBook` accepts), checked here
    so that a bad event is refused before it can touch the book or its update ID."""
    if not isinstance(text, str):
        return False
    try:
        value = Decimal(text)
    except InvalidOperation:
        return False
    return value.is_finite() and value >= 0
