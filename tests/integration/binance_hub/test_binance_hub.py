"""Binance through a served hub, over a real client socket, against the replay peer: every
field of tickers, trades, klines and liquidations on ``@binance`` and ``@binance-spot`` equals
what the venue sent (zero mismatches); a book rebuilt by the client equals the venue's book at
every step, through a lost event and a dropped connection (gap, then snapshot; never
wrong; the stall and the other faults: ``tests/integration/sources/test_binance_source.py``);
unknown symbols and spot liquidations rejected with a reason."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from tests.integration.bybit_hub.support import BybitHub, recv_json, subscribe
from tests.integration.sources.test_binance_source import ticker_parts_sent
from tests.peers.binance_peer import BinancePeer
from tests.unit.sources.venues.binance_support import (
    expected_kline,
    expected_liquidation,
    expected_trade,
)
from tests.waiting import eventually
from websockets.asyncio.client import ClientConnection

from cryptowire.books import OrderBook

VENUE = {"futures": "binance", "spot": "binance-spot"}


class Reader:
    """Every data frame of one client socket, read in the background."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for raw in self.ws:
            msg = orjson.loads(raw)
            if isinstance(msg, dict) and "channel" in msg:
                self.frames.append(msg)

    def of(self, channel: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["channel"] == channel]

    def types(self, channel: str) -> list[str]:
        return [f["type"] for f in self.of(channel)]

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def open_reader(hub: BybitHub, *channels: str) -> tuple[Reader, dict[str, Any]]:
    ws = await hub.connect()
    reply = await subscribe(ws, *channels)
    return Reader(ws), reply


@pytest.mark.parametrize("market", ["futures", "spot"])
async def test_fidelity_every_field_equals_what_the_venue_sent(hub: BybitHub, peer: BinancePeer,
                                                               market: str) -> None:
    venue = VENUE[market]
    names = [f"ticker:ETHUSDT@{venue}", f"trade:ETHUSDT@{venue}", f"kline:1h:ETHUSDT@{venue}"]
    if market == "futures":
        names.append("liquidation:ETHUSDT@binance")
    reader, reply = await open_reader(hub, *names)
    try:
        assert reply["success"] and reply["rejected"] is None
        await eventually(lambda: all(len(reader.of(n)) >= 3 for n in names), 10.0, "3 of each")
    finally:
        await reader.close()
    sent = {stream: list(frames) for (m, stream), frames in peer.sent.items() if m == market}
    streams = {"trade": "ethusdt@aggTrade" if market == "futures" else "ethusdt@trade",
               "kline": "ethusdt@kline_1h", "liquidation": "ethusdt@forceOrder"}
    makers = {"trade": lambda d: [expected_trade(d)], "kline": expected_kline,
              "liquidation": expected_liquidation}
    mismatches, checked = [], 0
    for name in names[1:]:
        kind = name.partition(":")[0]
        by_time = {f["E"]: f for f in sent[streams[kind]]}  # one frame per event time
        for frame in reader.of(name):
            checked += 1
            source = by_time.get(frame["ts"])
            if (source is None or frame["data"] != makers[kind](source)
                    or frame["source"] != "binance"):
                mismatches.append((name, frame, source))
    parts = {"24hrTicker": sent.get("ethusdt@ticker", []),
             "bookTicker": sent.get("ethusdt@bookTicker", [])}
    if market == "futures":
        parts["markPriceUpdate"] = sent.get("ethusdt@markPrice@1s", [])
    for frame in reader.of(names[0]):
        checked += 1
        if not ticker_parts_sent(frame["data"], parts):
            mismatches.append((names[0], frame, None))
    assert mismatches == [] and checked >= 10
    assert reader.types(names[0])[0] == "snapshot" and reader.types(names[1])[0] == "update"


def check_book(peer: BinancePeer, frames: list[dict[str, Any]], market: str, depth: int) -> int:
    """Apply the client's frames in order; after each, the book equals the venue's."""
    book: OrderBook | None = None
    checked = 0
    for frame in frames:
        if frame["type"] == "gap":
            book = None
            continue
        data = frame["data"]
        if frame["type"] == "snapshot":
            book = OrderBook()
            book.snapshot(data["bids"], data["asks"])
        else:
            assert book is not None, "a delta while in a gap"
            book.apply(data["bids"], data["asks"])
        if "venueSeq" not in data:
            continue
        bids, asks = peer.book(market).history[data["venueSeq"]]
        assert (book.levels("bids"), book.levels("asks")) == (bids[:depth], asks[:depth]), \
            f"the client's book differs from the venue's at u={data['venueSeq']}"
        checked += 1
    return checked


@pytest.mark.parametrize("market", ["futures", "spot"])
async def test_client_books_equal_the_venues_through_faults(hub: BybitHub, peer: BinancePeer,
                                                            market: str) -> None:
    venue = VENUE[market]
    shallow, deep = f"book:5:BTCUSDT@{venue}", f"book:1000:BTCUSDT@{venue}"
    reader, reply = await open_reader(hub, shallow, deep)

    async def deltas(n: int) -> None:
        base = reader.types(deep).count("delta")
        await eventually(lambda: reader.types(deep).count("delta") >= base + n, 10.0,
                         f"{n} more deltas")

    try:
        assert reply["rejected"] is None
        await deltas(20)
        peer.inject("gap", market)  # a lost event: the sequence check breaks the sync
        await eventually(lambda: reader.types(deep).count("snapshot") >= 2, 10.0, "resync")
        await deltas(10)
        peer.drop()  # a lost connection: the supervisor's gap, then a new sync
        await eventually(lambda: reader.types(deep).count("snapshot") >= 3, 10.0, "reconnect")
        await deltas(10)
    finally:
        await reader.close()
    assert reader.types(deep).count("gap") >= 2
    assert check_book(peer, reader.of(deep), market, 1000) > 40
    assert check_book(peer, reader.of(shallow), market, 5) > 5


async def test_unknown_symbols_and_spot_liquidations_are_rejected_with_a_reason(
        hub: BybitHub) -> None:
    ws = await hub.connect()
    reply = await subscribe(ws, "ticker:NOPEUSDT@binance", "liquidation:BTCUSDT@binance-spot",
                            "trade:BTCUSDT@binance")
    rejected = {r["arg"]: r["reason"] for r in reply["rejected"]}
    assert "Unknown symbol 'NOPEUSDT' on Binance" in rejected["ticker:NOPEUSDT@binance"]
    assert "No liquidations on Binance spot" in rejected["liquidation:BTCUSDT@binance-spot"]
    assert reply["args"] == ["trade:BTCUSDT@binance"]
    msg = await recv_json(ws, 10.0)
    while "channel" not in msg:
        msg = await recv_json(ws, 10.0)
    assert msg["channel"] == "trade:BTCUSDT@binance" and msg["source"] == "binance"
