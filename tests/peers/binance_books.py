"""The order book side of the Binance replay peer: the venue's book of one symbol on one market.

A :class:`DepthFeed` is the book Binance keeps for ``<symbol>@depth@100ms`` (F-BOOK, S-WS; see
``tests/fixtures/binance/README.md``). It starts as the fixture's book after the bridging
event (the REST snapshot plus the part of event 6 it lacks), streams the fixture's events 7..39
with their own ``U``/``u``/``pu``, then goes on with seeded random changes that keep the book
uncrossed (futures: ``U`` above the previous ``u`` by a few, ``pu`` = previous ``u``; spot:
``U`` = previous ``u`` + 1), one event every ``interval_s`` while anyone is subscribed (one
clock shared by every subscriber, like the exchange's).

:meth:`DepthFeed.snapshot` is the REST answer (``lastUpdateId`` = the ``u`` of the last
event, at most ``limit`` levels a side); :attr:`DepthFeed.history` maps each ``u`` to the
whole book after it, so a test compares a client's book with the venue's at every step.

Faults (:meth:`DepthFeed.inject`), each used once:

- ``"gap"``: the next event is lost (the book moves by it, nobody gets it);
- ``"pu"``: the next event is sent with a wrong ``pu`` (futures) / ``U`` (spot): a sequence
  break while the book is right;
- ``"stale"``: the next REST snapshot is the book as it was ``stale_by`` events ago.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptowire.books import OrderBook

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "binance"
BRIDGE = 6
FAULTS = ("gap", "pu", "stale")
Levels = list[list[str]]


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class DepthFeed:
    """See the module docstring. ``market`` is ``futures`` or ``spot``."""

    def __init__(self, market: str, symbol: str, interval_s: float,
                 stalled: Callable[[], bool], seed: int = 5) -> None:
        self.market = market
        self.symbol = symbol
        self.stream = f"{symbol.lower()}@depth@100ms"
        self.interval_s = interval_s
        self.stalled = stalled
        self.rng = random.Random(seed)
        events = [json.loads(line)["data"] for line in
                  (FIXTURES / f"{market}-depth.jsonl").read_text().splitlines()]
        snap = json.loads((FIXTURES / f"{market}-depth-snapshot.json").read_text())
        self.book = OrderBook()
        self.book.snapshot(snap["bids"], snap["asks"])
        for event in events[BRIDGE:BRIDGE + 1]:
            self.book.apply(event["b"], event["a"])
        self.u = events[BRIDGE]["u"]
        self.E = events[BRIDGE]["E"]
        self.recorded = events[BRIDGE + 1:]
        places = events[0]["b"][0][0] if events[0]["b"] else events[0]["a"][0][0]
        self.tick = Decimal("0.01") if market == "spot" else Decimal("0.10")
        self.price_places = len(places.split(".")[1])
        self.qty_places = 8 if market == "spot" else 3
        self.history: dict[int, tuple[Levels, Levels]] = {self.u: self.levels()}
        self.order: list[int] = [self.u]
        self.sent: list[dict[str, Any]] = []
        self.subscribers: set[asyncio.Queue[str]] = set()
        self.faults: list[str] = []
        self.stale_by = 3
        self.snapshots_served = 0
        self._task: asyncio.Task[None] | None = None

    # -- what tests read ------------------------------------------------------------------------

    def levels(self) -> tuple[Levels, Levels]:
        return self.book.levels("bids"), self.book.levels("asks")

    def inject(self, fault: str) -> None:
        assert fault in FAULTS, fault
        self.faults.append(fault)

    def snapshot(self, limit: int) -> dict[str, Any]:
        """The REST depth answer (futures adds ``E`` and ``T``)."""
        self.snapshots_served += 1
        u = self.u
        if "stale" in self.faults:
            self.faults.remove("stale")
            u = self.order[max(0, len(self.order) - 1 - self.stale_by)]
        bids, asks = self.history[u]
        out: dict[str, Any] = {"lastUpdateId": u}
        if self.market == "futures":
            out.update({"E": self.E, "T": self.E - 3})
        out.update({"bids": bids[:limit], "asks": asks[:limit]})
        return out

    # -- serving -----------------------------------------------------------------------------

    async def serve(self, send: Callable[[str], Awaitable[bool]]) -> None:
        """One subscription: every event from now on."""
        queue: asyncio.Queue[str] = asyncio.Queue()
        self.subscribers.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"peer-depth-{self.stream}")
        try:
            while await send(await queue.get()):
                pass
        finally:
            self.subscribers.discard(queue)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while self.subscribers:
            await asyncio.sleep(self.interval_s)
            while self.stalled():
                await asyncio.sleep(0.01)
            frame = self.next_event()
            if frame is None:
                continue
            self.sent.append(frame)
            text = dumps({"stream": self.stream, "data": frame})
            for queue in list(self.subscribers):
                queue.put_nowait(text)

    # -- the venue -----------------------------------------------------------------------------

    def next_event(self) -> dict[str, Any] | None:
        """Move the book by one event; the frame to send, or None when it is lost."""
        bids, asks = self._changes()
        prev = self.u
        if self.recorded:
            recorded = self.recorded.pop(0)
            first, final = recorded["U"], recorded["u"]
        elif self.market == "futures":
            first = prev + self.rng.randint(1, 40)
            final = first + self.rng.randint(0, 300)
        else:
            first = prev + 1
            final = first + self.rng.randint(0, 30)
        self.book.apply(bids, asks)
        assert not self.book.crossed(), f"{self.stream}: the peer crossed at u={final}"
        self.u, self.E = final, self.E + 100
        self.history[final] = self.levels()
        self.order.append(final)
        data: dict[str, Any] = {"e": "depthUpdate", "E": self.E}
        if self.market == "futures":
            data["T"] = self.E - 2
        data.update({"s": self.symbol, "U": first, "u": final})
        if self.market == "futures":
            data["pu"] = prev
        data.update({"b": bids, "a": asks})
        if "gap" in self.faults:
            self.faults.remove("gap")
            return None
        if "pu" in self.faults:
            self.faults.remove("pu")
            if self.market == "futures":
                data["pu"] = prev - 1
            else:
                data["U"] = prev + 2
        return data

    def _changes(self) -> tuple[Levels, Levels]:
        if self.recorded:
            return self.recorded[0]["b"], self.recorded[0]["a"]
        changes: dict[str, dict[Decimal, Decimal]] = {"b": {}, "a": {}}
        for _ in range(self.rng.randint(1, 4)):
            side, price, size = self._change(changes)
            changes[side][price] = size
        return self._levels(changes["b"], True), self._levels(changes["a"], False)

    def _change(self, pending: dict[str, dict[Decimal, Decimal]]
                ) -> tuple[str, Decimal, Decimal]:
        side = self.rng.choice("ba")
        levels = self.book.levels("bids" if side == "b" else "asks")
        prices = [Decimal(p) for p, _ in levels if Decimal(p) not in pending[side]]
        kind = self.rng.random()
        if kind < 0.45 and prices:
            return side, prices[self.rng.randint(0, min(9, len(prices) - 1))], self._qty()
        if kind < 0.7 and len(prices) > 20:
            return side, prices[self.rng.randint(0, min(14, len(prices) - 1))], Decimal(0)
        best_bid = Decimal(self.book.levels("bids", 1)[0][0])
        best_ask = Decimal(self.book.levels("asks", 1)[0][0])
        step = self.tick * self.rng.randint(1, 6)
        price = best_bid - step if side == "b" else best_ask + step
        return side, price, self._qty()

    def _qty(self) -> Decimal:
        step = Decimal(1).scaleb(-self.qty_places) * (1000 if self.market == "spot" else 1)
        return step * self.rng.randint(1, 40000)

    def _levels(self, side: dict[Decimal, Decimal], bids: bool) -> Levels:
        return [[f"{p:.{self.price_places}f}", f"{side[p]:.{self.qty_places}f}"]
                for p in sorted(side, reverse=bids)]
