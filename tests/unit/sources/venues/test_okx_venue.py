"""The OKX declaration on the exchange seam, sans-I/O: markets, topics and streams per
channel, requests, the codec's items, the instruments table, and the per-topic states."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cryptowire.core.channels import ChannelGrammar
from cryptowire.errors import SourceError
from cryptowire.settings import OkxSettings
from cryptowire.sources.exchange import codec
from cryptowire.sources.exchange.venue import Market, Topic
from cryptowire.sources.venues.okx.codec import OkxCodec
from cryptowire.sources.venues.okx.venue import declare, requests

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "okx"
GRAMMAR = ChannelGrammar()
VENUE = declare(OkxSettings())
SWAP, SPOT = VENUE.markets["okx"], VENUE.markets["okx-spot"]


def topic_of(name: str) -> tuple[Topic, Market]:
    channel = GRAMMAR.parse(name)
    market = VENUE.market_of(channel)
    return market.topic(channel, market), market


def load_instruments() -> None:
    assert SWAP.instruments is not None and SPOT.instruments is not None
    for market, name in ((SWAP, "swap"), (SPOT, "spot")):
        assert market.instruments is not None
        body = json.loads((FIXTURES / f"instruments-{name}.json").read_text())
        market.instruments.parse(body)


def frames(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


def test_the_declaration() -> None:
    assert VENUE.name == "okx" and set(VENUE.markets) == {"okx", "okx-spot"}
    assert SWAP.endpoints == {"public": "wss://ws.okx.com:8443/ws/v5/public",
                              "business": "wss://ws.okx.com:8443/ws/v5/business"}
    assert "liquidation" in SWAP.kinds and "liquidation" not in SPOT.kinds
    assert SWAP.book_depths == (1, 5, 50, 400) and SWAP.intervals["1d"] == "1Dutc"
    assert SWAP.ping.text == "ping" and SWAP.ping.interval_s < 30
    assert SWAP.limits.streams_per_connection == 29
    assert VENUE.probe_url == "https://www.okx.com/api/v5/public/instruments?instType=SPOT" \
                              "&instId=BTC-USDT"
    assert requests("subscribe", [{"channel": "tickers", "instId": "X"}], 7) == (
        "cw7", {"id": "cw7", "op": "subscribe", "args": [{"channel": "tickers", "instId": "X"}]})


def test_topics_and_streams_per_channel() -> None:
    ticker, _ = topic_of("ticker:BTCUSDT@okx")
    assert [s.key for s in ticker.streams] == ["tickers:BTC-USDT-SWAP",
                                               "funding-rate:BTC-USDT-SWAP",
                                               "mark-price:BTC-USDT-SWAP"]
    assert ticker.streams[1].arg == {"channel": "funding-rate", "instId": "BTC-USDT-SWAP"}
    spot, _ = topic_of("ticker:BTCUSDT@okx-spot")
    assert [s.key for s in spot.streams] == ["tickers:BTC-USDT"]
    kline, _ = topic_of("kline:1d:ETHUSDT@okx")
    assert [(s.key, s.endpoint) for s in kline.streams] == [("candle1Dutc:ETH-USDT-SWAP",
                                                             "business")]
    assert kline.interval == "1d"
    b50, b400 = topic_of("book:50:BTCUSDT@okx")[0], topic_of("book:400:BTCUSDT@okx")[0]
    assert b50.key == b400.key == "book:BTC-USDT-SWAP" and (b50.depth, b400.depth) == (50, 400)
    liq_btc, liq_eth = topic_of("liquidation:BTCUSDT@okx")[0], topic_of(
        "liquidation:ETHUSDT@okx")[0]
    assert liq_btc.key != liq_eth.key and liq_btc.streams == liq_eth.streams
    assert liq_btc.streams[0].arg == {"channel": "liquidation-orders", "instType": "SWAP"}


@pytest.mark.parametrize(("name", "reason"), [
    ("liquidation:BTCUSDT@okx-spot", "not 'liquidation'"),
    ("book:50:BTCDAI@okx", "USDT swaps only"),
    ("ticker:BTCUSD@okx", "USDT swaps only"),
])
def test_channels_refused_with_a_reason(name: str, reason: str) -> None:
    with pytest.raises(SourceError, match=reason):
        topic_of(name)


def test_the_codec_items() -> None:
    okx = OkxCodec({})
    (ack,) = okx.parse(frames("swap.jsonl")[0].replace('"id":"1"', '"id":"cw1"'))
    assert ack == codec.Ack("cw1", True, "", "6a1f0c2e")
    (refused,) = okx.parse(frames("control.jsonl")[0])
    assert isinstance(refused, codec.Ack) and refused.req_id == "4" and not refused.ok
    assert refused.reason.startswith("60012: Invalid request")
    (notice,) = okx.parse(frames("control.jsonl")[1])
    assert isinstance(notice, codec.Notice) and notice.reconnect
    assert okx.parse("pong") == [codec.Pong()]
    (data,) = okx.parse(frames("swap.jsonl")[6])
    assert isinstance(data, codec.Data) and data.stream == "tickers:BTC-USDT-SWAP"
    (liq,) = okx.parse(frames("swap.jsonl")[11])
    assert isinstance(liq, codec.Data) and liq.stream == "liquidation-orders:SWAP"
    with pytest.raises(ValueError, match="malformed OKX frame"):
        okx.parse("{")


def test_the_instruments_table() -> None:
    load_instruments()
    assert SWAP.instruments is not None and SPOT.instruments is not None
    body = json.loads((FIXTURES / "instruments-spot.json").read_text())
    page, cursor = SPOT.instruments.parse(body)
    assert cursor == "" and page["BTC-USDT"] == "Trading" and page["LUNC-USDT"] == "Suspended"
    assert "Suspended" in SPOT.instruments.closed
    assert SWAP.from_native("BTC-USDT-SWAP") == "BTCUSDT"
    assert SWAP.from_native("BTC-USD-SWAP") is None and SWAP.to_native("SOLUSDT") == \
        "SOL-USDT-SWAP"
    assert SPOT.to_native("BTCUSDC") == "BTC-USDC" and SPOT.from_native("BTC-USDC") == "BTCUSDC"
    assert SWAP.instruments.request("") == ("/api/v5/public/instruments", {"instType": "SWAP"})


def pubs(state: codec.TopicState, line: str, channels: dict[str, Any],
         okx: OkxCodec) -> list[codec.Pub]:
    (data,) = okx.parse(line)
    assert isinstance(data, codec.Data)
    return list(state.apply(data, channels))


def test_ticker_state_snapshot_then_updates_and_again_after_reset() -> None:
    load_instruments()
    topic, market = topic_of("ticker:BTCUSDT@okx")
    okx: Any = market.codec
    state = okx.state(topic, market)
    channels = {"ticker:BTCUSDT@okx": GRAMMAR.parse("ticker:BTCUSDT@okx")}
    lines = [f for f in frames("swap.jsonl") if '"event"' not in f and (
        '"tickers"' in f or '"funding-rate"' in f or '"mark-price"' in f)]
    out = [p for line in lines for p in pubs(state, line, channels, okx)]
    assert [p.type for p in out] == ["snapshot", "update", "update", "update"]
    assert out[-1].data["markPrice"] == "97249.3" and out[-1].ts == 1796119201457
    state.reset({"tickers:BTC-USDT-SWAP"})
    again = pubs(state, lines[-1], channels, okx)
    assert [p.type for p in again] == ["snapshot"] and "markPrice" not in again[0].data


def test_book_state_publishes_each_depth_and_gaps_every_depth() -> None:
    load_instruments()
    topic, market = topic_of("book:5:BTCUSDT@okx")
    okx: Any = market.codec
    state = okx.state(topic, market)
    channels = {"book:5:BTCUSDT@okx": GRAMMAR.parse("book:5:BTCUSDT@okx")}
    lines = frames("swap-books.jsonl")
    first = pubs(state, lines[0], channels, okx)
    assert [(p.channel, p.type) for p in first] == [("book:5:BTCUSDT@okx", "snapshot")]
    assert len(first[0].data["bids"]) == 5 and first[0].ts == int(json.loads(lines[0])[
        "data"][0]["ts"])
    joined = list(state.added(GRAMMAR.parse("book:400:BTCUSDT@okx")))
    assert [(p.channel, p.type, len(p.data["asks"])) for p in joined] == [
        ("book:400:BTCUSDT@okx", "snapshot", 400)]
    channels["book:400:BTCUSDT@okx"] = GRAMMAR.parse("book:400:BTCUSDT@okx")
    seen = {p.channel for line in lines[1:10] for p in pubs(state, line, channels, okx)}
    assert seen == set(channels)
    bad = json.loads(lines[10])
    bad["data"][0]["prevSeqId"] += 1
    gap = pubs(state, json.dumps(bad), channels, okx)
    assert {(p.channel, p.type) for p in gap} == {(c, "gap") for c in channels}
    assert state.broken is not None and state.broken.cause == "sequence"


def test_liquidation_state_keeps_its_instrument_only() -> None:
    load_instruments()
    topic, market = topic_of("liquidation:ETHUSDT@okx")
    okx: Any = market.codec
    state = okx.state(topic, market)
    channels = {"liquidation:ETHUSDT@okx": GRAMMAR.parse("liquidation:ETHUSDT@okx")}
    lines = [f for f in frames("swap.jsonl") if '"liquidation-orders"' in f and '"event"' not in f]
    out = [p for line in lines for p in pubs(state, line, channels, okx)]
    assert [(p.data["symbol"], p.data["size"], p.type) for p in out] == [
        ("ETHUSDT", "22.0", "update")]


def test_swap_frames_need_the_contract_size() -> None:
    fresh = declare(OkxSettings())  # no instruments list fetched
    market = fresh.markets["okx"]
    channel = GRAMMAR.parse("trade:BTCUSDT@okx")
    state = market.codec.state(market.topic(channel, market), market)
    (data,) = market.codec.parse(frames("swap.jsonl")[7])
    with pytest.raises(ValueError, match="ctVal"):
        list(state.apply(data, {channel.name: channel}))  # type: ignore[arg-type]
    spot = fresh.markets["okx-spot"]
    channel = GRAMMAR.parse("trade:BTCUSDT@okx-spot")
    state = spot.codec.state(spot.topic(channel, spot), spot)
    (data,) = spot.codec.parse(frames("spot.jsonl")[4])
    assert [p.data[0]["quantity"] for p in state.apply(data, {channel.name: channel})] == \
        ["0.00412"]  # type: ignore[arg-type]
