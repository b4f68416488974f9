"""Bybit V5 replay peer for the latency benchmark: the test suite's ``BybitPeer`` (same
protocol: instruments REST, subscribe acks, pongs) streaming ticker and order book frames of
``--symbols`` symbols, each frame stamped with its send time.

Frames are the recorded ``tickers.BTCUSDT`` linear frames of ``tests/fixtures/bybit``
(snapshot + deltas, looping), relabelled per symbol. At send time the peer sets
``ts`` = wall clock in ms and ``data.nextFundingTime`` = wall clock in ns (as a string): both
are fields the hub passes through unchanged (``ts`` -> the frame's ``ts``; a delta's fields ->
the merged full ticker), so a client computes ``receive time - send time`` from what it gets.

``orderbook.50.<SYMBOL>`` topics are served by :class:`books.BookStream` (snapshot on
subscribe, then small deltas with ``u`` + 1, stamped in ``ts`` and, unless
``--book-stamp none``, in ns in one level's size; see books.py).

``--rate 0`` (default) is the peer's full speed: every subscribed topic sends its next frame
as soon as the loop gets back to it (one ``await asyncio.sleep(0)`` per frame, so topics
interleave), held back only by the socket (``send_str`` waits while the hub does not read).
``--rate R`` sends R frames/s per topic instead, each topic at a random phase.

Streaming starts on a ``GO`` line on stdin (so every client is subscribed first); ``STOP``
prints ``RESULT {"sent": ..}`` and exits. Prints ``LISTENING <port>`` when ready.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from books import BookStream, load_cycle  # noqa: E402
from common import SYMBOLS  # noqa: E402
from tests.peers.bybit_peer import BybitPeer, PeerConnection, dumps, load_fixture  # noqa: E402


class LatencyPeer(BybitPeer):
    """``BybitPeer`` whose streams are synthetic per symbol, stamped, and gated by ``go``."""

    def __init__(self, symbols: list[str], rate: float, port: int = 0,
                 book_stamp: bool = True) -> None:
        super().__init__(interval_s=0.0, port=port,
                         instruments={"linear": symbols, "spot": []})
        self.rate = rate
        self.go = asyncio.Event()
        self.sent = 0
        self.first_send_ns = 0
        self.last_send_ns = 0
        recorded = [f for f in load_fixture("linear") if f["topic"] == "tickers.BTCUSDT"]
        self.templates: dict[str, list[dict[str, Any]]] = {}
        for sym in symbols:
            frames = []
            for frame in recorded:
                frames.append({**frame, "topic": f"tickers.{sym}",
                               "data": {**frame["data"], "symbol": sym}})
            self.templates[f"tickers.{sym}"] = frames
        self.cycle = load_cycle()
        self.book_stamp = book_stamp
        self.book_streams: dict[str, BookStream] = {}

    def book(self, topic: str = "", category: str = "linear",
             ) -> BookStream:  # type: ignore[override]
        """The stream of an ``orderbook`` topic (``BybitPeer._subscribe`` asks for it)."""
        stream = self.book_streams.get(topic)
        if stream is None:
            stream = BookStream(topic, topic.rsplit(".", 1)[1], self.cycle, self,
                                self.book_stamp)
            self.book_streams[topic] = stream
        return stream

    def count(self, sent_ns: int) -> None:
        self.sent += 1
        self.first_send_ns = self.first_send_ns or sent_ns
        self.last_send_ns = sent_ns

    def _frames_for(self, category: str, topic: str) -> list[dict[str, Any]]:
        return self.templates.get(topic, []) if category == "linear" else []

    async def _stream(self, conn: PeerConnection, topic: str, start: int = 0) -> None:
        frames = self._frames_for(conn.category, topic)
        if not frames:
            return
        await self.go.wait()
        loop = asyncio.get_running_loop()
        period = 1.0 / self.rate if self.rate > 0 else 0.0
        # Paced topics start at random phases, so their frames do not all leave at once.
        due = loop.time() + random.uniform(0.0, period)  # noqa: S311
        i = 0
        while True:
            if period:
                due += period
                await asyncio.sleep(max(0.0, due - loop.time()))
            else:
                await asyncio.sleep(0)
            frame = frames[i % len(frames)]
            i += 1
            sent_ns = time.time_ns()
            out = {"topic": frame["topic"], "type": frame["type"],
                   "data": {**frame["data"], "nextFundingTime": str(sent_ns)},
                   "cs": frame.get("cs", 0) + i, "ts": sent_ns // 1_000_000}
            if not await self._send(conn, dumps(out)):
                return
            self.count(sent_ns)


async def main(args: argparse.Namespace) -> None:
    peer = LatencyPeer(list(SYMBOLS[: args.symbols]), args.rate, args.port,
                       book_stamp=args.book_stamp == "size")
    await peer.start()
    print(f"LISTENING {peer.port}", flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if line == "GO":
            peer.go.set()
            print("GOING", flush=True)
        elif line in ("STOP", ""):
            break
    span = (peer.last_send_ns - peer.first_send_ns) / 1e9
    print("RESULT " + json.dumps({
        "sent": peer.sent, "send_span_s": round(span, 3),
        "sent_per_s": round(peer.sent / span, 1) if span > 0 else None,
        "subscribes": sum(peer.subscribe_requests.values()),
        "connections": dict(peer.connections_total),
    }), flush=True)
    await peer.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="frames/s per topic; 0 = full speed")
    parser.add_argument("--book-stamp", choices=("size", "none"), default="size",
                        help="also stamp book deltas in ns in one level's size (books.py)")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(parser.parse_args()))
