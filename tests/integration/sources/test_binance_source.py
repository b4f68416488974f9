"""The Binance source against the replay peer over real sockets: the REST snapshot sync and a
client-side book equal to the venue's at every step (every depth), through a lost event, a
wrong ``pu``/``U``, a stale snapshot, a dropped connection and a stall (one gap, then a
snapshot; never a wrong book); server pings answered; the keep-alive; unknown symbols
refused with a reason; every field of tickers, trades, klines and liquidations equal to
the frames the venue sent."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from tests.integration.sources.binance_support import (
    GRAMMAR,
    VENUE,
    check_every_step,
    running,
)
from tests.peers.binance_peer import BinancePeer
from tests.unit.sources.venues.binance_support import (
    expected_kline,
    expected_liquidation,
    expected_ticker,
    expected_trade,
)
from tests.waiting import eventually

from cryptowire.errors import SourceError


@pytest.fixture
async def peer() -> AsyncIterator[BinancePeer]:
    async with BinancePeer(interval_s=0.01, ping_s=0.2) as server:
        yield server


async def wait_deltas(collected: object, channel: str, n: int = 20) -> None:
    await eventually(lambda: collected.types(channel).count("delta") > n,  # type: ignore[attr-defined]
                     what=f"{n} deltas on {channel}")


@pytest.mark.parametrize("market", ["futures", "spot"])
async def test_books_equal_the_venues_at_every_step(peer: BinancePeer, market: str) -> None:
    async with running(peer) as (source, got):
        for depth in (5, 1000):
            await source.subscribe(GRAMMAR.parse(f"book:{depth}:BTCUSDT@{VENUE[market]}"))
        deep = f"book:1000:BTCUSDT@{VENUE[market]}"
        await wait_deltas(got, deep)
        assert peer.depth_requests[(market, "BTCUSDT")] == 1
        assert check_every_step(peer, got.of(deep), market, 1000) > 20
        assert check_every_step(peer, got.of(f"book:5:BTCUSDT@{VENUE[market]}"), market, 5) > 3
        assert all(e.source == "binance" for e in got.events)
        # a depth added while the book flows gets its cut at once, then its deltas
        await source.subscribe(GRAMMAR.parse(f"book:20:BTCUSDT@{VENUE[market]}"))
        mid = f"book:20:BTCUSDT@{VENUE[market]}"
        assert got.types(mid)[:1] == ["snapshot"]
        await wait_deltas(got, mid, 5)
        assert check_every_step(peer, got.of(mid), market, 20) > 5


@pytest.mark.parametrize("fault", ["gap", "pu", "stale"])
@pytest.mark.parametrize("market", ["futures", "spot"])
async def test_sequence_faults_give_one_gap_then_a_right_book(peer: BinancePeer, market: str,
                                                              fault: str) -> None:
    async with running(peer) as (source, got):
        channel = f"book:50:BTCUSDT@{VENUE[market]}"
        await source.subscribe(GRAMMAR.parse(channel))
        await wait_deltas(got, channel)
        if fault == "stale":
            peer.inject("stale", market)
            peer.inject("gap", market)  # the re-sync then meets the stale snapshot first
        else:
            peer.inject(fault, market)
        await eventually(lambda: got.types(channel).count("snapshot") == 2,
                         what="the snapshot after the re-sync")
        assert got.types(channel).count("gap") == 1
        assert peer.depth_requests[(market, "BTCUSDT")] == (3 if fault == "stale" else 2)
        await wait_deltas(got, channel, 40)
        assert check_every_step(peer, got.of(channel), market, 50) > 40
        resyncs = source.book_resyncs[VENUE[market]]
        assert resyncs["sequence"] == (2 if fault == "stale" else 1)


async def test_a_dropped_connection_gaps_and_resyncs(peer: BinancePeer) -> None:
    async with running(peer) as (source, got):
        channel = "book:1000:BTCUSDT@binance"
        await source.subscribe(GRAMMAR.parse(channel))
        await source.subscribe(GRAMMAR.parse("trade:BTCUSDT@binance"))
        await wait_deltas(got, channel)
        peer.drop()
        await eventually(lambda: got.types(channel).count("snapshot") == 2,
                         what="the snapshot after the reconnect")
        gap = next(e for e in got.of(channel) if e.type == "gap")
        assert "upstream reconnected" in gap.data["reason"]
        await eventually(lambda: "gap" in got.types("trade:BTCUSDT@binance"),
                         what="the gap on the market socket's channels too")
        await wait_deltas(got, channel, 40)
        assert check_every_step(peer, got.of(channel), "futures", 1000) > 40


async def test_a_stall_is_detected_by_the_keepalive_watchdog(peer: BinancePeer) -> None:
    async with running(peer, ping_interval_s=0.1, watchdog_s=0.4) as (source, got):
        channel = "book:50:BTCUSDT@binance-spot"
        await source.subscribe(GRAMMAR.parse(channel))
        await wait_deltas(got, channel, 5)
        connections = peer.connections_total["spot"]
        await eventually(lambda: peer.connections_total["spot"] == connections,
                         timeout=1.0, what="a quiet socket kept (pongs)")
        peer.stall()
        await eventually(lambda: "gap" in got.types(channel), what="gap after the stall")
        peer.stall(False)
        await eventually(lambda: got.types(channel).count("snapshot") == 2,
                         what="snapshot after the stall")
        assert peer.connections_total["spot"] > connections
        await wait_deltas(got, channel, 10)
        assert check_every_step(peer, got.of(channel), "spot", 50) > 10


async def test_server_pings_are_answered(peer: BinancePeer) -> None:
    """The peer pings every 0.2 s and closes a socket that does not answer within 0.1 s (a
    client that does not answer is closed); the source's socket lives on through many."""
    async with aiohttp.ClientSession() as http:
        silent = await http.ws_connect(peer.spot_url, autoping=False)
        await eventually(lambda: silent.closed or silent.close_code is not None
                         or not peer.connections, what="the silent client closed")
        await silent.close()
    assert peer.connections_total["spot"] == 1
    async with running(peer) as (source, got):
        await source.subscribe(GRAMMAR.parse("trade:BTCUSDT@binance-spot"))
        await eventually(lambda: len(got.events) > 100, what="100 trades")  # > 1 s of pings
        assert peer.connections_total["spot"] == 2 and len(peer.connections) == 1


async def test_unknown_and_unserved_symbols_are_refused_with_a_reason(peer: BinancePeer) -> None:
    async with running(peer) as (source, _):
        with pytest.raises(SourceError, match="Unknown symbol 'NOPEUSDT' on Binance"):
            await source.subscribe(GRAMMAR.parse("ticker:NOPEUSDT@binance"))
        with pytest.raises(SourceError, match="No liquidations on Binance spot"):
            await source.subscribe(GRAMMAR.parse("liquidation:BTCUSDT@binance-spot"))
        assert peer.subscribe_requests == {}  # nothing went upstream


@pytest.mark.parametrize("market", ["futures", "spot"])
async def test_fidelity_every_field_equals_what_the_venue_sent(peer: BinancePeer,
                                                               market: str) -> None:
    venue = VENUE[market]
    names = [f"ticker:ETHUSDT@{venue}", f"trade:ETHUSDT@{venue}", f"kline:1h:ETHUSDT@{venue}"]
    if market == "futures":
        names.append("liquidation:ETHUSDT@binance")
    async with running(peer) as (source, got):
        for name in names:
            await source.subscribe(GRAMMAR.parse(name))
        await eventually(lambda: all(len(got.of(n)) >= 3 for n in names), what="3 of each")
    sent = {stream: list(frames) for (m, stream), frames in peer.sent.items() if m == market}
    mismatches, checked = [], 0
    for name in names[1:]:
        stream = {"trade": "ethusdt@aggTrade" if market == "futures" else "ethusdt@trade",
                  "kline": "ethusdt@kline_1h", "liquidation": "ethusdt@forceOrder"
                  }[name.partition(":")[0]]
        make = {"trade": lambda d: [expected_trade(d)], "kline": expected_kline,
                "liquidation": expected_liquidation}[name.partition(":")[0]]
        by_time = {f["E"]: f for f in sent[stream]}  # one frame per event time
        for event in got.of(name):
            checked += 1
            frame = by_time.get(event.ts_source)  # type: ignore[arg-type]
            if frame is None or event.data != make(frame):
                mismatches.append((name, event.data, frame))
    parts = {"24hrTicker": sent.get("ethusdt@ticker", []),
             "bookTicker": sent.get("ethusdt@bookTicker", [])}
    if market == "futures":
        parts["markPriceUpdate"] = sent.get("ethusdt@markPrice@1s", [])
    for event in got.of(names[0]):  # each part of a ticker equals one frame of it sent
        checked += 1
        if not ticker_parts_sent(event.data, parts):
            mismatches.append((names[0], event.data, None))
    assert mismatches == [] and checked >= 10


def ticker_parts_sent(ticker: dict[str, object], parts: dict[str, list[dict[str, object]]]
                      ) -> bool:
    """Each part of ``ticker`` is the mapping of a frame the venue sent, and nothing else is
    in it."""
    covered = {"symbol"}
    for kind, frames in parts.items():
        fields = {key for frame in frames[:1] for key in part_of(kind, frame)}
        covered |= fields
        if not any({k: ticker.get(k) for k in fields} == part_of(kind, f) for f in frames):
            return False
    return set(ticker) == covered


def part_of(kind: str, frame: dict[str, object]) -> dict[str, object]:
    """One part of the expected ticker (the independent mapping of the unit tests)."""
    full = expected_ticker("ETHUSDT", {
        "24hrTicker": frame if kind == "24hrTicker" else DUMMY["24hrTicker"],
        "bookTicker": frame if kind == "bookTicker" else DUMMY["bookTicker"],
        **({"markPriceUpdate": frame} if kind == "markPriceUpdate" else {})})
    keys = {"24hrTicker": ("price", "high24h", "low24h", "prevPrice24h", "volume24h",
                           "turnover24h", "change24hPercent"),
            "bookTicker": ("bid", "ask"),
            "markPriceUpdate": ("markPrice", "indexPrice", "fundingRate", "nextFundingTime")}
    return {k: full[k] for k in keys[kind]}


DUMMY: dict[str, dict[str, object]] = {
    "24hrTicker": {k: "" for k in "chlovqP"}, "bookTicker": {k: "" for k in "bBaA"}}
