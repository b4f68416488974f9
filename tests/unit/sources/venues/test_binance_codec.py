"""The Binance codec against the fixtures: every field of each normalized payload equals the
source frame's field (the issue's fidelity test at the codec level), the ticker merge, klines,
liquidations, replies, topics and requests, instrument lists."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from tests.unit.sources.venues.binance_harness import Harness, venue
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
from cryptowire.sources.exchange import codec
from cryptowire.sources.venues.binance import markets
from cryptowire.sources.venues.binance.codec import KEEPALIVE, TickerState
from cryptowire.sources.venues.binance.frames import MalformedFrameError
from cryptowire.sources.venues.binance.payloads import (
    TickerMerge,
    money,
    parse_instruments,
    parse_kline,
    parse_trade,
)
from cryptowire.sources.venues.binance.venue import requests

FUTURES = ["ticker:BTCUSDT@binance", "trade:BTCUSDT@binance", "kline:1m:BTCUSDT@binance",
           "liquidation:BTCUSDT@binance", "book:50:BTCUSDT@binance"]
SPOT = ["ticker:BTCUSDT@binance-spot", "trade:BTCUSDT@binance-spot",
        "kline:1m:BTCUSDT@binance-spot", "book:50:BTCUSDT@binance-spot"]


def harness(market: str, names: list[str]) -> tuple[Harness, dict[str, list[str]]]:
    """The channels added in order; the new streams per endpoint, in subscribe order."""
    h, streams = Harness(market), {}
    for name in names:
        sub, _ = h.add(name)
        for stream in sub.topic.streams:
            keys = streams.setdefault(stream.endpoint, [])
            if stream.key not in keys:
                keys.append(stream.key)
    return h, streams


def test_subscribe_requests_are_the_documented_ones() -> None:
    fixture = lines("client-requests.jsonl")
    _, fut = harness("futures", FUTURES)
    assert requests("subscribe", fut["market"], 1) == ("1", fixture[0])
    assert requests("subscribe", fut["public"], 2) == ("2", fixture[1])
    _, spot = harness("spot", SPOT)
    assert requests("subscribe", spot["public"], 3) == ("3", fixture[2])
    assert requests("unsubscribe", ["btcusdt@kline_1m"], 4) == ("4", fixture[3])


def test_the_declaration() -> None:
    binance = venue()
    assert binance.name == "binance" and set(binance.markets) == {"binance", "binance-spot"}
    fut, spot = binance.markets["binance"], binance.markets["binance-spot"]
    assert fut.endpoints == {"public": "wss://fstream.binance.com/public/stream",
                             "market": "wss://fstream.binance.com/market/stream"}
    assert spot.endpoints == {"public": "wss://stream.binance.com:9443/stream"}
    assert "liquidation" in fut.kinds and "liquidation" not in spot.kinds
    assert fut.to_native("BTCUSDT") == "btcusdt" and fut.limits.streams_per_connection == 1024
    assert fut.ping.text == KEEPALIVE and fut.ping.watchdog_s > fut.ping.interval_s  # type: ignore[operator]
    assert markets.chunks(list("abcde"), 2) == [["a", "b"], ["c", "d"], ["e"]]


def test_every_canonical_interval_is_a_binance_interval() -> None:
    documented = {"1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d",
                  "3d", "1w", "1M"}  # F-WS Kline-Candlestick-Streams
    assert set(markets.INTERVALS.values()) <= documented
    sub, _ = Harness("futures").add("kline:4h:ETHUSDT@binance")
    assert [s.key for s in sub.topic.streams] == ["ethusdt@kline_4h"]
    assert sub.topic.streams[0].endpoint == "market"


@pytest.mark.parametrize(("name", "reason"), [
    ("liquidation:BTCUSDT@binance-spot", "No liquidations on Binance spot"),
    ("book:7:BTCUSDT@binance", None),  # refused by the grammar already
])
def test_channels_it_cannot_serve_are_refused_with_a_reason(name: str, reason: str | None
                                                            ) -> None:
    if reason is None:
        with pytest.raises(Exception, match="Unsupported book depth"):
            channel(name)
        return
    with pytest.raises(SourceError, match=reason):
        Harness("spot").add(name)


@pytest.mark.parametrize(("market", "names", "files"), [
    ("futures", FUTURES, ["futures-market.jsonl", "futures-public.jsonl"]),
    ("spot", SPOT, ["spot.jsonl"]),
])
def test_fidelity_every_field_equals_the_source_frame(
        market: str, names: list[str], files: list[str]) -> None:
    h, _ = harness(market, names)
    frames = [f for name in files for f in lines(name) if "stream" in f]
    if len(files) > 1:  # the two futures connections, merged in event time order
        frames.sort(key=lambda f: f["data"]["E"])
    last: dict[str, dict[str, Any]] = {}
    mismatches, checked = [], 0
    for frame in frames:
        data = frame["data"]
        last[data.get("e", "bookTicker")] = data
        for pub in h.feed(orjson.dumps(frame)):
            if pub.channel.startswith("ticker:"):
                want: Any = expected_ticker("BTCUSDT", last)
            elif pub.channel.startswith("trade:"):
                want = [expected_trade(data)]
            elif pub.channel.startswith("kline:"):
                want = expected_kline(data)
            else:
                want = expected_liquidation(data)
            checked += 1
            if pub.data != want:
                mismatches.append((pub.channel, pub.data, want))
            assert pub.ts == data.get("E")
    assert mismatches == []
    assert checked == (8 if market == "spot" else 10)


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


def test_spot_ticker_publishes_snapshot_then_update_and_starts_over_on_a_new_socket() -> None:
    h, _ = harness("spot", ["ticker:BTCUSDT@binance-spot"])
    out = [p for line in raw_lines("spot.jsonl") for p in h.feed(line)]
    assert [p.type for p in out] == ["snapshot", "update", "update"]
    assert all("markPrice" not in p.data and "fundingRate" not in p.data for p in out)
    state = next(iter(h.topics.values())).state
    assert isinstance(state, TickerState)
    added = list(state.added(channel("ticker:BTCUSDT@binance-spot")))
    assert [p.type for p in added] == ["snapshot"] and added[0].data == out[-1].data
    state.reset({"btcusdt@bookTicker"})  # a new socket: parts from before it are dropped
    assert list(state.added(channel("ticker:BTCUSDT@binance-spot"))) == []
    again = [p for line in raw_lines("spot.jsonl") for p in h.feed(line)]
    assert [p.type for p in again] == ["snapshot", "update", "update"]


def test_klines_map_every_field_and_refuse_an_unknown_interval() -> None:
    kline = next(f["data"] for f in lines("futures-market.jsonl")
                 if f.get("stream") == "btcusdt@kline_1m")
    assert parse_kline(kline) == expected_kline(kline)
    relabelled = {**kline, "k": {**kline["k"], "i": "1s"}}  # spot-only, not a channel
    with pytest.raises(MalformedFrameError, match="interval"):
        parse_kline(relabelled)


def test_event_channels_never_carry_snapshot() -> None:
    h, _ = harness("futures", ["trade:BTCUSDT@binance", "liquidation:BTCUSDT@binance"])
    pubs = [p for line in raw_lines("futures-market.jsonl") for p in h.feed(line)]
    assert {p.type for p in pubs} == {"update"} and len(pubs) == 4


def test_money_fields_are_never_floats() -> None:
    trade = next(f["data"] for f in lines("spot.jsonl") if f.get("stream") == "btcusdt@trade")
    with pytest.raises(MalformedFrameError, match="'p'"):
        parse_trade({**trade, "p": 97261.38}, "spot")  # a float may have lost digits
    assert money(97261, "p") == "97261"
    assert parse_trade({**trade, "m": True}, "spot")["side"] == "sell"  # buyer is the maker


def test_replies_errors_keepalive_and_shutdown_are_classified() -> None:
    parse = venue().markets["binance-spot"].codec.parse
    control = raw_lines("control.jsonl")
    assert parse(control[0]) == [codec.Ack("4", True, "")]
    assert parse(control[1]) == [codec.Ack("5", True, "")]
    [refused] = parse(control[2])
    assert isinstance(refused, codec.Ack) and refused.req_id == "6" and not refused.ok
    assert refused.reason.startswith("2: Invalid request")
    with pytest.raises(ValueError, match="without an id"):
        parse(control[3])
    [notice] = parse(control[4])
    assert isinstance(notice, codec.Notice) and notice.reconnect
    assert parse('{"result":["btcusdt@trade"],"id":0}') == [codec.Pong()]  # the keep-alive
    futures_error = parse('{"error":{"code":2,"msg":"Invalid request"},"id":7}')
    assert futures_error == [codec.Ack("7", False, "2: Invalid request")]
    for bad in ("[1]", "nope", '{"stream":"x"}', '{"id":"1","result":null}', "{}"):
        with pytest.raises(ValueError):
            parse(bad)


def test_instrument_lists_keep_perpetuals_and_say_which_do_not_trade() -> None:
    binance = venue()
    fut = binance.markets["binance"].instruments
    spot = binance.markets["binance-spot"].instruments
    assert fut is not None and spot is not None
    assert fut.request("") == ("/fapi/v1/exchangeInfo", {})
    listed, cursor = fut.parse(document("exchangeInfo-fapi.json"))
    assert listed == {"BTCUSDT": "TRADING", "ETHUSDT": "TRADING", "SOLUSDT": "TRADING"}
    assert cursor == ""  # one page; the quarterly BTCUSDT_261225 is not a perpetual
    statuses, _ = spot.parse(document("exchangeInfo-api.json"))
    closed = [s for s, status in statuses.items() if status in spot.closed]
    assert len(closed) == 1 and set(statuses) - set(closed) == {"BTCUSDT", "ETHUSDT", "SOLUSDT"}
    assert parse_instruments(document("exchangeInfo-api.json"), "spot") == {
        "BTCUSDT", "ETHUSDT", "SOLUSDT"}
    with pytest.raises(MalformedFrameError):
        parse_instruments({"symbols": None}, "spot")


def test_every_depth_of_a_symbol_is_one_topic_and_streams_are_shared() -> None:
    h = Harness("futures")
    book50, _ = h.add("book:50:BTCUSDT@binance")
    book5, _ = h.add("book:5:BTCUSDT@binance")
    ticker, _ = h.add("ticker:BTCUSDT@binance")
    assert book5 is book50 and set(book50.channels) == {"book:50:BTCUSDT@binance",
                                                        "book:5:BTCUSDT@binance"}
    assert book50.topic.resync == "snapshot"
    assert [(s.key, s.endpoint) for s in ticker.topic.streams] == [
        ("btcusdt@ticker", "market"), ("btcusdt@bookTicker", "public"),
        ("btcusdt@markPrice@1s", "market")]
    h.remove("book:50:BTCUSDT@binance")
    h.remove("book:5:BTCUSDT@binance")
    assert h.feed(raw_lines("futures-depth.jsonl")[0]) == []  # no topic left for it
