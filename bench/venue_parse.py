"""Parse cost per venue frame: µs from the frame's text to the normalized payloads (pure Python).

Each section replays its venue's fixtures (``tests/fixtures/<venue>/``) through that venue's
sans-I/O codec, the way a connection does for every frame it reads: the JSON decode and frame
classification, then the channel's parser (ticker merge, trades, candles, liquidations) or
the order book (sequence and checksum checks, the apply, the ``book:<depth>`` cut views and
their deltas in base units). Only those calls are timed (garbage collector off), one process,
one thread; the figure is the median of ``--repeat`` runs of ``--number`` frames per channel.

Run:  PYTHONPATH=src python bench/venue_parse.py [--venue okx] [--number 5000] [--repeat 5]

Sections are self-contained functions (``okx_section`` ...) registered in ``SECTIONS``.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures"

Row = tuple[str, float, float]  # (channel, median µs/frame, best µs/frame)


def _timed(run: Callable[[], int], repeat: int) -> tuple[float, float]:
    """(median, best) µs per frame of ``run`` (which returns how many frames it handled)."""
    per_frame = []
    for _ in range(repeat):
        gc.disable()
        start = time.perf_counter()
        frames = run()
        elapsed = time.perf_counter() - start
        gc.enable()
        per_frame.append(elapsed / frames * 1e6)
    return statistics.median(per_frame), min(per_frame)


# -- OKX --------------------------------------------------------------------------------------


def okx_section(number: int, repeat: int) -> list[Row]:
    """OKX: ``tickers`` (+ ``funding-rate``, ``mark-price``), ``trades``, ``candle1m``,
    ``liquidation-orders`` and ``books`` updates (swap and spot), from the text frame."""
    from cryptowire.sources.venues.okx.book import OkxBook
    from cryptowire.sources.venues.okx.instruments import Instrument
    from cryptowire.sources.venues.okx.parser import (
        TickerMerge,
        parse_candles,
        parse_liquidations,
        parse_trades,
    )
    from cryptowire.sources.venues.okx.protocol import Push, parse_frame

    here = FIXTURES / "okx"
    swap = Instrument("BTCUSDT", "BTC-USDT-SWAP", "okx", "live", Decimal("0.01"))
    spot = Instrument("BTCUSDT", "BTC-USDT", "okx-spot", "live")

    def lines(name: str, channel: str) -> list[str]:
        return [line for line in (here / name).read_text().splitlines()
                if f'"channel":"{channel}"' in line.split('"data"')[0] and '"event"' not in line]

    def frames_run(texts: list[str], handle: Callable[[Push], object]) -> Callable[[], int]:
        batch = (texts * (number // len(texts) + 1))[:number]

        def run() -> int:
            for text in batch:
                frame = parse_frame(text)
                assert isinstance(frame, Push)
                handle(frame)
            return len(batch)
        return run

    def books_run(name: str, inst: Instrument, depths: tuple[int, ...]) -> Callable[[], int]:
        texts = (here / name).read_text().splitlines()
        snapshot, updates = parse_frame(texts[0]), texts[1:]
        assert isinstance(snapshot, Push)
        rounds = number // len(updates) + 1

        def run() -> int:
            done = 0
            for _ in range(rounds):
                book = OkxBook(inst, depths)
                gc.enable()
                book.apply(snapshot)  # not timed below: subtract nothing, it is outside
                gc.disable()
                start = time.perf_counter()
                for text in updates:
                    frame = parse_frame(text)
                    assert isinstance(frame, Push)
                    book.apply(frame)
                run.elapsed += time.perf_counter() - start  # type: ignore[attr-defined]
                done += len(updates)
            return done
        return run

    merge_swap, merge_spot = TickerMerge(swap), TickerMerge(spot)
    liq = {swap.inst_id: swap}
    cases: list[tuple[str, Callable[[], int]]] = [
        ("tickers (swap)", frames_run(lines("swap.jsonl", "tickers"), merge_swap.apply)),
        ("tickers (spot)", frames_run(lines("spot.jsonl", "tickers"), merge_spot.apply)),
        ("funding-rate", frames_run(lines("swap.jsonl", "funding-rate"), merge_swap.apply)),
        ("mark-price", frames_run(lines("swap.jsonl", "mark-price"), merge_swap.apply)),
        ("trades (swap)", frames_run(lines("swap.jsonl", "trades"),
                                     lambda p: parse_trades(p, swap))),
        ("trades (spot)", frames_run(lines("spot.jsonl", "trades"),
                                     lambda p: parse_trades(p, spot))),
        ("candle1m (swap)", frames_run(lines("swap-business.jsonl", "candle1m"),
                                       lambda p: parse_candles(p, swap))),
        ("liquidation-orders", frames_run(lines("swap.jsonl", "liquidation-orders"),
                                          lambda p: parse_liquidations(p, liq))),
    ]
    rows: list[Row] = [(name, *_timed(run, repeat)) for name, run in cases]
    merge_swap.apply(parse_frame(lines("swap.jsonl", "tickers")[0]))  # type: ignore[arg-type]
    for label, name, inst, depths in (
            ("books update (swap), book:50", "swap-books.jsonl", swap, (50,)),
            ("books update (swap), book:1+5+50+400", "swap-books.jsonl", swap, (1, 5, 50, 400)),
            ("books update (spot), book:50", "spot-books.jsonl", spot, (50,)),
            ("books update (swap, checksum), book:50", "swap-books-checksum.jsonl", swap, (50,))):
        rows.append((label, *_books_timed(books_run(name, inst, depths), repeat)))
    return rows + _okx_seam_rows(number, repeat)


def _okx_seam_rows(number: int, repeat: int) -> list[Row]:
    """OKX through the exchange seam, as the hub runs it: ``OkxCodec.parse`` of the text frame,
    then the topic state's publications (``TopicState.apply``) for one channel."""
    import json

    from cryptowire.core.channels import ChannelGrammar
    from cryptowire.settings import OkxSettings
    from cryptowire.sources.exchange.codec import Data
    from cryptowire.sources.venues.okx.venue import declare

    here, grammar = FIXTURES / "okx", ChannelGrammar()
    venue = declare(OkxSettings())
    for key, name in (("okx", "swap"), ("okx-spot", "spot")):
        spec = venue.markets[key].instruments
        assert spec is not None
        spec.parse(json.loads((here / f"instruments-{name}.json").read_text()))
    rows: list[Row] = []
    for label, channel_name, fixture, feeds in (
            ("seam: ticker@okx (tickers, funding-rate, mark-price)", "ticker:BTCUSDT@okx",
             "swap.jsonl", ("tickers", "funding-rate", "mark-price")),
            ("seam: trade@okx", "trade:BTCUSDT@okx", "swap.jsonl", ("trades",)),
            ("seam: liquidation@okx", "liquidation:BTCUSDT@okx", "swap.jsonl",
             ("liquidation-orders",))):
        channel = grammar.parse(channel_name)
        market = venue.market_of(channel)
        state = market.codec.state(market.topic(channel, market), market)
        texts = [line for line in (here / fixture).read_text().splitlines()
                 if '"event"' not in line and json.loads(line)["arg"]["channel"] in feeds]
        batch = (texts * (number // len(texts) + 1))[:number]
        channels = {channel.name: channel}

        def run(batch: list[str] = batch, state: object = state, market: object = market,
                channels: dict[str, object] = channels) -> int:
            for text in batch:
                for item in market.codec.parse(text):  # type: ignore[attr-defined]
                    if isinstance(item, Data):
                        list(state.apply(item, channels))  # type: ignore[attr-defined]
            return len(batch)
        rows.append((label, *_timed(run, repeat)))
    return rows


def _books_timed(run: Callable[[], int], repeat: int) -> tuple[float, float]:
    per_frame = []
    for _ in range(repeat):
        run.elapsed = 0.0  # type: ignore[attr-defined]
        gc.disable()
        frames = run()
        gc.enable()
        per_frame.append(run.elapsed / frames * 1e6)  # type: ignore[attr-defined]
    return statistics.median(per_frame), min(per_frame)


SECTIONS: dict[str, Callable[[int, int], list[Row]]] = {"okx": okx_section}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venue", choices=sorted(SECTIONS), action="append")
    parser.add_argument("--number", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"# {platform.python_implementation()} {platform.python_version()} on "
          f"{platform.machine()}, {sys.platform}; median (best) of {args.repeat} x "
          f"{args.number} frames")
    for venue in args.venue or sorted(SECTIONS):
        print(f"\n## {venue}\n\n| channel | µs / frame | best |\n| --- | --- | --- |")
        for name, median, best in SECTIONS[venue](args.number, args.repeat):
            print(f"| {name} | {median:.2f} | {best:.2f} |")


if __name__ == "__main__":
    main()
