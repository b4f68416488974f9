"""The Binance replay peer over real sockets, driven by the sans-I/O feed: acks, server pings,
the REST snapshot sync, and a client-side book equal to the peer's book at every step,
through a lost event, a wrong ``pu``/``U``, a stale snapshot and a dropped connection
(a ``gap``, then a snapshot; never a wrong book)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from tests.integration.sources.binance_driver import Driver
from tests.peers.binance_peer import BinancePeer
from tests.waiting import eventually

from cryptowire.books import OrderBook
from cryptowire.core.channels import ChannelGrammar
from cryptowire.sources.venues.binance import markets

GRAMMAR = ChannelGrammar()
VENUE = {"futures": "binance", "spot": "binance-spot"}


@pytest.fixture
async def peer() -> AsyncIterator[BinancePeer]:
    async with BinancePeer(interval_s=0.01, ping_s=0.2) as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def market_of(peer: BinancePeer, name: str) -> markets.BinanceMarket:
    if name == "futures":
        return markets.futures(peer.ws_base, peer.base_url)
    return markets.spot(peer.spot_url, peer.base_url)


def replay(driver: Driver, channel: str) -> list[tuple[int, Any]]:
    """Apply the channel's publications in order; ``(venueSeq, levels)`` after each one
    (``None`` levels while in a gap)."""
    book: OrderBook | None = None
    states: list[tuple[int, Any]] = []
    for event in [e for e in driver.events if e.channel == channel]:
        if event.type == "gap":
            book = None
            states.append((-1, None))
            continue
        if event.type == "snapshot":
            book = OrderBook()
            book.snapshot(event.data["bids"], event.data["asks"])
        else:
            assert book is not None, "a delta while in a gap"
            book.apply(event.data["bids"], event.data["asks"])
        states.append((event.data["venueSeq"], (book.levels("bids"), book.levels("asks"))))
    return states


def check_every_step(peer: BinancePeer, driver: Driver, market: str, depth: int) -> int:
    feed = peer.book(market)
    checked = 0
    for seq, levels in replay(driver, f"book:{depth}:BTCUSDT@{VENUE[market]}"):
        if levels is None:
            continue
        bids, asks = feed.history[seq]
        assert levels == (bids[:depth], asks[:depth]), f"book differs at u={seq}"
        checked += 1
    return checked


async def books_running(peer: BinancePeer, market: str, session: aiohttp.ClientSession,
                        depths: tuple[int, ...] = (5, 1000)) -> Driver:
    driver = Driver(market_of(peer, market), session)
    await driver.start()
    for depth in depths:
        await driver.add(GRAMMAR.parse(f"book:{depth}:BTCUSDT@{VENUE[market]}"))
    deepest = f"book:{depths[-1]}:BTCUSDT@{VENUE[market]}"
    await eventually(lambda: len([e for e in driver.events if e.type == "delta"
                                  and e.channel == deepest]) > 20, what="deltas")
    return driver


@pytest.mark.parametrize("market", ["futures", "spot"])
async def test_books_equal_the_peers_at_every_step(peer: BinancePeer,
                                                   session: aiohttp.ClientSession,
                                                   market: str) -> None:
    driver = await books_running(peer, market, session)
    try:
        assert driver.replies and all(r.error is None for r in driver.replies)
        assert peer.depth_requests[(market, "BTCUSDT")] == 1
        assert check_every_step(peer, driver, market, 5) > 5
        assert check_every_step(peer, driver, market, 1000) > 20
    finally:
        await driver.stop()


@pytest.mark.parametrize("fault", ["gap", "pu", "stale"])
@pytest.mark.parametrize("market", ["futures", "spot"])
async def test_sequence_faults_give_a_gap_then_a_right_book(
        peer: BinancePeer, session: aiohttp.ClientSession, market: str, fault: str) -> None:
    driver = await books_running(peer, market, session)
    try:
        requests = peer.depth_requests[(market, "BTCUSDT")]
        if fault == "stale":
            peer.inject("stale", market)
            peer.inject("gap", market)  # the re-sync then meets the stale snapshot first
        else:
            peer.inject(fault, market)
        channel = f"book:5:BTCUSDT@{VENUE[market]}"
        await eventually(lambda: [e.type for e in driver.events if e.channel == channel
                                  ].count("snapshot") == 2, what="the re-sync snapshot")
        expected = requests + (2 if fault == "stale" else 1)
        assert peer.depth_requests[(market, "BTCUSDT")] == expected
        types = [e.type for e in driver.events if e.channel == channel]
        assert types.count("gap") == 1
        assert check_every_step(peer, driver, market, 5) > 5
        assert check_every_step(peer, driver, market, 1000) > 5
    finally:
        await driver.stop()


async def test_a_dropped_connection_gaps_and_resyncs(peer: BinancePeer,
                                                     session: aiohttp.ClientSession) -> None:
    driver = await books_running(peer, "futures", session)
    try:
        peer.drop()
        await eventually(lambda: any(e.type == "gap" for e in driver.events), what="gap")
        await driver.reconnect()
        channel = "book:1000:BTCUSDT@binance"
        await eventually(lambda: [e.type for e in driver.events if e.channel == channel
                                  ].count("snapshot") == 2, what="snapshot after reconnect")
        assert "upstream connection lost" in next(
            e.data["reason"] for e in driver.events if e.type == "gap")
        assert check_every_step(peer, driver, "futures", 1000) > 20
    finally:
        await driver.stop()


async def test_server_pings_are_answered_and_a_silent_client_is_closed(
        peer: BinancePeer, session: aiohttp.ClientSession) -> None:
    answering = Driver(market_of(peer, "spot"), session)
    silent = Driver(market_of(peer, "spot"), session)
    await answering.start()
    await silent.start(autoping=False)
    try:
        await eventually(lambda: silent.sockets["public"].closed, what="silent client closed")
        assert not answering.sockets["public"].closed  # the same pings, answered
        await answering.add(GRAMMAR.parse("trade:BTCUSDT@binance-spot"))
        await eventually(lambda: len(answering.events) >= 2, what="trades")
    finally:
        await answering.stop()
        await silent.stop()


async def test_unlisted_symbols_are_accepted_silently_and_listed_ones_stream(
        peer: BinancePeer, session: aiohttp.ClientSession) -> None:
    driver = Driver(market_of(peer, "futures"), session)
    await driver.start()
    try:
        await driver.add(GRAMMAR.parse("trade:NOPEUSDT@binance"))
        await driver.add(GRAMMAR.parse("kline:1h:ETHUSDT@binance"))
        await driver.add(GRAMMAR.parse("liquidation:ETHUSDT@binance"))
        await eventually(lambda: len(driver.replies) == 3, what="acks")
        assert all(r.error is None for r in driver.replies)  # Binance acks any stream name
        await eventually(lambda: any(e.channel.startswith("liquidation:") for e in driver.events),
                         what="a liquidation")
        kinds = {e.channel for e in driver.events}
        assert "trade:NOPEUSDT@binance" not in kinds
        kline = next(e for e in driver.events if e.channel == "kline:1h:ETHUSDT@binance")
        assert kline.data["interval"] == "1h" and kline.data["symbol"] == "ETHUSDT"
        assert kline.data["closeTime"] - kline.data["openTime"] == 3_600_000 - 1
        async with session.get(f"{peer.base_url}/fapi/v1/exchangeInfo") as response:
            info: dict[str, Any] = await response.json()
        assert "NOPEUSDT" not in markets_symbols(info)
    finally:
        await driver.stop()


def markets_symbols(info: dict[str, Any]) -> set[str]:
    from cryptowire.sources.venues.binance.payloads import parse_instruments
    return set(parse_instruments(info, "futures"))
