"""The Bybit V5 parser with literal frames (shapes from shared/reference/bybit/frames.jsonl)."""

from __future__ import annotations

import itertools

import orjson
import pytest

from cryptowire.core.channels import KLINE_INTERVALS, ChannelGrammar
from cryptowire.errors import SourceError
from cryptowire.sources.bybit.parser import (
    MAX_ARGS_PER_REQUEST,
    Ack,
    DataFrame,
    MalformedFrameError,
    Pong,
    TickerBook,
    build_requests,
    category_of,
    channel_for,
    parse_frame,
    parse_klines,
    parse_liquidations,
    parse_topic,
    parse_trades,
    ping_request,
    topic_for,
)
from cryptowire.sources.exchange.codec import FRAME_ERRORS

LINEAR_SNAPSHOT = (
    '{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT",'
    '"tickDirection":"MinusTick","price24hPcnt":"-0.158315","lastPrice":"66666.60",'
    '"prevPrice24h":"79206.20","highPrice24h":"79266.30","lowPrice24h":"65076.90",'
    '"prevPrice1h":"66666.60","markPrice":"66666.60","indexPrice":"115418.19",'
    '"openInterest":"492373.72","openInterestValue":"32824881841.75",'
    '"turnover24h":"4936790807.6521","volume24h":"73191.3870","fundingIntervalHour":"8",'
    '"fundingCap":"0.005","nextFundingTime":"1760342400000","fundingRate":"-0.005",'
    '"bid1Price":"66666.60","bid1Size":"23789.165","ask1Price":"66666.70",'
    '"ask1Size":"23775.469"},"cs":9532239429,"ts":1760325052630}'
)
DELTA_BID_ONLY = (
    '{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT",'
    '"bid1Price":"66666.50","bid1Size":"1.496"},"cs":9532239430,"ts":1760325052730}'
)
DELTA_PRICE = (
    '{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT",'
    '"lastPrice":"66670.10","tickDirection":"PlusTick","markPrice":"66668.00",'
    '"price24hPcnt":"-0.158271","turnover24h":"4936857477.7521","volume24h":"73192.3870"},'
    '"cs":9532239431,"ts":1760325052830}'
)
SPOT_SNAPSHOT = (
    '{"topic":"tickers.BTCUSDT","ts":1673853746003,"type":"snapshot","cs":2588407389,'
    '"data":{"symbol":"BTCUSDT","lastPrice":"21109.77","highPrice24h":"21426.99",'
    '"lowPrice24h":"20575","prevPrice24h":"20704.93","volume24h":"6780.866843",'
    '"turnover24h":"141946527.22907118","price24hPcnt":"0.0196",'
    '"usdIndexPrice":"21120.2400136"}}'
)
KLINE = (
    '{"topic":"kline.5.BTCUSDT","data":[{"start":1672324800000,"end":1672325099999,'
    '"interval":"5","open":"16649.5","close":"16677","high":"16677","low":"16608",'
    '"volume":"2.081","turnover":"34666.4005","confirm":false,"timestamp":1672324988882}],'
    '"ts":1672324988882,"type":"snapshot"}'
)
TRADES = (
    '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":['
    '{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick",'
    '"i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false,"seq":1783284617},'
    '{"T":1672304486866,"s":"BTCUSDT","S":"Sell","v":"1.250","p":"16578.00","L":"MinusTick",'
    '"i":"5b1e0a6c-1f3f-5a39-8d67-0c4c9a55e7b2","BT":true,"seq":1783284618}]}'
)


def frame(text: str) -> DataFrame:
    parsed = parse_frame(text)
    assert isinstance(parsed, DataFrame)
    return parsed


# -- topics ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "topic", "category"),
    [
        ("ticker:BTCUSDT", "tickers.BTCUSDT", "linear"),
        ("trade:ETHUSDT", "publicTrade.ETHUSDT", "linear"),
        ("kline:1h:BTCUSDT", "kline.60.BTCUSDT", "linear"),
        ("ticker:BTCUSDT@spot", "tickers.BTCUSDT", "spot"),
        ("kline:1M:ETHUSDT@spot", "kline.M.ETHUSDT", "spot"),
        ("book:50:BTCUSDT", "orderbook.50.BTCUSDT", "linear"),
        ("orderbook.500.BTCUSDT", "orderbook.500.BTCUSDT", "linear"),
        ("book:1:ETHUSDT@spot", "orderbook.1.ETHUSDT", "spot"),
        ("book:200:ETHUSDT@spot", "orderbook.200.ETHUSDT", "spot"),
        ("liquidation:BTCUSDT", "allLiquidation.BTCUSDT", "linear"),
        ("allLiquidation.ETHUSDT", "allLiquidation.ETHUSDT", "linear"),
    ],
)
def test_channel_to_topic_and_back(arg: str, topic: str, category: str) -> None:
    grammar = ChannelGrammar()
    channel = grammar.parse(arg)
    assert topic_for(channel).name == topic
    assert category_of(channel) == category
    assert parse_topic(topic) == topic_for(channel)
    assert channel_for(parse_topic(topic), category_of(channel)) == channel


@pytest.mark.parametrize("interval", list(KLINE_INTERVALS))
def test_all_13_kline_intervals_round_trip(interval: str) -> None:
    channel = ChannelGrammar().parse(f"kline:{interval}:BTCUSDT")
    bybit = KLINE_INTERVALS[interval]
    assert topic_for(channel).name == f"kline.{bybit}.BTCUSDT"
    text = KLINE.replace("kline.5.", f"kline.{bybit}.").replace(
        '"interval":"5"', f'"interval":"{bybit}"'
    )
    [kline] = parse_klines(frame(text))
    assert kline["interval"] == interval  # the interval asked for is the one delivered


def test_thirteen_intervals() -> None:
    assert len(KLINE_INTERVALS) == 13


def test_non_market_channel_has_no_topic() -> None:
    with pytest.raises(SourceError, match="ticker, trade, kline, book and liquidation"):
        topic_for(ChannelGrammar().parse("swap:eth"))


def test_spot_has_no_liquidation_stream() -> None:
    channel = ChannelGrammar().parse("liquidation:BTCUSDT@spot")
    with pytest.raises(SourceError) as info:
        topic_for(channel, category_of(channel))
    assert str(info.value) == (
        "Bybit has no liquidations on spot (liquidation:BTCUSDT@spot): its allLiquidation "
        "stream covers USDT, USDC and inverse contracts. Use liquidation:BTCUSDT.")
    linear = ChannelGrammar().parse("liquidation:BTCUSDT")
    assert topic_for(linear, "linear").name == "allLiquidation.BTCUSDT"


@pytest.mark.parametrize("text", ["orderbook.7.BTCUSDT", "orderbook.50", "allLiquidation",
                                  "kline.7.BTCUSDT", "tickers", "x.y.z"])
def test_parse_topic_refuses_others(text: str) -> None:
    with pytest.raises(ValueError, match="not a Bybit"):
        parse_topic(text)


# -- tickers ---------------------------------------------------------------------------------


def test_linear_snapshot_is_normalized_exactly() -> None:
    book = TickerBook()
    data = book.apply(frame(LINEAR_SNAPSHOT))
    assert data == {
        "symbol": "BTCUSDT",
        "price": "66666.60",
        "markPrice": "66666.60",
        "indexPrice": "115418.19",
        "high24h": "79266.30",
        "low24h": "65076.90",
        "prevPrice24h": "79206.20",
        "volume24h": "73191.3870",
        "turnover24h": "4936790807.6521",
        "change24hPercent": "-15.8315",  # Bybit's fraction -0.158315 as a percent, exact
        "tickDirection": "MinusTick",
        "bid": {"price": "66666.60", "size": "23789.165"},
        "ask": {"price": "66666.70", "size": "23775.469"},
        "openInterest": "492373.72",
        "openInterestValue": "32824881841.75",
        "fundingRate": "-0.005",
        "nextFundingTime": "1760342400000",
    }
    assert list(data) == [
        "symbol", "price", "markPrice", "indexPrice", "high24h", "low24h", "prevPrice24h",
        "volume24h", "turnover24h", "change24hPercent", "tickDirection", "bid", "ask",
        "openInterest", "openInterestValue", "fundingRate", "nextFundingTime",
    ]  # fmt: skip


def test_delta_changing_only_bid_keeps_everything_else() -> None:
    book = TickerBook()
    before = book.apply(frame(LINEAR_SNAPSHOT))
    after = book.apply(frame(DELTA_BID_ONLY))
    assert after["bid"] == {"price": "66666.50", "size": "1.496"}
    assert after["price"] == "66666.60"  # not "0", not null
    assert after["ask"] == before["ask"]
    assert {k: v for k, v in after.items() if k != "bid"} == {
        k: v for k, v in before.items() if k != "bid"
    }


def test_deltas_merge_in_order() -> None:
    book = TickerBook()
    book.apply(frame(LINEAR_SNAPSHOT))
    book.apply(frame(DELTA_BID_ONLY))
    data = book.apply(frame(DELTA_PRICE))
    assert data["price"] == "66670.10"
    assert data["markPrice"] == "66668.00"
    assert data["tickDirection"] == "PlusTick"
    assert data["change24hPercent"] == "-15.8271"
    assert data["volume24h"] == "73192.3870"
    assert data["bid"] == {"price": "66666.50", "size": "1.496"}  # from the earlier delta
    assert data["openInterest"] == "492373.72"  # from the snapshot
    assert book.get("BTCUSDT") == data


def test_delta_before_snapshot_is_malformed() -> None:
    with pytest.raises(MalformedFrameError, match="before any snapshot"):
        TickerBook().apply(frame(DELTA_BID_ONLY))


def test_new_snapshot_replaces_state_and_clear_forgets() -> None:
    book = TickerBook()
    book.apply(frame(LINEAR_SNAPSHOT))
    book.apply(frame(DELTA_BID_ONLY))
    again = book.apply(frame(LINEAR_SNAPSHOT))
    assert again["bid"] == {"price": "66666.60", "size": "23789.165"}
    book.clear()
    assert book.get("BTCUSDT") is None
    with pytest.raises(MalformedFrameError):
        book.apply(frame(DELTA_PRICE))


def test_bad_delta_changes_nothing() -> None:
    book = TickerBook()
    book.apply(frame(LINEAR_SNAPSHOT))
    bad = DELTA_BID_ONLY.replace('"bid1Price":"66666.50"', '"bid1Price":66666.5')
    with pytest.raises(MalformedFrameError, match="bid1Price"):
        book.apply(frame(bad))
    state = book.get("BTCUSDT")
    assert state is not None
    assert state["bid"] == {"price": "66666.60", "size": "23789.165"}


def test_a_number_out_of_decimal_range_is_refused_and_changes_nothing() -> None:
    """A ``price24hPcnt`` at Decimal's exponent limit overflows when made a percentage: the
    frame is refused with an error the connection counts and drops (FRAME_ERRORS), and the
    state stays as it was, so the next delta still merges."""
    book = TickerBook()
    book.apply(frame(LINEAR_SNAPSHOT))
    before = book.get("BTCUSDT")
    huge = DELTA_BID_ONLY.replace('"symbol":"BTCUSDT",',
                                  '"symbol":"BTCUSDT","price24hPcnt":"1E+999998",')
    assert huge != DELTA_BID_ONLY
    with pytest.raises(FRAME_ERRORS):
        book.apply(frame(huge))
    assert book.get("BTCUSDT") == before
    assert book.apply(frame(DELTA_BID_ONLY))["bid"]["price"] == "66666.50"


def test_spot_snapshot_missing_fields_are_null_not_zero() -> None:
    data = TickerBook().apply(frame(SPOT_SNAPSHOT))
    assert data["price"] == "21109.77"
    assert data["low24h"] == "20575"  # exactly as sent, no padding
    assert data["change24hPercent"] == "1.96"
    for missing in (
        "markPrice",
        "indexPrice",
        "tickDirection",
        "openInterest",
        "openInterestValue",
        "fundingRate",
        "nextFundingTime",
    ):
        assert data[missing] is None, missing  # type: ignore[literal-required]
    assert data["bid"] == {"price": None, "size": None}
    assert data["ask"] == {"price": None, "size": None}
    flat = [v for k, v in data.items() if k not in ("bid", "ask")]
    flat += [*data["bid"].values(), *data["ask"].values()]
    assert "0" not in flat


def test_every_spot_frame_is_a_full_snapshot() -> None:
    book = TickerBook()
    book.apply(frame(SPOT_SNAPSHOT))
    second = book.apply(frame(SPOT_SNAPSHOT.replace('"lastPrice":"21109.77",', "")))
    assert second["price"] is None  # a snapshot is whole: nothing carried over


# -- klines and trades -----------------------------------------------------------------------


def test_kline_normalized() -> None:
    assert parse_klines(frame(KLINE)) == [
        {
            "symbol": "BTCUSDT",
            "interval": "5m",
            "openTime": 1672324800000,
            "closeTime": 1672325099999,
            "open": "16649.5",
            "high": "16677",
            "low": "16608",
            "close": "16677",
            "volume": "2.081",
            "turnover": "34666.4005",
            "confirmed": False,
        }
    ]


def test_kline_with_other_interval_than_topic_is_malformed() -> None:
    with pytest.raises(MalformedFrameError, match="interval"):
        parse_klines(frame(KLINE.replace('"interval":"5"', '"interval":"1"')))


def test_trades_list() -> None:
    trades = parse_trades(frame(TRADES))
    assert trades == [
        {"id": "20f43950-d8dd-5b31-9112-a178eb6023af", "symbol": "BTCUSDT", "price": "16578.50",
         "quantity": "0.001", "side": "buy", "time": 1672304486865, "isBlockTrade": False},
        {"id": "5b1e0a6c-1f3f-5a39-8d67-0c4c9a55e7b2", "symbol": "BTCUSDT", "price": "16578.00",
         "quantity": "1.250", "side": "sell", "time": 1672304486866, "isBlockTrade": True},
    ]  # fmt: skip


# -- control frames --------------------------------------------------------------------------


def test_subscribe_ack() -> None:
    ack = parse_frame(
        '{"success":true,"ret_msg":"","conn_id":"2324d924-aa4d-45b0-a858-7b8be29ab52b",'
        '"req_id":"sub-1","op":"subscribe"}'
    )
    assert ack == Ack("subscribe", True, "", "sub-1", "2324d924-aa4d-45b0-a858-7b8be29ab52b")


def test_subscribe_refusal() -> None:
    ack = parse_frame(
        '{"success":false,"ret_msg":"error:handler not found,topic:tickers.NOPEUSDT",'
        '"conn_id":"2324d924-aa4d-45b0-a858-7b8be29ab52b","req_id":"sub-2","op":"subscribe"}'
    )
    assert isinstance(ack, Ack)
    assert not ack.success
    assert ack.ret_msg == "error:handler not found,topic:tickers.NOPEUSDT"
    assert ack.req_id == "sub-2"


def test_unsubscribe_ack() -> None:
    ack = parse_frame('{"success":true,"ret_msg":"","conn_id":"c","req_id":"7","op":"unsubscribe"}')
    assert ack == Ack("unsubscribe", True, "", "7", "c")


@pytest.mark.parametrize(
    "text",
    [
        '{"success":true,"ret_msg":"pong","conn_id":"465772b1-7630-4fdc-a492-e003e6f0f260",'
        '"req_id":"100001","op":"ping"}',
        '{"req_id":"100001","op":"pong","args":["1675418560633"],"conn_id":"c"}',
        '{"success":true,"ret_msg":"pong","conn_id":"c","op":"ping"}',
    ],
)
def test_pongs(text: str) -> None:
    assert isinstance(parse_frame(text), Pong)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "not JSON"),
        ("[1,2]", "not an object"),
        ('{"hello":"world"}', "neither"),
        ('{"topic":"tickers.BTCUSDT","type":"delta","data":{}}', "ts"),
        ('{"topic":"tickers.BTCUSDT","type":"other","ts":1,"data":{}}', "type"),
        ('{"topic":"orderbook.7.BTCUSDT","type":"delta","ts":1,"data":{}}', "not a Bybit"),
        ('{"topic":42,"type":"delta","ts":1,"data":{}}', "topic"),
        ('{"topic":"tickers.BTCUSDT","type":"delta","ts":1}', "without 'data'"),
    ],
)
def test_malformed_frames(text: str, why: str) -> None:
    with pytest.raises(MalformedFrameError, match=why) as info:
        parse_frame(text)
    assert isinstance(info.value, SourceError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "text",
    [
        '{"topic":"tickers.BTCUSDT","type":"snapshot","ts":1,"data":"x"}',
        '{"topic":"tickers.BTCUSDT","type":"snapshot","ts":1,"data":{"symbol":"ETHUSDT"}}',
    ],
)
def test_malformed_ticker_payloads(text: str) -> None:
    with pytest.raises(MalformedFrameError):
        TickerBook().apply(frame(text))


@pytest.mark.parametrize(
    "text",
    [
        '{"topic":"kline.5.BTCUSDT","type":"snapshot","ts":1,"data":{}}',
        KLINE.replace('"close":"16677",', ""),
        KLINE.replace('"start":1672324800000', '"start":"soon"'),
        KLINE.replace('"confirm":false', '"confirm":"no"'),
        KLINE.replace('"open":"16649.5"', '"open":16649.5'),
    ],
)
def test_malformed_klines(text: str) -> None:
    with pytest.raises(MalformedFrameError):
        parse_klines(frame(text))


def test_malformed_trades() -> None:
    with pytest.raises(MalformedFrameError, match="'p'"):
        parse_trades(frame(TRADES.replace('"p":"16578.50"', '"p":16578.5')))
    with pytest.raises(MalformedFrameError, match="'T'"):
        parse_trades(frame(TRADES.replace('"T":1672304486865,', "")))


def test_payload_of_wrong_kind_is_refused() -> None:
    with pytest.raises(MalformedFrameError):
        parse_trades(frame(KLINE))
    with pytest.raises(MalformedFrameError):
        parse_klines(frame(TRADES))
    with pytest.raises(MalformedFrameError):
        TickerBook().apply(frame(KLINE))


# -- requests --------------------------------------------------------------------------------


def test_25_args_make_3_requests_of_at_most_10() -> None:
    ids = itertools.count(1)
    topics = [f"tickers.SYM{i}USDT" for i in range(25)]
    requests = build_requests("subscribe", topics, lambda: str(next(ids)))
    assert [len(r["args"]) for r in requests] == [10, 10, 5]
    assert MAX_ARGS_PER_REQUEST == 10
    assert [r["req_id"] for r in requests] == ["1", "2", "3"]
    assert all(r["op"] == "subscribe" for r in requests)
    assert [t for r in requests for t in r["args"]] == topics
    assert list(requests[0]) == ["req_id", "op", "args"]


def test_unsubscribe_request_and_empty() -> None:
    assert build_requests("unsubscribe", ["tickers.BTCUSDT"], lambda: "u1") == [
        {"req_id": "u1", "op": "unsubscribe", "args": ["tickers.BTCUSDT"]}
    ]
    assert build_requests("subscribe", [], lambda: "never") == []


def test_ping() -> None:
    assert orjson.dumps(ping_request()) == b'{"op":"ping"}'
    assert ping_request("100001") == {"req_id": "100001", "op": "ping"}


# -- liquidations (docs: v5/websocket/public/all-liquidation, its response example) ---------

LIQUIDATIONS = (
    '{"topic":"allLiquidation.ROSEUSDT","type":"snapshot","ts":1739502303204,"data":['
    '{"T":1739502302929,"s":"ROSEUSDT","S":"Sell","v":"20000","p":"0.04499"},'
    '{"T":1739502302931,"s":"ROSEUSDT","S":"Buy","v":"1.500","p":"0.04510"}]}'
)


def test_liquidations_one_per_item_with_the_strings_as_sent() -> None:
    assert parse_liquidations(frame(LIQUIDATIONS)) == [
        {"symbol": "ROSEUSDT", "side": "Sell", "price": "0.04499", "size": "20000",
         "time": 1739502302929},
        {"symbol": "ROSEUSDT", "side": "Buy", "price": "0.04510", "size": "1.500",
         "time": 1739502302931},
    ]


@pytest.mark.parametrize("text", [
    LIQUIDATIONS.replace('"p":"0.04499"', '"p":0.04499'),  # a float: digits may be lost
    LIQUIDATIONS.replace('"v":"20000",', ""),
    LIQUIDATIONS.replace('"s":"ROSEUSDT","S":"Sell"', '"s":"BTCUSDT","S":"Sell"'),
    LIQUIDATIONS.replace('"T":1739502302929', '"T":"soon"'),
])
def test_malformed_liquidations(text: str) -> None:
    with pytest.raises(MalformedFrameError):
        parse_liquidations(frame(text))
    with pytest.raises(MalformedFrameError):
        parse_liquidations(frame(TRADES))
