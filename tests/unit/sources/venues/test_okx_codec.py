"""The OKX codec against the fixtures of ``tests/fixtures/okx``: instruments and symbols,
frame kinds, and every field of every normalized payload traced back to the OKX field it
came from (the codec half of the OKX fidelity test)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cryptowire.sources.venues.okx.instruments import (
    Instrument,
    InstrumentError,
    contracts_to_base,
    parse_instruments,
)
from cryptowire.sources.venues.okx.parser import (
    TickerMerge,
    close_time,
    parse_candles,
    parse_liquidations,
    parse_trades,
)
from cryptowire.sources.venues.okx.protocol import (
    Ack,
    ErrorReply,
    Notice,
    OkxFrameError,
    Pong,
    Push,
    channel_args,
    endpoint,
    parse_frame,
    request,
)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "okx"
BTC_SWAP = Instrument("BTCUSDT", "BTC-USDT-SWAP", "okx", "live", Decimal("0.01"))
BTC_SPOT = Instrument("BTCUSDT", "BTC-USDT", "okx-spot", "live")


def lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text().splitlines()


def pushes(name: str, channel: str) -> list[Push]:
    out = []
    for line in lines(name):
        frame = parse_frame(line)
        if isinstance(frame, Push) and frame.channel == channel:
            out.append(frame)
    return out


def base(size: str, inst: Instrument) -> str:
    """The expected base-unit size, computed independently of the codec."""
    if inst.ct_val is None:
        return size
    return format(Decimal(size) * inst.ct_val, "f")


# -- instruments -----------------------------------------------------------------------------


def test_swap_instruments_are_the_linear_usdt_swaps_only() -> None:
    swaps = parse_instruments("okx", json.loads((FIXTURES / "instruments-swap.json").read_text()))
    assert sorted(swaps.by_symbol) == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert swaps.get("BTCUSDT") == BTC_SWAP
    assert swaps.by_inst_id["ETH-USDT-SWAP"].ct_val == Decimal("0.1")
    assert "BTC-USD-SWAP" not in swaps.by_inst_id and swaps.get("BTCUSD") is None
    assert swaps.refusal("BTCUSDT") is None
    assert swaps.refusal("BTCUSD") == "OKX lists no USDT swap BTCUSD (@okx)"


def test_spot_instruments_map_base_and_quote_and_refuse_suspended_pairs() -> None:
    spot = parse_instruments("okx-spot",
                             json.loads((FIXTURES / "instruments-spot.json").read_text()))
    assert spot.get("BTCUSDT") == BTC_SPOT and spot.get("BTCUSDC") is not None
    assert spot.refusal("LUNCUSDT") == "OKX spot pair LUNC-USDT is not trading (state 'suspend')"
    assert spot.refusal("NOPEUSDT") == "OKX lists no spot pair NOPEUSDT (@okx-spot)"
    # the swap list read as spot finds nothing (instType filter)
    swaps_body = json.loads((FIXTURES / "instruments-swap.json").read_text())
    assert len(parse_instruments("okx-spot", swaps_body)) == 0


def test_an_instruments_error_response_is_a_clear_error() -> None:
    with pytest.raises(InstrumentError, match="code '50011'"):
        parse_instruments("okx", {"code": "50011", "msg": "Too Many Requests", "data": []})


@pytest.mark.parametrize(("size", "ct_val", "expected"), [
    ("12.5", "0.01", "0.125"), ("14", "0.01", "0.14"), ("220", "0.1", "22.0"),
    ("0", "0.01", "0"), ("0.000", "0.01", "0"), ("3", "1", "3"),
    ("123456789012345678901234567890.123", "0.01", "1234567890123456789012345678.90123"),
    ("1", "0.0000001", "0.0000001"),
])
def test_contracts_to_base_is_exact_and_never_in_exponent_form(
        size: str, ct_val: str, expected: str) -> None:
    assert contracts_to_base(size, Decimal(ct_val)) == expected


@pytest.mark.parametrize("bad", ["1e5", "-1", "", " 1", "NaN", "1,5"])
def test_contracts_to_base_refuses_what_is_not_a_plain_decimal(bad: str) -> None:
    with pytest.raises(ValueError, match="not a plain decimal"):
        contracts_to_base(bad, Decimal("0.01"))


# -- protocol --------------------------------------------------------------------------------


def test_requests_are_the_documented_client_frames() -> None:
    sent = [json.loads(line) for line in lines("client-requests.jsonl")]
    args = [a for kind in ("ticker", "trade") for a in channel_args(kind, "okx", "BTC-USDT-SWAP")]
    args = [args[0], args[3], args[1], args[2]]  # tickers, trades, funding-rate, mark-price
    args += channel_args("book", "okx", "BTC-USDT-SWAP")
    args += channel_args("liquidation", "okx", "BTC-USDT-SWAP")
    assert json.loads(request("subscribe", args, "1")) == sent[0]
    candles = channel_args("kline", "okx", "BTC-USDT-SWAP", "1m") + channel_args(
        "kline", "okx-spot", "BTC-USDT", "1m")
    assert json.loads(request("subscribe", candles, "2")) == sent[1]
    unsub = channel_args("trade", "okx-spot", "BTC-USDT")
    assert json.loads(request("unsubscribe", unsub)) == sent[3]
    assert endpoint("kline") == "/ws/v5/business" and endpoint("book") == "/ws/v5/public"


def test_channel_args_per_kind_and_venue() -> None:
    assert channel_args("ticker", "okx-spot", "BTC-USDT") == [
        {"channel": "tickers", "instId": "BTC-USDT"}]
    assert channel_args("kline", "okx", "X", "1d") == [{"channel": "candle1Dutc", "instId": "X"}]
    assert channel_args("kline", "okx", "X", "4h") == [{"channel": "candle4H", "instId": "X"}]
    with pytest.raises(ValueError, match="no liquidation channel"):
        channel_args("liquidation", "okx-spot", "BTC-USDT")
    with pytest.raises(ValueError, match="no candle interval"):
        channel_args("kline", "okx", "X", "7m")


def test_frame_kinds() -> None:
    assert parse_frame("pong") == Pong()
    ack = parse_frame(lines("swap.jsonl")[0])
    assert ack == Ack("subscribe", {"channel": "tickers", "instId": "BTC-USDT-SWAP"}, "1",
                      "6a1f0c2e")
    error, notice = (parse_frame(line) for line in lines("control.jsonl"))
    assert isinstance(error, ErrorReply) and error.code == "60012" and error.req_id == "4"
    assert "BTC-USDT-SWAPP" in error.msg
    assert notice == Notice("64008", notice.msg)  # type: ignore[union-attr]
    unsub = parse_frame(lines("spot.jsonl")[-1])
    assert isinstance(unsub, Ack) and unsub.op == "unsubscribe"
    book = parse_frame(lines("swap-books.jsonl")[0])
    assert isinstance(book, Push) and book.action == "snapshot"


@pytest.mark.parametrize("bad", ["pang", "[1]", '{"arg":{}}', '{"arg":{"channel":"x"}}',
                                 '{"event":"weird"}', '{"event":"subscribe"}',
                                 '{"arg":{"channel":"books"},"action":"x","data":[]}'])
def test_malformed_frames_are_refused_with_a_reason(bad: str) -> None:
    with pytest.raises(OkxFrameError, match="malformed OKX frame"):
        parse_frame(bad)


# -- payloads: every field from its source field ---------------------------------------------


@pytest.mark.parametrize(("name", "inst"), [("swap.jsonl", BTC_SWAP), ("spot.jsonl", BTC_SPOT)])
def test_trades_fidelity(name: str, inst: Instrument) -> None:
    frames = pushes(name, "trades")
    assert frames
    for frame in frames:
        (trade,), (src,) = parse_trades(frame, inst), frame.data
        assert trade == {"id": src["tradeId"], "symbol": "BTCUSDT", "price": src["px"],
                         "quantity": base(src["sz"], inst), "side": src["side"],
                         "time": int(src["ts"]), "isBlockTrade": False}
    if inst is BTC_SWAP:
        assert parse_trades(frames[0], inst)[0]["quantity"] == "0.125"  # 12.5 contracts


def test_swap_ticker_merges_tickers_funding_and_mark_price() -> None:
    merge = TickerMerge(BTC_SWAP)
    frames = [parse_frame(line) for line in lines("swap.jsonl")]
    pushed = [f for f in frames if isinstance(f, Push) and f.channel in
              ("tickers", "funding-rate", "mark-price")]
    outs = [merge.apply(p) for p in pushed]
    ticker_src = pushed[-1].data[0]
    funding = next(p for p in pushed if p.channel == "funding-rate").data[0]
    mark = next(p for p in pushed if p.channel == "mark-price").data[0]
    assert outs[-1] == {
        "symbol": "BTCUSDT", "price": ticker_src["last"], "high24h": ticker_src["high24h"],
        "low24h": ticker_src["low24h"], "prevPrice24h": ticker_src["open24h"],
        "volume24h": ticker_src["volCcy24h"],
        "bid": {"price": ticker_src["bidPx"], "size": base(ticker_src["bidSz"], BTC_SWAP)},
        "ask": {"price": ticker_src["askPx"], "size": base(ticker_src["askSz"], BTC_SWAP)},
        "markPrice": mark["markPx"], "fundingRate": funding["fundingRate"],
        "nextFundingTime": funding["fundingTime"],
    }
    # volCcy24h (base) is vol24h (contracts) x ctVal: the mapping keeps base units
    assert Decimal(ticker_src["vol24h"]) * Decimal("0.01") == Decimal(ticker_src["volCcy24h"])
    assert merge.ts == int(ticker_src["ts"])
    for absent in ("indexPrice", "turnover24h", "change24hPercent", "tickDirection",
                   "openInterest", "openInterestValue"):
        assert absent not in outs[-1]


def test_funding_before_any_tickers_push_publishes_nothing_and_is_kept() -> None:
    merge = TickerMerge(BTC_SWAP)
    funding = pushes("swap.jsonl", "funding-rate")[0]
    assert merge.apply(funding) is None and merge.get() is None
    out = merge.apply(pushes("swap.jsonl", "tickers")[0])
    assert out is not None and out["fundingRate"] == "0.0000843192730041"
    merge.clear()
    assert merge.get() is None


def test_spot_ticker_volume_is_base_and_turnover_is_quote() -> None:
    (push,) = pushes("spot.jsonl", "tickers")
    out, src = TickerMerge(BTC_SPOT).apply(push), push.data[0]
    assert out == {
        "symbol": "BTCUSDT", "price": src["last"], "high24h": src["high24h"],
        "low24h": src["low24h"], "prevPrice24h": src["open24h"], "volume24h": src["vol24h"],
        "turnover24h": src["volCcy24h"],
        "bid": {"price": src["bidPx"], "size": src["bidSz"]},
        "ask": {"price": src["askPx"], "size": src["askSz"]},
    }


def test_a_ticker_without_a_best_bid_omits_it() -> None:
    (push,) = pushes("spot.jsonl", "tickers")
    item = dict(push.data[0], bidPx="", bidSz="")
    out = TickerMerge(BTC_SPOT).apply(Push(push.arg, [item]))
    assert out is not None and "bid" not in out and out["ask"]["price"] == item["askPx"]


def test_a_ticker_with_a_json_number_is_refused() -> None:
    (push,) = pushes("spot.jsonl", "tickers")
    item = dict(push.data[0], last=97259.9)
    with pytest.raises(OkxFrameError, match="'last' is a float"):
        TickerMerge(BTC_SPOT).apply(Push(push.arg, [item]))


@pytest.mark.parametrize(("name", "inst"), [("swap-business.jsonl", BTC_SWAP),
                                            ("spot-business.jsonl", BTC_SPOT)])
def test_candles_fidelity(name: str, inst: Instrument) -> None:
    frames = pushes(name, "candle1m")
    assert len(frames) == 2
    for frame in frames:
        (kline,), (row,) = parse_candles(frame, inst), frame.data
        assert kline == {"symbol": "BTCUSDT", "interval": "1m", "openTime": int(row[0]),
                         "closeTime": int(row[0]) + 59_999, "open": row[1], "high": row[2],
                         "low": row[3], "close": row[4],
                         "volume": row[6] if inst.ct_val is not None else row[5],
                         "turnover": row[7], "confirmed": row[8] == "1"}
    assert [parse_candles(f, inst)[0]["confirmed"] for f in frames] == [False, True]


def test_a_monthly_candle_time_out_of_range_is_a_malformed_frame() -> None:
    """``fromtimestamp`` raises OverflowError for a 30-digit time: refused as a ValueError (the
    frame is dropped and counted), never an error that ends the socket's reader."""
    with pytest.raises(ValueError, match="out of range"):
        close_time("1M", 10**29)


def test_candle_close_times_per_interval() -> None:
    assert close_time("1h", 1796119200000) == 1796119200000 + 3_599_999
    assert close_time("1w", 0) == 604_799_999
    assert close_time("1M", 1798761600000) == 1801439999999  # 2027-01-01 .. 01-31 23:59:59.999
    assert close_time("1M", 1796083200000) == 1798761599999  # 2026-12 ends at the new year


def test_liquidations_fidelity_filtered_and_in_base_units() -> None:
    frames = pushes("swap.jsonl", "liquidation-orders")
    eth = Instrument("ETHUSDT", "ETH-USDT-SWAP", "okx", "live", Decimal("0.1"))
    wanted = {"BTC-USDT-SWAP": BTC_SWAP}
    got = [liq for frame in frames for liq in parse_liquidations(frame, wanted)]
    src = frames[0].data[0]["details"][0]
    assert got == [{"symbol": "BTCUSDT", "side": "Buy", "price": src["bkPx"],
                    "size": "0.14", "time": int(src["ts"])}]
    assert src["side"] == "sell" and src["posSide"] == "long"  # a long was liquidated
    (short,) = parse_liquidations(frames[1], {"ETH-USDT-SWAP": eth})
    assert short["side"] == "Sell" and short["size"] == "22.0" and short["symbol"] == "ETHUSDT"


def test_pushes_for_another_instrument_are_refused() -> None:
    trade = pushes("spot.jsonl", "trades")[0]
    with pytest.raises(OkxFrameError, match="push for 'BTC-USDT'"):
        parse_trades(trade, BTC_SWAP)
    candle: Any = pushes("spot-business.jsonl", "candle1m")[0]
    with pytest.raises(OkxFrameError, match="candles of 'BTC-USDT'"):
        parse_candles(candle, BTC_SWAP)


@pytest.mark.parametrize("ct_val", ["1", "0.1", "0.01", "0.001", "0.0000001", "0.010", "10",
                                    "0.5", "100"])
def test_the_fast_point_shift_is_the_exact_product(ct_val: str) -> None:
    import random

    rng = random.Random(ct_val)
    inst = Instrument("XUSDT", "X-USDT-SWAP", "okx", "live", Decimal(ct_val))
    assert (inst.shift is not None) == (ct_val in ("1", "0.1", "0.01", "0.001", "0.0000001"))
    sizes = ["1", "10", "0.5", "00.5", "5.", ".5", "100.000", "0.0001", "123456789.987654321"]
    sizes += [f"{rng.randint(0, 10**rng.randint(0, 12))}.{rng.randint(0, 999):03d}"
              [:rng.randint(1, 18)]
              .rstrip(".") or "1" for _ in range(300)]
    for size in sizes:
        if not size.strip("0."):
            continue
        assert inst.base_size(size) == format(Decimal(size) * Decimal(ct_val), "f"), size
