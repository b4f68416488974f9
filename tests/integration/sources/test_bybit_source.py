"""BybitSource against the Bybit V5 replay peer, over real sockets (TESTING.md)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from tests.integration.bybit_hub.support import ticker_of
from tests.peers.bybit_peer import BybitPeer, load_fixture
from tests.waiting import eventually

from cryptowire.core.channels import KLINE_INTERVALS, Channel, ChannelGrammar
from cryptowire.core.source import Source
from cryptowire.errors import ConfigError, SourceError
from cryptowire.events import Event
from cryptowire.sources.bybit import BybitSource

pytestmark = pytest.mark.integration

GRAMMAR = ChannelGrammar()
WAIT_S = 5.0  # the reconnect contract; every wait below is bounded by it


def ch(arg: str) -> Channel:
    return GRAMMAR.parse(arg)


class Events:
    """The publish callback: keeps every event, lets a test wait for a condition."""

    def __init__(self) -> None:
        self.items: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.items.append(event)

    def on(self, channel: str) -> list[Event]:
        return [e for e in self.items if e.channel == channel]

    async def wait(self, predicate: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
        await eventually(predicate, timeout, what)

    async def wait_count(self, channel: str, count: int, timeout: float = WAIT_S) -> None:
        await self.wait(
            lambda: len(self.on(channel)) >= count, f"{count} events on {channel}", timeout
        )


@pytest.fixture
async def peer() -> AsyncIterator[BybitPeer]:
    # page_size=2 makes the instruments list come in several pages (nextPageCursor).
    async with BybitPeer(interval_s=0.005, page_size=2) as server:
        yield server


@asynccontextmanager
async def running(peer: BybitPeer, **kwargs: Any) -> AsyncIterator[tuple[BybitSource, Events]]:
    source = BybitSource(peer.settings(), **kwargs)
    events = Events()
    await source.start(events)
    try:
        yield source, events
    finally:
        await source.stop()


# -- an independent reading of the fixtures, to check the source against ---------------------

def expected_tickers(category: str, topic: str) -> list[tuple[int, dict[str, Any]]]:
    """(ts, full state) after each recorded frame of ``topic``: snapshot replaces, delta
    overlays; fields never sent are None."""
    out = []
    state: dict[str, Any] = {}
    for frame in load_fixture(category):
        if frame["topic"] != topic:
            continue
        state = dict(frame["data"]) if frame["type"] == "snapshot" else {**state, **frame["data"]}
        out.append((frame["ts"], ticker_of(state)))
    return out


def data_of(events: list[Event]) -> list[Event]:
    return [e for e in events if e.type != "gap"]


# -- tests -----------------------------------------------------------------------------------


def test_is_a_source(peer: BybitPeer) -> None:
    source = BybitSource(peer.settings())
    assert isinstance(source, Source)
    assert source.name == "bybit"
    assert source.kinds == frozenset({"ticker", "trade", "kline", "book", "liquidation"})


@pytest.mark.parametrize(
    ("channel", "category", "topic"),
    [
        ("ticker:BTCUSDT", "linear", "tickers.BTCUSDT"),
        ("ticker:ETHUSDT", "linear", "tickers.ETHUSDT"),
        ("ticker:BTCUSDT@spot", "spot", "tickers.BTCUSDT"),
        ("ticker:ETHUSDT@spot", "spot", "tickers.ETHUSDT"),
    ],
)
async def test_ticker_events_equal_the_merged_fixture(
    peer: BybitPeer, channel: str, category: str, topic: str
) -> None:
    expected = expected_tickers(category, topic)
    rounds = 2  # the peer loops: check the whole fixture twice
    async with running(peer) as (source, events):
        await source.subscribe(ch(channel))
        await events.wait_count(channel, rounds * len(expected))
    got = events.on(channel)[: rounds * len(expected)]
    mismatches = []
    for i, event in enumerate(got):
        ts, data = expected[i % len(expected)]
        if event.data != data:
            mismatches.append((i, event.data, data))
        if i < len(expected) and event.ts_source != ts:
            mismatches.append((i, event.ts_source, ts))
    assert mismatches == []
    assert all(e.source == "bybit" and e.channel == channel for e in got)
    assert got[0].type == "snapshot"
    assert [e.ts_source for e in got] == sorted(e.ts_source or 0 for e in got)
    if category == "spot":
        assert got[0].data["markPrice"] is None
        assert got[0].data["bid"] == {"price": None, "size": None}
        assert {e.type for e in got[1:]} == {"update"}
    else:
        assert got[1].type == "update"


async def test_klines_and_trades_equal_the_fixture(peer: BybitPeer) -> None:
    recorded = load_fixture("linear")
    klines = [f for f in recorded if f["topic"] == "kline.5.BTCUSDT"]
    trades = [f for f in recorded if f["topic"] == "publicTrade.BTCUSDT"]
    async with running(peer) as (source, events):
        await source.subscribe(ch("kline:5m:BTCUSDT"))
        await source.subscribe(ch("trade:BTCUSDT"))
        await source.subscribe(ch("kline:1h:ETHUSDT"))
        await events.wait_count("kline:5m:BTCUSDT", len(klines))
        await events.wait_count("trade:BTCUSDT", len(trades))
        await events.wait_count("kline:1h:ETHUSDT", 1)
    for event, frame in zip(events.on("kline:5m:BTCUSDT"), klines, strict=False):
        [candle] = frame["data"]
        assert event.data == {
            "symbol": "BTCUSDT", "interval": "5m", "openTime": candle["start"],
            "closeTime": candle["end"], "open": candle["open"], "high": candle["high"],
            "low": candle["low"], "close": candle["close"], "volume": candle["volume"],
            "turnover": candle["turnover"], "confirmed": candle["confirm"],
        }  # fmt: skip
        assert event.ts_source == frame["ts"]
    for event, frame in zip(events.on("trade:BTCUSDT"), trades, strict=False):
        assert event.data == [
            {"id": t["i"], "symbol": t["s"], "price": t["p"], "quantity": t["v"],
             "side": t["S"].lower(), "time": t["T"], "isBlockTrade": t["BT"]}
            for t in frame["data"]
        ]  # fmt: skip
    assert {e.data["interval"] for e in events.on("kline:1h:ETHUSDT")} == {"1h"}


async def test_every_kline_interval_is_delivered_as_asked(peer: BybitPeer) -> None:
    async with running(peer) as (source, events):
        for interval in KLINE_INTERVALS:
            await source.subscribe(ch(f"kline:{interval}:BTCUSDT"))
        for interval in KLINE_INTERVALS:
            await events.wait_count(f"kline:{interval}:BTCUSDT", 1)
        # 13 topics on one socket: one subscribe each, never repeated.
        assert all(
            peer.subscribe_count(f"kline.{bybit}.BTCUSDT") == 1
            for bybit in KLINE_INTERVALS.values()
        )
    for interval in KLINE_INTERVALS:
        assert {e.data["interval"] for e in events.on(f"kline:{interval}:BTCUSDT")} == {interval}


async def test_dropped_upstream_reconnects_with_gap_before_fresh_data(peer: BybitPeer) -> None:
    async with running(peer) as (source, events):
        await source.subscribe(ch("ticker:BTCUSDT"))
        await source.subscribe(ch("trade:BTCUSDT"))
        await events.wait_count("ticker:BTCUSDT", 5)
        before = len(events.items)
        started = time.monotonic()
        peer.drop()

        def gap_then_data(channel: str) -> bool:
            after = events.on(channel)
            gaps = [i for i, e in enumerate(after) if e.type == "gap"]
            return bool(gaps) and len(after) > gaps[0] + 1

        await events.wait(lambda: gap_then_data("ticker:BTCUSDT"), "gap then ticker data")
        await events.wait(lambda: gap_then_data("trade:BTCUSDT"), "gap then trade data")
        assert time.monotonic() - started < WAIT_S
        await peer.wait_until(
            lambda: peer.subscribed("linear") == [{"tickers.BTCUSDT", "publicTrade.BTCUSDT"}],
            what="topics restored upstream",
        )
        status = source.status()
        assert status.reconnects == 1
        assert status.state == "up"
        assert status.topics == 2

    ticker = events.on("ticker:BTCUSDT")
    first_gap = next(i for i, e in enumerate(ticker) if e.type == "gap")
    gap, fresh = ticker[first_gap], ticker[first_gap + 1]
    assert gap.source == "bybit"
    assert "reconnected" in gap.data["reason"]
    assert isinstance(gap.data["since"], int)
    assert ticker[first_gap - 1].ts_received - 1000 <= gap.data["since"] <= gap.ts_received
    # Bybit sends a fresh snapshot after the re-subscribe: the full state, marked snapshot.
    assert fresh.type == "snapshot"
    assert fresh.data == expected_tickers("linear", "tickers.BTCUSDT")[0][1]
    assert len([e for e in events.items[before:] if e.type == "gap"]) == 2  # one per channel


async def test_stalled_upstream_is_replaced_by_the_watchdog(peer: BybitPeer) -> None:
    async with running(peer, ping_interval_s=0.1, watchdog_s=0.5) as (source, events):
        await source.subscribe(ch("ticker:ETHUSDT"))
        await events.wait_count("ticker:ETHUSDT", 3)
        assert peer.connections_total["linear"] == 1
        peer.stall(True)
        await peer.wait_until(
            lambda: peer.connections_total["linear"] >= 2,
            WAIT_S,
            "a new connection after the stall",
        )
        peer.stall(False)
        await events.wait(
            lambda: (
                any(e.type == "gap" for e in events.on("ticker:ETHUSDT"))
                and events.on("ticker:ETHUSDT")[-1].type != "gap"
            ),
            "gap then fresh ticker data",
        )
        assert source.status().reconnects >= 1
        assert peer.pings >= 1
    ticker = events.on("ticker:ETHUSDT")
    first_gap = next(i for i, e in enumerate(ticker) if e.type == "gap")
    assert "watchdog" in ticker[first_gap].data["reason"]
    after = [e for e in ticker[first_gap:] if e.type != "gap"]
    assert after[0].type == "snapshot"
    assert after[0].data == expected_tickers("linear", "tickers.ETHUSDT")[0][1]


async def test_rejected_topic_raises_with_reason_others_unaffected(peer: BybitPeer) -> None:
    peer.add_instrument("linear", "NOPEUSDT")  # listed, so the refusal comes from the ack
    peer.reject_topic("tickers.NOPEUSDT")
    async with running(peer) as (source, events):
        # The first topic opens the socket lazily: its refusal must still reach the caller.
        with pytest.raises(SourceError) as info:
            await source.subscribe(ch("ticker:NOPEUSDT"))
        assert "handler not found" in info.value.message
        assert "tickers.NOPEUSDT" in info.value.message
        await source.subscribe(ch("ticker:BTCUSDT"))
        with pytest.raises(SourceError, match="handler not found"):
            await source.subscribe(ch("ticker:NOPEUSDT"))
        count = len(events.on("ticker:BTCUSDT"))
        await events.wait_count("ticker:BTCUSDT", count + 5)
        status = source.status()
        assert status.topics == 1
        assert status.extra["linear"]["rejections"] == 2
        assert peer.subscribed("linear") == [{"tickers.BTCUSDT"}]
    assert events.on("ticker:NOPEUSDT") == []


async def test_malformed_frames_are_counted_and_the_stream_goes_on(
    peer: BybitPeer, caplog: pytest.LogCaptureFixture
) -> None:
    async with running(peer) as (source, events):
        await source.subscribe(ch("ticker:BTCUSDT"))
        await events.wait_count("ticker:BTCUSDT", 3)
        await peer.send_raw("{not json")
        await peer.send_raw('{"topic":"tickers.BTCUSDT","type":"delta","ts":1,"data":"oops"}')
        await peer.send_raw(
            '{"topic":"tickers.BTCUSDT","type":"delta","ts":1,'
            '"data":{"symbol":"BTCUSDT","lastPrice":66666.6}}'
        )
        await events.wait(lambda: source.status().errors == 3, "3 counted errors")
        count = len(events.on("ticker:BTCUSDT"))
        await events.wait_count("ticker:BTCUSDT", count + 5)
        assert source.status().reconnects == 0
    assert all(e.ts_source != 1 for e in events.on("ticker:BTCUSDT"))
    logged = [r for r in caplog.records if r.name == "cryptowire.sources.bybit"]
    assert sum("dropped a frame" in r.getMessage() for r in logged) == 3


async def test_unknown_symbol_is_refused_from_the_instruments_list(peer: BybitPeer) -> None:
    async with running(peer) as (source, _):
        with pytest.raises(SourceError, match="Unknown symbol 'FOOBARUSDT' on Bybit linear"):
            await source.subscribe(ch("ticker:FOOBARUSDT"))
        with pytest.raises(SourceError, match="Unknown symbol 'FOOBARUSDT' on Bybit spot"):
            await source.subscribe(ch("trade:FOOBARUSDT@spot"))
        assert peer.subscribe_count("tickers.FOOBARUSDT") == 0
        assert peer.subscribe_count("publicTrade.FOOBARUSDT", "spot") == 0
        # 3 symbols per category at 2 per page: the cursor was followed.
        assert peer.instrument_requests == 4
        await source.subscribe(ch("ticker:SOLUSDT"))  # listed on the second page
        assert source.status().extra["instruments"]["linear"]["symbols"] == 3


async def test_without_instruments_the_ack_decides(peer: BybitPeer) -> None:
    peer.fail_instruments()
    async with running(peer) as (source, events):
        with pytest.raises(SourceError, match="handler not found,topic:tickers.FOOBARUSDT"):
            await source.subscribe(ch("ticker:FOOBARUSDT"))
        await source.subscribe(ch("ticker:BTCUSDT"))
        await events.wait_count("ticker:BTCUSDT", 1)
        assert source.status().extra["instruments"]["linear"]["error"].startswith("HTTP 503")


async def test_one_upstream_subscription_per_topic_and_unsubscribe(peer: BybitPeer) -> None:
    async with running(peer) as (source, events):
        await source.subscribe(ch("ticker:BTCUSDT"))
        await source.subscribe(ch("ticker:BTCUSDT"))
        await asyncio.gather(*(source.subscribe(ch("trade:ETHUSDT")) for _ in range(3)))
        await source.subscribe(ch("ticker:BTCUSDT@spot"))  # same topic, other venue
        assert peer.subscribe_count("tickers.BTCUSDT") == 1
        assert peer.subscribe_count("publicTrade.ETHUSDT") == 1
        assert peer.subscribe_count("tickers.BTCUSDT", "spot") == 1
        assert peer.subscribed("linear") == [{"tickers.BTCUSDT", "publicTrade.ETHUSDT"}]
        await events.wait_count("ticker:BTCUSDT", 2)
        await events.wait_count("ticker:BTCUSDT@spot", 2)
        assert events.on("ticker:BTCUSDT")[0].data["markPrice"] is not None
        assert events.on("ticker:BTCUSDT@spot")[0].data["markPrice"] is None

        await source.unsubscribe(ch("ticker:BTCUSDT"))
        await peer.wait_until(
            lambda: (
                peer.unsubscribe_count("tickers.BTCUSDT") == 1
                and peer.subscribed("linear") == [{"publicTrade.ETHUSDT"}]
            ),
            what="unsubscribe upstream",
        )
        await source.unsubscribe(ch("ticker:BTCUSDT"))  # again: nothing more goes upstream
        assert source.status().topics == 2
        count = len(events.on("trade:ETHUSDT"))
        await events.wait_count("trade:ETHUSDT", count + 2)
        assert peer.unsubscribe_count("tickers.BTCUSDT") == 1
        assert peer.subscribed("spot") == [{"tickers.BTCUSDT"}]


async def test_resubscribe_after_reconnect_is_chunked(peer: BybitPeer) -> None:
    topics = [f"kline.{bybit}.BTCUSDT" for bybit in KLINE_INTERVALS.values()]
    async with running(peer) as (source, events):
        for interval in KLINE_INTERVALS:
            await source.subscribe(ch(f"kline:{interval}:BTCUSDT"))
        peer.drop()
        await peer.wait_until(
            lambda: peer.subscribed("linear") == [set(topics)], what="13 topics restored"
        )
        conn = peer.connections[0]
        requests = [r for r in conn.received if r.get("op") == "subscribe"]
        assert [len(r["args"]) for r in requests] == [10, 3]
        assert sorted(t for r in requests for t in r["args"]) == sorted(topics)
        assert len({r["req_id"] for r in requests}) == 2
        await events.wait(
            lambda: all(events.on(f"kline:{i}:BTCUSDT")[-1].type != "gap" for i in KLINE_INTERVALS),
            "fresh data on every kline channel",
        )


async def test_subscribe_while_upstream_is_down_is_sent_on_connect() -> None:
    with socket.socket() as probe:  # a free port with nothing listening on it yet
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    later = BybitPeer(interval_s=0.005, port=port)
    source = BybitSource(later.settings(), backoff_max_s=1.0)
    events = Events()
    await source.start(events)
    try:
        await source.subscribe(ch("ticker:BTCUSDT"))  # recorded, not refused
        status = source.status()
        assert status.state in ("down", "connecting")
        assert status.topics == 1
        async with later:
            await events.wait_count("ticker:BTCUSDT", 2)
            assert later.subscribe_count("tickers.BTCUSDT") == 1
        assert events.on("ticker:BTCUSDT")[0].type == "snapshot"
    finally:
        await source.stop()
    assert source.status().state == "stopped"
    leftover = [t for t in asyncio.all_tasks() if t.get_name().startswith("bybit-")]
    assert leftover == []


async def test_subscribe_before_start_and_foreign_kinds_are_refused(peer: BybitPeer) -> None:
    source = BybitSource(peer.settings())
    with pytest.raises(SourceError, match="not running"):
        await source.subscribe(ch("ticker:BTCUSDT"))
    async with running(peer) as (started, _):
        with pytest.raises(SourceError, match="ticker, trade, kline, book and liquidation"):
            await started.subscribe(ch("swap:eth"))
        assert started.status().state == "up"
        assert started.status().detail.startswith("idle")
    disabled = BybitSource(peer.settings(enabled=False))
    await disabled.start(Events())
    try:
        with pytest.raises(SourceError, match="disabled"):
            await disabled.subscribe(ch("ticker:BTCUSDT"))
    finally:
        await disabled.stop()


async def test_refusal_inside_a_resubscribe_batch_only_drops_that_topic(peer: BybitPeer) -> None:
    async with running(peer) as (source, events):
        await source.subscribe(ch("ticker:BTCUSDT"))
        await source.subscribe(ch("ticker:ETHUSDT"))
        peer.reject_topic("tickers.ETHUSDT")  # e.g. delisted while we were away
        peer.drop()
        # The batch [BTC, ETH] is refused as a whole; each topic is asked again on its own:
        # BTC answers "already subscribed" (kept), ETH is refused (dropped).
        await events.wait(lambda: source.status().topics == 1, "the refused topic dropped")
        assert source.status().extra["linear"]["rejections"] == 1
        assert peer.subscribed("linear") == [{"tickers.BTCUSDT"}]
        count = len(events.on("ticker:BTCUSDT"))
        await events.wait_count("ticker:BTCUSDT", count + 3)
        requests = [r["args"] for r in peer.connections[0].received if r["op"] == "subscribe"]
        assert requests == [["tickers.BTCUSDT", "tickers.ETHUSDT"], ["tickers.BTCUSDT"],
                            ["tickers.ETHUSDT"]]  # fmt: skip


async def test_unanswered_subscribe_times_out_and_is_withdrawn(peer: BybitPeer) -> None:
    async with running(peer, ack_timeout_s=0.5) as (source, _):
        await source.subscribe(ch("ticker:BTCUSDT"))
        peer.stall(True)
        with pytest.raises(SourceError, match="did not acknowledge topic 'tickers.ETHUSDT'"):
            await source.subscribe(ch("ticker:ETHUSDT"))
        await peer.wait_until(
            lambda: peer.unsubscribe_count("tickers.ETHUSDT") == 1, what="unsubscribe sent"
        )
        peer.stall(False)
        assert source.status().topics == 1


async def test_concurrent_first_subscribes_share_one_request_and_verdict(peer: BybitPeer) -> None:
    peer.add_instrument("linear", "NOPEUSDT")
    peer.reject_topic("tickers.NOPEUSDT")
    async with running(peer) as (source, _):
        results = await asyncio.gather(
            *(source.subscribe(ch("ticker:NOPEUSDT")) for _ in range(3)), return_exceptions=True
        )
        assert all(isinstance(r, SourceError) for r in results), results
        assert peer.subscribe_count("tickers.NOPEUSDT") == 1
        assert source.status().topics == 0


def test_watchdog_must_outlast_the_ping_period(peer: BybitPeer) -> None:
    with pytest.raises(ConfigError, match="watchdog_s"):
        BybitSource(peer.settings(), ping_interval_s=5.0, watchdog_s=5.0)
