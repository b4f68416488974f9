"""Socket rotation seen by a real /ws client of a served hub (the source side is in
test_exchange_rotation.py): per channel, offsets contiguous, no gap, each venue frame once, the
book equal to the venue's after every frame, across two rotations."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession
from tests.integration.bybit_hub.support import BybitHub, bybit_hub_settings, subscribe
from tests.integration.hubkit import serve, stop_all
from tests.integration.sources.test_exchange_rotation import (
    BOOK,
    ROTATING,
    TICKER,
    WAIT_S,
    declare,
    pump,
    rotations,
)
from tests.integration.sources.test_exchange_supervisor import Options
from tests.peers.fake_venue import FakeVenuePeer
from tests.waiting import eventually

from cryptowire.app.node import Node
from cryptowire.books import OrderBook
from cryptowire.sources.exchange.source import ExchangeSource

pytestmark = pytest.mark.integration


async def test_a_hub_client_sees_contiguous_offsets_across_rotations(tmp_path: Path) -> None:
    """The same through a served hub and a real /ws client: per channel, offsets contiguous,
    no gap, each venue frame once, the book equal to the venue's after every frame."""
    async with FakeVenuePeer() as peer:
        source = ExchangeSource(declare(peer, ROTATING), Options(), backoff_max_s=0.5)
        node = Node(bybit_hub_settings(tmp_path, None), sources=[source])
        runner, port = await serve(node)
        http = ClientSession()
        hub = BybitHub(node=node, runner=runner, port=port, http=http)
        try:
            ws = await hub.connect()
            await subscribe(ws, TICKER, BOOK)
            frames: dict[str, list[dict[str, Any]]] = {TICKER: [], BOOK: []}

            async def read() -> None:
                async for raw in ws:
                    msg = orjson.loads(raw)
                    if msg.get("channel") in frames:
                        frames[msg["channel"]].append(msg)

            reader = asyncio.create_task(read())
            client, step = HubClient(peer), 0
            while rotations(source) < 2 or step < 20:
                step += 1
                await pump(peer, step)
                client.check(frames[BOOK])
                assert step < 5000, "no second rotation"
                await asyncio.sleep(0.005)  # the venue's pace
            await eventually(lambda: bool(frames[BOOK]) and frames[BOOK][-1]["data"]["venueSeq"]
                             == peer.numbers["k.btc-usdt"] and frames[TICKER][-1]["data"]["n"]
                             == peer.numbers["t.btc-usdt"], WAIT_S, "the last frames")
            reader.cancel()
            client.check(frames[BOOK])
            for channel, got in frames.items():
                offsets = [f["offset"] for f in got]
                assert offsets == list(range(offsets[0], offsets[0] + len(got))), channel
                assert "gap" not in [f["type"] for f in got], channel
            numbers = [f["data"]["n"] for f in frames[TICKER]]
            assert numbers == list(range(numbers[0], peer.numbers["t.btc-usdt"] + 1))
        finally:
            await stop_all([hub], http)


class HubClient:
    """A /ws client's book, from the hub's frames, checked against the venue at each one."""

    def __init__(self, peer: FakeVenuePeer) -> None:
        self.peer = peer
        self.book: OrderBook | None = None
        self.seen = 0

    def check(self, got: list[dict[str, Any]]) -> None:
        for msg in got[self.seen:]:
            assert msg["type"] in ("snapshot", "delta"), msg
            if msg["type"] == "snapshot":
                self.book = OrderBook()
                self.book.snapshot(msg["data"]["bids"], msg["data"]["asks"])
            else:
                assert self.book is not None, "a delta before any snapshot"
                self.book.apply(msg["data"]["bids"], msg["data"]["asks"])
            want = self.peer.history["k.btc-usdt"][msg["data"]["venueSeq"]]
            assert (self.book.levels("bids"), self.book.levels("asks")) == want
        self.seen = len(got)
