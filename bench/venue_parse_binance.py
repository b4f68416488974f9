"""Parse cost per venue: µs per upstream frame, per stream kind, pure Python, one thread.

For each stream kind the frames of ``tests/fixtures/<venue>/`` are turned into text frames
(as the socket delivers them) and fed as the exchange seam's source does: the venue codec's
``parse`` (classify the frame), then the topic state's ``apply`` (check the payload, build the
normalized publications; for books: the depth sync, the whole local book and the cut delta of
each depth channel). The clock covers those calls alone; the frames are built before it
starts.

Binance (``cryptowire.sources.venues.binance``):
  ticker      ``24hrTicker`` / ``bookTicker`` / ``markPriceUpdate`` merged (futures)
  trade       ``aggTrade`` (futures), ``trade`` (spot)
  kline       ``kline_1m``
  liquidation ``forceOrder``
  book        ``depthUpdate`` of the peer's venue book (fixture, then generated changes),
              one ``book:50`` channel, and with ``book:5`` + ``book:50`` + ``book:1000``

Run:  PYTHONPATH=src:. python bench/venue_parse_binance.py [--frames 20000] [--repeat 5]
Prints the best and median µs per frame of the repeats.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptowire.core.channels import Channel, ChannelGrammar
from cryptowire.settings import BinanceSettings
from cryptowire.sources.exchange.codec import Data, TopicState
from cryptowire.sources.exchange.venue import Market
from cryptowire.sources.venues.binance.venue import declare

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "binance"
GRAMMAR = ChannelGrammar()


def _frames(name: str, stream_part: str) -> list[str]:
    out = []
    for line in (FIXTURES / name).read_text().splitlines():
        frame = json.loads(line)
        if stream_part in frame.get("stream", ""):
            out.append(json.dumps(frame, separators=(",", ":")))
    return out


VENUE = declare(BinanceSettings())


class _Topic:
    """What the source does per frame of one topic: the codec's items, the state's
    publications (materialized, as the source publishes each)."""

    def __init__(self, venue: str, channels: list[str]) -> None:
        self.market: Market = VENUE.markets[venue]
        parsed = [GRAMMAR.parse(name) for name in channels]
        topic = self.market.topic(parsed[0], self.market)
        self.state: TopicState = self.market.codec.state(topic, self.market)
        self.channels: dict[str, Channel] = {c.name: c for c in parsed}

    def on_message(self, text: str) -> None:
        for item in self.market.codec.parse(text):
            if isinstance(item, Data):
                list(self.state.apply(item, self.channels))


def _time(topic: _Topic, frames: list[str], count: int) -> float:
    """µs per frame over ``count`` frames (cycling through ``frames``)."""
    texts = [frames[i % len(frames)] for i in range(count)]
    on_message = topic.on_message
    gc.collect()
    gc.disable()
    start = time.perf_counter()
    for text in texts:
        on_message(text)
    elapsed = time.perf_counter() - start
    gc.enable()
    return elapsed / count * 1e6


def _book_frames(market: str, count: int, pad: int = 0) -> tuple[list[str], dict[str, Any]]:
    """``count`` depth frames of the peer's venue book and a REST snapshot before them;
    ``pad`` levels a side are added far from the spread first (a deep book)."""
    sys.path.insert(0, str(ROOT))
    from tests.peers.binance_books import DepthFeed  # the generator the peer streams

    venue = DepthFeed(market, "BTCUSDT", 0.0, lambda: False)
    if pad:
        low, high = venue.book.levels("bids")[-1][0], venue.book.levels("asks")[-1][0]
        size = venue.book.levels("bids")[0][1]
        venue.book.apply(
            [[f"{Decimal(low) - venue.tick * (i + 1):.{venue.price_places}f}", size]
             for i in range(pad)],
            [[f"{Decimal(high) + venue.tick * (i + 1):.{venue.price_places}f}", size]
             for i in range(pad)])
    first = venue.next_event()
    frames = [json.dumps({"stream": "btcusdt@depth@100ms", "data": first},
                         separators=(",", ":"))]
    snapshot = venue.snapshot(1000)  # at the first frame's u: that frame bridges
    while len(frames) < count:
        data = venue.next_event()
        assert data is not None
        frames.append(json.dumps({"stream": "btcusdt@depth@100ms", "data": data},
                                 separators=(",", ":")))
    return frames, snapshot


def _book_case(market: str, depths: list[int], count: int, pad: int = 0
               ) -> Callable[[], float]:
    frames, snapshot = _book_frames(market, count, pad)
    venue = "binance" if market == "futures" else "binance-spot"

    def run() -> float:
        topic = _Topic(venue, [f"book:{d}:BTCUSDT@{venue}" for d in depths])
        topic.on_message(frames[0])
        list(topic.state.on_snapshot(snapshot, topic.channels))
        topic.on_message(frames[1])  # spot drops frame 0 (u == lastUpdateId): 1 bridges
        book = topic.state.book  # type: ignore[attr-defined]
        assert book.live, "the bench book did not sync"
        seconds = _time(topic, frames[2:], len(frames) - 2)
        assert book.live, "the bench book broke"
        return seconds
    return run


def cases(count: int) -> dict[str, Callable[[], float]]:
    fut, spot = "binance", "binance-spot"
    ticker_f = _frames("futures-market.jsonl", "@ticker") + _frames(
        "futures-market.jsonl", "@markPrice") + _frames("futures-public.jsonl", "@bookTicker")
    ticker_s = _frames("spot.jsonl", "@ticker") + _frames("spot.jsonl", "@bookTicker")
    simple: dict[str, tuple[str, list[str], list[str]]] = {
        "binance ticker (merged)": (fut, ["ticker:BTCUSDT@binance"], ticker_f),
        "binance trade (aggTrade)": (fut, ["trade:BTCUSDT@binance"],
                                     _frames("futures-market.jsonl", "@aggTrade")),
        "binance kline": (fut, ["kline:1m:BTCUSDT@binance"],
                          _frames("futures-market.jsonl", "@kline_1m")),
        "binance liquidation": (fut, ["liquidation:BTCUSDT@binance"],
                                _frames("futures-market.jsonl", "@forceOrder")),
        "binance-spot ticker (merged)": (spot, ["ticker:BTCUSDT@binance-spot"], ticker_s),
        "binance-spot trade": (spot, ["trade:BTCUSDT@binance-spot"],
                               _frames("spot.jsonl", "@trade")),
    }
    out: dict[str, Callable[[], float]] = {
        name: (lambda m=m, c=c, f=f: _time(_Topic(m, c), f, count))
        for name, (m, c, f) in simple.items()
    }
    out["binance book:50"] = _book_case("futures", [50], count)
    out["binance book:5+50+1000"] = _book_case("futures", [5, 50, 1000], count)
    out["binance-spot book:50"] = _book_case("spot", [50], count)
    out["binance book:1000, 1000 levels"] = _book_case("futures", [1000], count, pad=1000)
    out["binance book:5+50+1000, 1000 lv"] = _book_case("futures", [5, 50, 1000], count,
                                                         pad=1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{args.frames} frames x {args.repeat} repeats")
    print(f"{'stream kind':32} {'best µs/frame':>14} {'median':>8}")
    for name, run in cases(args.frames).items():
        results = [run() for _ in range(args.repeat)]
        print(f"{name:32} {min(results):14.2f} {statistics.median(results):8.2f}")


if __name__ == "__main__":
    main()
