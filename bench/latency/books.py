"""Order book streams for the latency benchmark's peer: ``orderbook.50.<SYMBOL>`` as Bybit's
level-50 linear stream sends it, for any number of symbols, for as long as the run lasts.

The moves come from the test suite's generated fixture (``tests/fixtures/bybit/
linear.generated.jsonl``: one 50-level snapshot of BTCUSDT, then 239 deltas of 1-8 levels,
each the change of the top-50 view of a deeper book), relabelled per symbol. One cycle plays
the deltas forward, then each one's inverse in reverse order (the levels it changed, back to
their sizes before it, ``"0"`` for a level it added): the book comes back to the snapshot
without a mid-stream snapshot, so the stream is one unbroken run of small deltas, ``u`` + 1
per frame, for as long as it is read, and never crosses (every state is one the fixture had).

A subscription gets a ``snapshot`` of the book as it is (the view at the current place of the
cycle), then, once the peer says go, one ``delta`` every ``1 / rate`` s at a random phase.
Each frame is stamped at send time: ``ts`` = wall clock ms (the hub frame's ``ts``) and, with
``stamp=True``, the wall clock in ns appended as 19 more decimals to the size of the frame's
first non-zero level (``"1.593"`` -> ``"1.5931764652345678901234"``: a size < 0.001 larger,
still a decimal string; the hub passes a delta's levels through as sent). Only a delta's own
levels carry a fresh stamp: a snapshot (or a conflated snapshot) may hold older stamps.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "bybit" / "linear.generated.jsonl"
DEPTH = 50

Levels = list[list[str]]
Move = tuple[Levels, Levels]  # (bids, asks) of one delta, best first


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def load_cycle(path: Path = FIXTURE) -> tuple[Move, list[Move], int]:
    """The fixture's snapshot, the deltas of one cycle (forward, then the inverses back to the
    snapshot) and the snapshot's ``u``."""
    frames = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    book = [f for f in frames if f["topic"] == f"orderbook.{DEPTH}.BTCUSDT"]
    assert book and book[0]["type"] == "snapshot", "the fixture starts with a snapshot"
    snapshot = (book[0]["data"]["b"], book[0]["data"]["a"])
    bids = {p: s for p, s in snapshot[0]}
    asks = {p: s for p, s in snapshot[1]}
    forward: list[Move] = []
    inverse: list[Move] = []
    for frame in book[1:]:
        b, a = frame["data"]["b"], frame["data"]["a"]
        inverse.append(([[p, bids.get(p, "0")] for p, _ in b],
                        [[p, asks.get(p, "0")] for p, _ in a]))
        for side, levels in ((bids, b), (asks, a)):
            for price, size in levels:
                if Decimal(size) == 0:
                    side.pop(price, None)
                else:
                    side[price] = size
        forward.append((b, a))
    return snapshot, forward + inverse[::-1], book[0]["data"]["u"]


def stamp_levels(bids: Levels, asks: Levels, ns: int) -> tuple[Levels, Levels]:
    """Copies of ``bids`` and ``asks`` whose first non-zero level's size ends in ``ns``."""
    out: list[Levels] = [list(bids), list(asks)]
    for side in out:
        for i, (price, size) in enumerate(side):
            if Decimal(size) != 0:
                side[i] = [price, f"{size}{'' if '.' in size else '.'}{ns:019d}"]
                return out[0], out[1]
    return out[0], out[1]


def stamp_of(levels: Levels) -> int | None:
    """The ns stamp :func:`stamp_levels` put in one of ``levels``, if any."""
    for _, size in levels:
        frac = size.partition(".")[2]
        if len(frac) >= 19:
            return int(frac[-19:])
    return None


class Gate(Protocol):
    go: asyncio.Event
    rate: float

    def count(self, sent_ns: int) -> None: ...


class BookStream:
    """The venue book of one ``orderbook.50.<symbol>`` topic (one per topic, shared by its
    subscriptions: a re-subscribe gets the book where it is)."""

    def __init__(self, topic: str, symbol: str, cycle: tuple[Move, list[Move], int],
                 gate: Gate, stamp: bool) -> None:
        self.topic = topic
        self.symbol = symbol
        snapshot, self.moves, self.u = cycle
        self.bids = {p: s for p, s in snapshot[0]}
        self.asks = {p: s for p, s in snapshot[1]}
        self.gate = gate
        self.stamp = stamp
        self.i = 0
        self.seq = 66544700000

    def snapshot_frame(self) -> dict[str, Any]:
        ms = time.time_ns() // 1_000_000
        bids = sorted(self.bids.items(), key=lambda lv: Decimal(lv[0]), reverse=True)
        asks = sorted(self.asks.items(), key=lambda lv: Decimal(lv[0]))
        return {"topic": self.topic, "type": "snapshot", "ts": ms,
                "data": {"s": self.symbol, "b": [list(lv) for lv in bids[:DEPTH]],
                         "a": [list(lv) for lv in asks[:DEPTH]], "u": self.u,
                         "seq": self.seq}, "cts": ms - 1}

    def next_frame(self) -> str:
        bids, asks = self.moves[self.i % len(self.moves)]
        self.i += 1
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for price, size in levels:
                if Decimal(size) == 0:
                    side.pop(price, None)
                else:
                    side[price] = size
        self.u += 1
        self.seq += 7
        sent_ns = time.time_ns()
        if self.stamp:
            bids, asks = stamp_levels(bids, asks, sent_ns)
        ms = sent_ns // 1_000_000
        self.gate.count(sent_ns)
        return dumps({"topic": self.topic, "type": "delta", "ts": ms,
                      "data": {"s": self.symbol, "b": bids, "a": asks, "u": self.u,
                               "seq": self.seq}, "cts": ms - 1})

    async def stream(self, send: Callable[[str], Awaitable[bool]]) -> None:
        """One subscription (``BybitPeer`` calls this as it calls ``BookFeed.stream``)."""
        await asyncio.sleep(0.005)  # the subscribe ack goes first, as on Bybit
        if not await send(dumps(self.snapshot_frame())):
            return
        await self.gate.go.wait()
        loop = asyncio.get_running_loop()
        period = 1.0 / self.gate.rate if self.gate.rate > 0 else 0.0
        due = loop.time() + random.uniform(0.0, period)  # noqa: S311
        while True:
            if period:
                due += period
                await asyncio.sleep(max(0.0, due - loop.time()))
            else:
                await asyncio.sleep(0)
            if not await send(self.next_frame()):
                return

    async def close(self) -> None:
        return None
