"""Applies per second of the sans-I/O order book (``cryptowire.books.OrderBook``), pure Python.

Builds a deterministic stream of Bybit ``orderbook.50`` shaped messages (BTCUSDT linear: tick
0.10, prices written with two decimals as Bybit does, ``"65432.10"``; sizes with three,
``"0.006"``; 50 levels a side) and times ``OrderBook(50).apply`` over it, one process, one
thread. A message changes ``k`` levels of a side, as a venue's delta does: most change the
size of a level near the top, some remove a level (size ``"0"``, and the level that then
enters at the bottom), some add a level inside the book (and remove the one it pushes out).
The stream is generated before the clock starts; only ``apply`` is timed (the loop and the
call included).

Cases (levels changed per message, both sides together):
  1        one level on one side (the smallest delta)
  2+2      a few levels a side, the typical Bybit orderbook.50 push every 20 ms
  3+3
  5+5      ten levels
  10+10    a busy message
and, for reference, the ``snapshot`` of a full 50+50 book.

Run:  PYTHONPATH=src python bench/book_apply.py [--messages 20000] [--repeat 5]
Prints applies/s per case (best and median of the repeats) and the target line.
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import time
from decimal import Decimal

from cryptowire.books import OrderBook

TARGET = 200_000
DEPTH = 50
TICK = Decimal("0.10")
MID = Decimal("65432.10")

Levels = list[list[str]]


def _price(ticks: int) -> str:
    return f"{MID + TICK * ticks:.2f}"


def _size(rng: random.Random) -> str:
    return f"{rng.randint(1, 50_000) / 1000:.3f}"  # noqa: S311  (test data only)


class _Model:
    """The venue's book in ticks from the mid, to generate coherent deltas."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.bids = {-i: _size(rng) for i in range(1, DEPTH + 1)}
        self.asks = {i: _size(rng) for i in range(1, DEPTH + 1)}

    def snapshot(self) -> tuple[Levels, Levels]:
        return ([[_price(t), self.bids[t]] for t in sorted(self.bids, reverse=True)],
                [[_price(t), self.asks[t]] for t in sorted(self.asks)])

    def change(self, book: dict[int, str], sign: int) -> Levels:
        """One change of a side: the levels it sends (one or two)."""
        rng = self.rng
        ticks = sorted(book, key=lambda t: t * sign)  # best first
        roll = rng.random()  # noqa: S311
        if roll < 0.7:  # a size change, mostly near the top
            t = ticks[min(int(rng.expovariate(0.15)), len(ticks) - 1)]
            book[t] = _size(rng)
            return [[_price(t), book[t]]]
        if roll < 0.85:  # a level goes; the next one enters at the bottom
            t = ticks[min(int(rng.expovariate(0.2)), len(ticks) - 1)]
            del book[t]
            new = ticks[-1] + sign
            book[new] = _size(rng)
            return [[_price(t), "0"], [_price(new), book[new]]]
        # a level comes inside the book (a free tick within 5 of the best); the last goes
        free = [t for t in range(ticks[0] - 5 * sign, ticks[0] + 5 * sign, sign)
                if t not in book and t * sign > 0]
        if not free:
            return self.change(book, sign)
        t = rng.choice(free)
        book[t] = _size(rng)
        last = max(book, key=lambda x: x * sign)
        del book[last]
        return [[_price(t), book[t]], [_price(last), "0"]]

    def delta(self, per_side: tuple[int, int]) -> tuple[Levels, Levels]:
        bids: Levels = []
        asks: Levels = []
        while len(bids) < per_side[0]:
            bids += self.change(self.bids, -1)
        while len(asks) < per_side[1]:
            asks += self.change(self.asks, 1)
        return bids, asks


def stream(per_side: tuple[int, int], messages: int, seed: int = 13
           ) -> tuple[tuple[Levels, Levels], list[tuple[Levels, Levels]]]:
    model = _Model(random.Random(seed))  # noqa: S311
    first = model.snapshot()
    return first, [model.delta(per_side) for _ in range(messages)]


def time_applies(first: tuple[Levels, Levels], deltas: list[tuple[Levels, Levels]]) -> float:
    book = OrderBook(DEPTH)
    book.snapshot(*first)
    apply = book.apply
    gc.disable()
    try:
        start = time.perf_counter()
        for bids, asks in deltas:
            apply(bids, asks)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return len(deltas) / elapsed


def time_snapshots(first: tuple[Levels, Levels], count: int) -> float:
    book = OrderBook(DEPTH)
    bids, asks = first
    start = time.perf_counter()
    for _ in range(count):
        book.snapshot(bids, asks)
    return count / (time.perf_counter() - start)


CASES: list[tuple[str, tuple[int, int]]] = [
    ("1", (1, 0)), ("2+2", (2, 2)), ("3+3", (3, 3)), ("5+5", (5, 5)), ("10+10", (10, 10)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"python {platform.python_version()} ({platform.python_implementation()}), "
          f"{platform.machine()}, {args.messages} messages x {args.repeat} repeats, depth "
          f"{DEPTH}")
    print(f"{'case':<10}{'levels/msg':>11}{'best /s':>12}{'median /s':>12}{'us/apply':>10}")
    headline = 0.0
    for name, per_side in CASES:
        first, deltas = stream(per_side, args.messages)
        mean_levels = sum(len(b) + len(a) for b, a in deltas) / len(deltas)
        rates = [time_applies(first, deltas) for _ in range(args.repeat)]
        best, median = max(rates), statistics.median(rates)
        if name == "2+2":
            headline = median
        print(f"{name:<10}{mean_levels:>11.1f}{best:>12,.0f}{median:>12,.0f}"
              f"{1e6 / median:>10.2f}")
    first, _ = stream((1, 0), 0)
    snaps = [time_snapshots(first, 2_000) for _ in range(args.repeat)]
    print(f"{'snapshot':<10}{100:>11}{max(snaps):>12,.0f}{statistics.median(snaps):>12,.0f}"
          f"{1e6 / statistics.median(snaps):>10.2f}")
    verdict = "met" if headline >= TARGET else "NOT met"
    print(f"target >= {TARGET:,} applies/s for a typical 50-level delta (2+2): {verdict} "
          f"({headline:,.0f}/s median)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
