"""Three replay peers for the BBO latency benchmark, in one process: Bybit linear, Binance
USDⓈ-M futures and OKX swaps, each the test suite's peer (protocol, acks, pings, REST,
instruments) with its order books replaced by stamped top-of-book streams (topbook.py).

- Bybit (``tests/peers/bybit_peer.py`` via peer.py's ``LatencyPeer``): ``orderbook.1.<SYM>``,
  a snapshot on subscribe, then a ``delta`` per top change (the change of the level-1 cut:
  the new best level, size ``"0"`` for the one it replaced), ``u`` + 1 each,
  ``--bybit-rate`` frames/s (Bybit pushes ``orderbook.1`` linear every 10 ms: 100).
- Binance (``tests/peers/binance_peer.py``): ``<sym>@depth@100ms`` on ``/public/stream``,
  ``depthUpdate`` events with ``U`` = previous ``u`` + 1, ``u`` = ``U`` + 0..5, ``pu`` =
  previous ``u``, and ``GET /fapi/v1/depth`` answering the book now with ``lastUpdateId`` =
  the last ``u`` (the hub syncs by Binance's documented procedure), ``--binance-rate``
  events/s (10: ``@100ms``).
- OKX (``tests/peers/okx_peer.py``): ``books`` (snapshot on subscribe, then ``update``s
  chained by ``seqId``/``prevSeqId``, ``checksum`` 0 as OKX since 2026-06-23),
  ``--okx-rate`` updates/s (``books`` pushes every 100 ms: 10); sizes in contracts
  (``ctVal`` 0.01: every symbol is listed with BTC-USDT-SWAP's contract).

Every frame after ``GO`` moves the top of that venue's book (TopBook.move) and carries the
send time in ns in the new best level's size; ``ts``/``E`` are the wall clock in ms. Each
(venue, symbol) book is paced on its own clock at a random phase. Prints
``LISTENING bybit=<port> binance=<port> okx=<port>``; stdin ``GO`` starts the streams,
``STOP`` prints ``RESULT {json}`` (frames sent per venue) and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from books import load_cycle  # noqa: E402
from common import SYMBOLS  # noqa: E402
from peer import LatencyPeer  # noqa: E402
from tests.peers.binance_peer import BinancePeer  # noqa: E402
from tests.peers.okx_peer import OkxPeer  # noqa: E402
from topbook import Levels, TopBook  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
Send = Callable[[str], Awaitable[bool]]


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def cut_changes(old: Levels, new: Levels) -> Levels:
    """The delta from one side of a cut book to the next (as bybit_books._changes)."""
    was = {Decimal(p): s for p, s in old}
    now = {Decimal(p) for p, _ in new}
    return ([[p, s] for p, s in new if was.get(Decimal(p)) != s]
            + [[p, "0"] for p, _ in old if Decimal(p) not in now])


class Feed:
    """One venue book of one symbol, streamed to its subscribers from ``GO`` on, ``rate``
    frames/s on its own clock (a random phase)."""

    venue = ""

    def __init__(self, book: TopBook, rate: float, go: asyncio.Event,
                 sent: Counter[str]) -> None:
        self.top = book
        self.rate = rate
        self.go = go
        self.sent = sent
        self.subscribers: list[Send] = []
        self._task: asyncio.Task[None] | None = None

    def next_frame(self, ns: int) -> str:
        raise NotImplementedError

    def first_frame(self) -> str | None:
        return None

    async def stream(self, send: Send) -> None:
        """One subscription: the snapshot (if the venue sends one), then every frame."""
        await asyncio.sleep(0.005)  # the subscribe ack goes first
        first = self.first_frame()
        if first is not None and not await send(first):
            return
        self.subscribers.append(send)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        try:
            await asyncio.Event().wait()
        finally:
            self.subscribers.remove(send)

    serve = stream  # BinancePeer's name for it

    async def _run(self) -> None:
        await self.go.wait()
        loop = asyncio.get_running_loop()
        period = 1.0 / self.rate
        due = loop.time() + random.uniform(0.0, period)  # noqa: S311
        while self.subscribers:
            due += period
            await asyncio.sleep(max(0.0, due - loop.time()))
            text = self.next_frame(time.time_ns())
            for send in list(self.subscribers):
                await send(text)
            self.sent[self.venue] += 1

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


class BybitTop(Feed):
    """``orderbook.1.<SYMBOL>``."""

    venue = "bybit"

    def __init__(self, topic: str, *args: Any) -> None:
        super().__init__(*args)
        self.topic = topic
        self.symbol = topic.rsplit(".", 1)[1]
        self.u = 1000
        self.seq = 66544700000

    def _frame(self, kind: str, bids: Levels, asks: Levels, ms: int) -> str:
        return dumps({"topic": self.topic, "type": kind, "ts": ms,
                      "data": {"s": self.symbol, "b": bids, "a": asks, "u": self.u,
                               "seq": self.seq}, "cts": ms - 1})

    def first_frame(self) -> str:
        return self._frame("snapshot", self.top.levels("bids", 1), self.top.levels("asks", 1),
                           time.time_ns() // 1_000_000)

    def next_frame(self, ns: int) -> str:
        before = self.top.levels("bids", 1), self.top.levels("asks", 1)
        self.top.move(ns)
        self.u += 1
        self.seq += 7
        return self._frame("delta", cut_changes(before[0], self.top.levels("bids", 1)),
                           cut_changes(before[1], self.top.levels("asks", 1)), ns // 1_000_000)


class BinanceTop(Feed):
    """``<symbol>@depth@100ms`` (futures) and its REST snapshot."""

    venue = "binance"

    def __init__(self, symbol: str, u: int, *args: Any) -> None:
        super().__init__(*args)
        self.symbol = symbol
        self.stream_name = f"{symbol.lower()}@depth@100ms"
        self.u = u
        self.snapshots_served = 0

    def snapshot(self, limit: int) -> dict[str, Any]:
        self.snapshots_served += 1
        ms = time.time_ns() // 1_000_000
        return {"lastUpdateId": self.u, "E": ms, "T": ms - 1,
                "bids": self.top.levels("bids", limit), "asks": self.top.levels("asks", limit)}

    def next_frame(self, ns: int) -> str:
        bids, asks = self.top.move(ns)
        prev, first = self.u, self.u + 1
        self.u = first + self.top.rng.randint(0, 5)
        ms = ns // 1_000_000
        return dumps({"stream": self.stream_name, "data": {
            "e": "depthUpdate", "E": ms, "T": ms - 1, "s": self.symbol, "U": first, "u": self.u,
            "pu": prev, "b": bids, "a": asks}})


class OkxTop(Feed):
    """``books`` of one ``instId`` and its REST book."""

    venue = "okx"

    def __init__(self, inst_id: str, seq: int, *args: Any) -> None:
        super().__init__(*args)
        self.inst_id = inst_id
        self.seq = seq
        self.ts = time.time_ns() // 1_000_000

    def levels(self, side: str) -> list[list[str]]:
        return [[p, s, "0", "1"] for p, s in self.top.levels(side)]

    def _message(self, action: str, asks: list[list[str]], bids: list[list[str]],
                 prev: int) -> str:
        return dumps({"arg": {"channel": "books", "instId": self.inst_id}, "action": action,
                      "data": [{"asks": asks, "bids": bids, "ts": str(self.ts), "checksum": 0,
                                "prevSeqId": prev, "seqId": self.seq}]})

    def first_frame(self) -> str:
        return self._message("snapshot", self.levels("asks"), self.levels("bids"), -1)

    def next_frame(self, ns: int) -> str:
        bids, asks = self.top.move(ns)
        prev = self.seq
        self.seq += 1
        self.ts = ns // 1_000_000
        return self._message("update", [[p, s, "0", "1"] for p, s in asks],
                             [[p, s, "0", "1"] for p, s in bids], prev)


class Peers:
    """The three peers and their feeds, sharing one ``go``."""

    def __init__(self, symbols: list[str], rates: dict[str, float]) -> None:
        self.go = asyncio.Event()
        self.sent: Counter[str] = Counter()
        self.rates = rates
        seeds = iter(range(1, 10_000))
        snapshot = load_cycle()[0]
        binance = json.loads((FIXTURES / "binance" / "futures-depth-snapshot.json").read_text())
        okx = json.loads((FIXTURES / "okx" / "swap-books.jsonl").read_text()
                         .splitlines()[0])["data"][0]

        def top(bids: Levels, asks: Levels, tick: str, places: int) -> TopBook:
            return TopBook(bids, asks, tick, places, next(seeds))

        feeds = self  # the peers' book() overrides below build the feeds on first use

        class BybitBbo(LatencyPeer):
            def book(self, topic: str = "", category: str = "linear",
                     ) -> BybitTop:  # type: ignore[override]
                feed = self.book_streams.get(topic)
                if feed is None:
                    feed = BybitTop(topic, top(*snapshot, "0.10", 3), rates["bybit"],
                                    feeds.go, feeds.sent)
                    self.book_streams[topic] = feed  # type: ignore[assignment]
                return feed  # type: ignore[return-value]

        class BinanceBbo(BinancePeer):
            def book(self, market: str = "futures", symbol: str = "BTCUSDT",
                     ) -> BinanceTop:  # type: ignore[override]
                feed = self.books.get((market, symbol))
                if feed is None:
                    feed = BinanceTop(symbol, binance["lastUpdateId"],
                                      top(binance["bids"], binance["asks"], "0.10", 3),
                                      rates["binance"], feeds.go, feeds.sent)
                    self.books[(market, symbol)] = feed  # type: ignore[assignment]
                return feed  # type: ignore[return-value]

        class OkxBbo(OkxPeer):
            def book(self, inst_id: str = "BTC-USDT-SWAP") -> OkxTop:  # type: ignore[override]
                feed = self.books.get(inst_id)
                if feed is None:
                    feed = OkxTop(inst_id, int(okx["seqId"]),
                                  top(okx["bids"], okx["asks"], "0.1", 2), rates["okx"],
                                  feeds.go, feeds.sent)
                    self.books[inst_id] = feed  # type: ignore[assignment]
                return feed  # type: ignore[return-value]

        self.bybit = BybitBbo(symbols, 0.0)
        self.binance = BinanceBbo(instruments={"futures": set(symbols), "spot": set()})
        self.okx = OkxBbo()
        list_okx_symbols(self.okx, symbols)

    async def start(self) -> dict[str, int]:
        await self.bybit.start()
        await self.binance.start()
        await self.okx.start()
        return {"bybit": self.bybit.port, "binance": self.binance.port, "okx": self.okx.port}

    async def close(self) -> None:
        for peer in (self.bybit, self.binance, self.okx):
            await peer.close()


def list_okx_symbols(peer: OkxPeer, symbols: list[str]) -> None:
    """List ``<BASE>-USDT-SWAP`` for every symbol, with BTC-USDT-SWAP's contract."""
    swaps = peer.instruments["SWAP"]
    template = next(i for i in swaps if i["instId"] == "BTC-USDT-SWAP")
    listed = {i["instId"] for i in swaps}
    for symbol in symbols:
        base = symbol.removesuffix("USDT")
        inst_id = f"{base}-USDT-SWAP"
        if inst_id in listed:
            swaps.remove(next(i for i in swaps if i["instId"] == inst_id))
        item = copy.deepcopy(template)
        item.update({"instId": inst_id, "instFamily": f"{base}-USDT", "uly": f"{base}-USDT",
                     "ctValCcy": base})
        swaps.append(item)


async def main(args: argparse.Namespace) -> None:
    rates = {"bybit": args.bybit_rate, "binance": args.binance_rate, "okx": args.okx_rate}
    peers = Peers(list(SYMBOLS[: args.symbols]), rates)
    ports = await peers.start()
    print("LISTENING " + " ".join(f"{k}={v}" for k, v in ports.items()), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    started = 0.0
    while True:
        line = (await reader.readline()).decode().strip()
        if line == "GO":
            peers.go.set()
            started = time.monotonic()
            print("GOING", flush=True)
        elif line in ("STOP", ""):
            break
    span = time.monotonic() - started if started else 0.0
    print("RESULT " + json.dumps({
        "sent": dict(peers.sent), "span_s": round(span, 3),
        "sent_per_s": {k: round(v / span, 1) for k, v in peers.sent.items()} if span else None,
        "rates": rates,
        "binance_rest_snapshots": sum(getattr(f, "snapshots_served", 0)
                                      for f in peers.binance.books.values()),
    }), flush=True)
    await peers.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--bybit-rate", type=float, default=100.0)
    parser.add_argument("--binance-rate", type=float, default=10.0)
    parser.add_argument("--okx-rate", type=float, default=10.0)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(parser.parse_args()))
