"""Order books and liquidations from the demo market over a real socket, as ``make run``
serves them: a ``book:50:BTCUSDT`` subscriber gets a snapshot, then deltas that rebuild a
book which is never crossed and equals, level for level, the top of the deeper
``book:200:BTCUSDT`` another client rebuilds at the same ``venueSeq``; liquidation and trade
frames are events (type ``update``, never ``snapshot``)."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from tests.integration.hubkit import ServedHub, serve, stop_all
from tests.integration.server.conftest import TIMEOUT, Hub, next_data, subscribe
from websockets.asyncio.client import ClientConnection, connect

from cryptowire.app.node import Node
from cryptowire.books import Level, OrderBook
from cryptowire.settings import load_settings

pytestmark = pytest.mark.integration

PLAIN = re.compile(r"^\d+(\.\d+)?$")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def default_hub(tmp_path: Path) -> AsyncIterator[ServedHub]:
    """``cryptowire serve`` on the embedded defaults (demo ``auto``, ticks and book steps at
    their default pace), except the store in ``tmp_path`` and Bybit at a closed loopback port
    (what an offline machine sees), so the demo market serves."""
    config = tmp_path / "cryptowire.toml"
    config.touch()
    port = closed_port()
    settings = load_settings(
        config, store={"url": f"sqlite+aiosqlite:///{tmp_path / 'cryptowire.db'}"},
        bybit={"rest_url": f"http://127.0.0.1:{port}",
               "linear_url": f"ws://127.0.0.1:{port}/v5/public/linear",
               "spot_url": f"ws://127.0.0.1:{port}/v5/public/spot"})
    assert settings.demo.mode == "auto" and settings.demo.book_interval_s == 0.1
    http = ClientSession()
    node = Node(settings)
    runner, bound = await serve(node)
    hub = ServedHub(node=node, runner=runner, port=bound, http=http)
    try:
        yield hub
    finally:
        await stop_all([hub], http)


class Rebuilt:
    """A client's book from one ``book:`` channel's frames, checked frame by frame."""

    def __init__(self, depth: int) -> None:
        self.book = OrderBook(depth)
        self.seq: int | None = None
        self.offset: int | None = None
        self.by_seq: dict[int, tuple[list[Level], list[Level]]] = {}
        self.deltas = 0

    def apply(self, frame: dict[str, Any]) -> None:
        data = frame["data"]
        if self.offset is not None:
            assert frame["offset"] == self.offset + 1, frame  # contiguous: nothing lost
        self.offset = frame["offset"]
        for side in ("bids", "asks"):
            for price, size in data[side]:
                assert PLAIN.fullmatch(price) and PLAIN.fullmatch(size), (price, size)
                assert Decimal(price) % Decimal("0.01") == 0, price
        if frame["type"] == "snapshot":
            self.book.snapshot(data["bids"], data["asks"])
        else:
            assert frame["type"] == "delta", frame
            assert self.seq is not None, "a delta before any snapshot"
            assert data["venueSeq"] == self.seq + 1
            self.book.apply(data["bids"], data["asks"])
            self.deltas += 1
        self.seq = data.get("venueSeq")
        assert not self.book.crossed()
        bids, asks = self.book.levels("bids"), self.book.levels("asks")
        assert len(bids) == len(asks) == self.book.depth
        if self.seq is not None:
            self.by_seq[self.seq] = (bids, asks)


async def read_book(ws: ClientConnection, channel: str, book: Rebuilt, deltas: int) -> None:
    first = await next_data(ws, channel)
    assert first["type"] == "snapshot" and first["source"] == "demo", first
    book.apply(first)
    while book.deltas < deltas:
        book.apply(await next_data(ws, channel))


async def test_make_run_serves_book_snapshot_then_deltas(default_hub: ServedHub) -> None:
    url = f"ws://127.0.0.1:{default_hub.port}/ws"
    async with connect(url, open_timeout=TIMEOUT, proxy=None) as ws50, \
            connect(url, open_timeout=TIMEOUT, proxy=None, max_size=2**24) as ws200:
        reply = await subscribe(ws50, "orderbook.50.BTCUSDT")  # the Bybit alias works too
        assert reply["args"] == ["book:50:BTCUSDT"], reply
        assert (await subscribe(ws200, "book:200:BTCUSDT"))["args"] == ["book:200:BTCUSDT"]
        top, deep = Rebuilt(50), Rebuilt(200)
        async with asyncio.timeout(TIMEOUT * 2):
            await asyncio.gather(read_book(ws50, "book:50:BTCUSDT", top, 15),
                                 read_book(ws200, "book:200:BTCUSDT", deep, 15))
    both = sorted(top.by_seq.keys() & deep.by_seq.keys())
    assert len(both) >= 10, both  # one walk: the two depths are cuts of the same book
    for seq in both:
        bids, asks = deep.by_seq[seq]
        assert top.by_seq[seq] == (bids[:50], asks[:50]), seq


async def test_demo_liquidations_and_trades_are_update_events(hub: Hub) -> None:
    ws = await hub.connect()
    await subscribe(ws, "liquidation:BTCUSDT", "trade:BTCUSDT")
    seen: dict[str, int] = {}
    async with asyncio.timeout(TIMEOUT):
        while seen.get("liquidation:BTCUSDT", 0) < 3 or seen.get("trade:BTCUSDT", 0) < 3:
            frame = await next_data(ws)
            channel = frame["channel"]
            assert frame["type"] == "update", frame  # never a snapshot (PROTOCOLS.md 4.2)
            seen[channel] = seen.get(channel, 0) + 1
            if channel == "liquidation:BTCUSDT":
                data = frame["data"]
                assert set(data) == {"symbol", "side", "price", "size", "time"}
                assert data["symbol"] == "BTCUSDT" and data["side"] in ("Buy", "Sell")
                assert PLAIN.fullmatch(data["price"]) and PLAIN.fullmatch(data["size"])
