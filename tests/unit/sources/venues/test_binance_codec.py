"""The Binance codec against the fixtures: every field of each normalized payload equals the
source frame's field (the issue's fidelity test at the codec level), the ticker merge, klines,
liquidations, replies, stream names, requests and instrument lists."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from tests.unit.sources.venues.binance_support import (
    channel,
    document,
    expected_kline,
    expected_liquidation,
    expected_ticker,
    expected_trade,
    lines,
    raw_lines,
)

from cryptowire.errors import SourceError
from cryptowire.sources.venues.binance import markets
from cryptowire.sources.venues.binance.feed import BinanceFeed
from cryptowire.sources.venues.binance.frames import (
    MalformedFrameError,
    Reply,
    Shutdown,
    parse_frame,
)
from cryptowire.sources.venues.binance.payloads import (
    TickerMerge,
    money,
    parse_instruments,
    parse_kline,
    parse_trade,
)

FUTURES = ["ticker:BTCUSDT@binance", "trade:BTCUSDT@binance", "kline:1m:BTCUSDT@binance",
           "liquidation:BTCUSDT@binance", "book:50:BTCUSDT@binance"]
SPOT = ["ticker:BTCUSDT@binance-spot", "trade:BTCUSDT@binance-spot",
        "kline:1m:BTCUSDT@binance-spot", "book:50:BTCUSDT@binance-spot"]


def feed_of(market: markets.BinanceMarket, names: list[str]
            ) -> tuple[BinanceFeed, dict[str, list[str]]]:
    feed, subscribed = BinanceFeed(market), {}
    for name in names:
        new, _ = feed.add(channel(name))
        for endpoint, streams in new.items():
            subscribed.setdefault(endpoint, []).extend(streams)
    return feed, subscribed


def test_subscribe_requests_are_the_documented_ones() -> None:
    requests = lines("client-requests.jsonl")
    _, fut = feed_of(markets.futures(), FUTURES)
    assert markets.subscribe_request(fut["market"], 1) == requests[0]
    assert markets.subscribe_request(fut["public"], 2) == requests[1]
    _, spot = feed_of(markets.spot(), SPOT)
    assert markets.subscribe_request(spot["public"], 3) == requests[2]
    assert markets.unsubscribe_request(["btcusdt@kline_1m"], 4) == requests[3]


def test_endpoints_follow_the_futures_split() -> None:
    fut = markets.futures("wss://fstream.binance.com")
    assert fut.ws_urls == {"public": "wss://fstream.binance.com/public/stream",
                           "market": "wss://fstream.binance.com/market/stream"}
    assert fut.depth_url("BTCUSDT") == "https://fapi.binance.com/fapi/v1/depth?symbol=BTCUSDT&limit=1000"
    assert markets.spot().depth_url("ETHUSDT").endswith("/api/v3/depth?symbol=ETHUSDT&limit=5000")
    assert [s.name for s in fut.streams(channel("kline:4h:ETHUSDT@binance"))] == [
        "ethusdt@kline_4h"]
    assert markets.chunks(list("abcde"), 2) == [["a", "b"], ["c", "d"], ["e"]]


def test_every_canonical_interval_is_a_binance_interval() -> None:
    documented = {"1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d",
                  "3d", "1w", "1M"}  # F-WS Kline-Candlestick-Streams
    assert set(markets.INTERVALS.values()) <= documented
    assert set(markets.INTERVALS) == set(markets.INTERVAL_OF.values())


def test_spot_liquidations_and_foreign_channels_are_refused_with_a_reason() -> None:
    with pytest.raises(SourceError, match="No liquidations on Binance spot"):
        markets.spot().streams(channel("liquidation:BTCUSDT@binance-spot"))
    with pytest.raises(SourceError, match="not a Binance"):
        markets.spot().streams(channel("ticker:BTCUSDT@binance"))


@pytest.mark.parametrize(("market", "names", "files"), [
    (markets.futures(), FUTURES, ["futures-market.jsonl", "futures-public.jsonl"]),
    (markets.spot(), SPOT, ["spot.jsonl"]),
])
def test_fidelity_every_field_equals_the_source_frame(
        market: markets.BinanceMarket, names: list[str], files: list[str]) -> None:
    feed, _ = feed_of(market, names)
    frames = [f for name in files for f in lines(name) if "stream" in f]
    if len(files) > 1:  # the two futures connections, merged in event time order
        frames.sort(key=lambda f: f["data"]["E"])
    last: dict[str, dict[str, Any]] = {}
    mismatches, checked = [], 0
    for frame in frames:
        data = frame["data"]
        kind = data.get("e", "bookTicker")
        last[kind] = data
        for event in feed.on_stream(parse_frame(orjson.dumps(frame))).events:  # type: ignore[arg-type]
            if event.channel.startswith("ticker:"):
                want: Any = expected_ticker("BTCUSDT", last)
            elif event.channel.startswith("trade:"):
                want = [expected_trade(data)]
            elif event.channel.startswith("kline:"):
                want = expected_kline(data)
            else:
                want = expected_liquidation(data)
            checked += 1
            if event.data != want:
                mismatches.append((event.channel, event.data, want))
            assert event.source == "binance"
            assert event.ts_source == data.get("E")
    assert mismatches == []
    assert checked == (8 if market.market == "spot" else 10)


def test_the_ticker_waits_for_every_part_then_carries_the_latest_of_each() -> None:
    merge = TickerMerge("futures")
    market = [f["data"] for f in lines("futures-market.jsonl") if "stream" in f]
    public = [f["data"] for f in lines("futures-public.jsonl") if "stream" in f]
    ticker = next(d for d in market if d["e"] == "24hrTicker")
    marks = [d for d in market if d["e"] == "markPriceUpdate"]
    assert merge.apply(ticker) == ("BTCUSDT", None)
    assert merge.apply(public[0]) == ("BTCUSDT", None)  # no mark price yet
    _, whole = merge.apply(marks[0])
    assert whole is not None and whole["markPrice"] == marks[0]["p"]
    assert whole["nextFundingTime"] == str(marks[0]["T"])
    _, later = merge.apply(public[2])
    assert later is not None and later["bid"] == {"price": public[2]["b"], "size": public[2]["B"]}
    assert later["price"] == ticker["c"] and later["markPrice"] == marks[0]["p"]
    for absent in ("tickDirection", "openInterest", "openInterestValue"):
        assert absent not in later  # Binance gives none of them: omitted, not null


def test_spot_ticker_has_no_futures_fields_and_publishes_snapshot_then_update() -> None:
    feed, _ = feed_of(markets.spot(), ["ticker:BTCUSDT@binance-spot"])
    out = [e for line in raw_lines("spot.jsonl") for e in feed.on_message(line).events]
    assert [e.type for e in out] == ["snapshot", "update", "update"]
    assert all("markPrice" not in e.data and "fundingRate" not in e.data for e in out)
    # a ticker channel added later gets the merged state at once
    again = BinanceFeed(markets.spot())
    again.tickers = feed.tickers
    _, events = again.add(channel("ticker:BTCUSDT@binance-spot"))
    assert [e.type for e in events] == ["snapshot"] and events[0].data == out[-1].data


def test_klines_map_every_field_and_refuse_an_unknown_interval() -> None:
    kline = next(f["data"] for f in lines("futures-market.jsonl")
                 if f.get("stream") == "btcusdt@kline_1m")
    assert parse_kline(kline) == expected_kline(kline)
    relabelled = {**kline, "k": {**kline["k"], "i": "1s"}}  # spot-only, not a channel
    with pytest.raises(MalformedFrameError, match="interval"):
        parse_kline(relabelled)


def test_event_channels_never_carry_snapshot() -> None:
    feed, _ = feed_of(markets.futures(), ["trade:BTCUSDT@binance",
                                          "liquidation:BTCUSDT@binance"])
    events = [e for line in raw_lines("futures-market.jsonl")
              for e in feed.on_message(line).events]
    assert {e.type for e in events} == {"update"} and len(events) == 4


def test_money_fields_are_never_floats() -> None:
    trade = next(f["data"] for f in lines("spot.jsonl") if f.get("stream") == "btcusdt@trade")
    with pytest.raises(MalformedFrameError, match="'p'"):
        parse_trade({**trade, "p": 97261.38}, "spot")  # a float may have lost digits
    assert money(97261, "p") == "97261"
    assert parse_trade({**trade, "m": True}, "spot")["side"] == "sell"  # buyer is the maker


def test_replies_errors_and_shutdown_are_classified() -> None:
    control = raw_lines("control.jsonl")
    assert parse_frame(control[0]) == Reply(4, None)
    assert parse_frame(control[1]) == Reply(5, result=["btcusdt@ticker", "btcusdt@bookTicker",
                                                       "btcusdt@trade", "btcusdt@depth@100ms"])
    spot_error = parse_frame(control[2])
    assert isinstance(spot_error, Reply) and spot_error.id == 6
    assert spot_error.error is not None and spot_error.error.startswith("2: Invalid request")
    assert parse_frame(control[3]) == Reply(None, error="3: Invalid JSON: expected value at "
                                                        "line 1 column 1")
    assert parse_frame(control[4]) == Shutdown(1796205590000)
    futures_error = parse_frame('{"error":{"code":2,"msg":"Invalid request"},"id":7}')
    assert futures_error == Reply(7, error="2: Invalid request")
    for bad in ("[1]", "nope", '{"stream":"x"}', '{"id":"1","result":null}', "{}"):
        with pytest.raises(MalformedFrameError):
            parse_frame(bad)


def test_instrument_lists_keep_trading_perpetuals_and_trading_spot_pairs() -> None:
    assert parse_instruments(document("exchangeInfo-fapi.json"), "futures") == {
        "BTCUSDT", "ETHUSDT", "SOLUSDT"}  # not the quarterly BTCUSDT_261225
    spot = parse_instruments(document("exchangeInfo-api.json"), "spot")
    assert spot == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}  # not the BREAK symbol
    with pytest.raises(MalformedFrameError):
        parse_instruments({"symbols": None}, "spot")


def test_streams_are_shared_and_dropped_with_their_last_channel() -> None:
    feed = BinanceFeed(markets.futures())
    new1, _ = feed.add(channel("book:50:BTCUSDT@binance"))
    new2, _ = feed.add(channel("book:5:BTCUSDT@binance"))
    new3, _ = feed.add(channel("ticker:BTCUSDT@binance"))
    assert new1 == {"public": ["btcusdt@depth@100ms"]} and new2 == {}
    assert new3 == {"market": ["btcusdt@ticker", "btcusdt@markPrice@1s"],
                    "public": ["btcusdt@bookTicker"]}
    assert feed.remove(channel("book:50:BTCUSDT@binance")) == {}
    assert feed.remove(channel("book:5:BTCUSDT@binance")) == {"public": ["btcusdt@depth@100ms"]}
    assert feed.streams("public") == ["btcusdt@bookTicker"]
    assert "BTCUSDT" not in feed.books
    # a frame of a stream no longer subscribed publishes nothing
    depth = raw_lines("futures-depth.jsonl")[0]
    assert feed.on_message(depth).events == []
