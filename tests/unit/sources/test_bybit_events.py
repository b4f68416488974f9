"""A Bybit data frame -> publications of its topic's state, sans-I/O (literal frames in,
exact publications out)."""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from cryptowire.sources.bybit.codec import BybitCodec, BybitState
from cryptowire.sources.bybit.parser import DataFrame, parse_frame
from cryptowire.sources.bybit.topics import Topic, parse_topic
from cryptowire.sources.exchange.codec import Ack, Data, Pong, Pub

KLINES = (
    '{"topic":"kline.5.BTCUSDT","ts":1672324988882,"type":"snapshot","data":['
    '{"start":1672324500000,"end":1672324799999,"interval":"5","open":"16600","close":"16649.5",'
    '"high":"16650","low":"16590","volume":"1.5","turnover":"24950","confirm":true,'
    '"timestamp":1672324800001},'
    '{"start":1672324800000,"end":1672325099999,"interval":"5","open":"16649.5","close":"16677",'
    '"high":"16677","low":"16608","volume":"2.081","turnover":"34666.4005","confirm":false,'
    '"timestamp":1672324988882}]}'
)


def frame(text: str) -> DataFrame:
    parsed = parse_frame(text)
    assert isinstance(parsed, DataFrame)
    return parsed


def state_of(topic: Topic, category: str = "linear") -> BybitState:
    return BybitState(topic, category)


def events_of(text: str, state: BybitState, channels: Mapping[str, None]) -> list[Pub]:
    [data] = BybitCodec().parse(text)
    assert isinstance(data, Data) and data.stream == frame(text).topic.name
    return list(state.apply(data, channels))


def test_first_frame_is_the_snapshot_then_updates_for_every_channel() -> None:
    state = state_of(parse_topic("kline.5.BTCUSDT"))
    channels = {"kline:5m:BTCUSDT": None, "alias": None}
    events = events_of(KLINES, state, channels)
    assert [(e.channel, e.type, e.data["close"]) for e in events] == [
        ("kline:5m:BTCUSDT", "snapshot", "16649.5"), ("alias", "snapshot", "16649.5"),
        ("kline:5m:BTCUSDT", "update", "16677"), ("alias", "update", "16677")]
    assert {e.ts for e in events} == {1672324988882}
    assert state.fresh is False
    again = events_of(KLINES, state, channels)
    assert {e.type for e in again} == {"update"}
    state.reset(["kline.5.BTCUSDT"])  # a new socket: the next frame is the full state again
    assert events_of(KLINES, state, channels)[0].type == "snapshot"


def test_a_channel_dropped_between_payloads_gets_no_more() -> None:
    channels = {"a": None, "b": None}
    [data] = BybitCodec().parse(KLINES)
    assert isinstance(data, Data)
    seen = []
    for event in state_of(parse_topic("kline.5.BTCUSDT")).apply(data, channels):
        seen.append(event.channel)
        channels.pop("b", None)  # unsubscribed while the first event was being published
    assert seen == ["a", "b", "a"]


TRADES = (
    '{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":['
    '{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick",'
    '"i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false}]}'
)
LIQUIDATIONS = (
    '{"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1739502303204,"data":['
    '{"T":1739502302929,"s":"BTCUSDT","S":"Sell","v":"0.020","p":"96123.40"},'
    '{"T":1739502302931,"s":"BTCUSDT","S":"Buy","v":"1.500","p":"96130.00"}]}'
)


def test_event_channels_never_carry_snapshot() -> None:
    """PROTOCOLS.md 4.2: trades and liquidations are events; even the first frame after a
    subscribe (Bybit labels them all "snapshot") is an ``update``."""
    for text, channel in ((TRADES, "trade:BTCUSDT"), (LIQUIDATIONS, "liquidation:BTCUSDT")):
        state = state_of(frame(text).topic)
        first = events_of(text, state, {channel: None})
        again = events_of(text, state, {channel: None})
        assert first and {e.type for e in first + again} == {"update"}


def test_one_liquidation_event_per_item_with_exact_strings() -> None:
    state = state_of(parse_topic("allLiquidation.BTCUSDT"))
    events = events_of(LIQUIDATIONS, state, {"liquidation:BTCUSDT": None})
    assert [(e.channel, e.type, e.data, e.ts) for e in events] == [
        ("liquidation:BTCUSDT", "update", {"symbol": "BTCUSDT", "side": "Sell",
                                           "price": "96123.40", "size": "0.020",
                                           "time": 1739502302929}, 1739502303204),
        ("liquidation:BTCUSDT", "update", {"symbol": "BTCUSDT", "side": "Buy",
                                           "price": "96130.00", "size": "1.500",
                                           "time": 1739502302931}, 1739502303204)]


def book_frame(kind: str, u: int, bids: list[list[str]], asks: list[list[str]]) -> str:
    return orjson.dumps({"topic": "orderbook.50.BTCUSDT", "type": kind, "ts": 1000 + u,
                         "data": {"s": "BTCUSDT", "b": bids, "a": asks, "u": u, "seq": 7 + u},
                         "cts": 999 + u}).decode()


def test_book_frames_become_snapshot_delta_and_gap_with_the_break_left_to_act_on(
) -> None:
    state = state_of(parse_topic("orderbook.50.BTCUSDT"))
    channels = {"book:50:BTCUSDT": None, "orderbook.50.BTCUSDT": None}
    assert state.book is not None and state.book.depth == 50

    def run(text: str) -> list[tuple[str, str, object]]:
        return [(e.channel, e.type, e.data) for e in events_of(text, state, channels)]

    snap = {"symbol": "BTCUSDT", "bids": [["100.5", "1"]], "asks": [["101.0", "2"]],
            "venueSeq": 7}
    assert run(book_frame("snapshot", 7, [["100.5", "1"]], [["101.0", "2"]])) == [
        ("book:50:BTCUSDT", "snapshot", snap), ("orderbook.50.BTCUSDT", "snapshot", snap)]
    delta = {"symbol": "BTCUSDT", "bids": [["100.5", "0"]], "asks": [], "venueSeq": 8}
    assert run(book_frame("delta", 8, [["100.5", "0"]], [])) == [
        ("book:50:BTCUSDT", "delta", delta), ("orderbook.50.BTCUSDT", "delta", delta)]
    assert state.broken is None
    gap = run(book_frame("delta", 10, [["100.0", "1"]], []))
    reason = ("orderbook.50.BTCUSDT: update id 10 after 8 (expected 9); re-synchronising "
              "from a new snapshot")
    assert gap == [(ch, "gap", {"reason": reason}) for ch in channels]
    assert state.broken is not None and state.broken.cause == "sequence"
    assert run(book_frame("delta", 11, [["100.0", "1"]], [])) == []  # until the snapshot
    # The supervisor re-subscribes (the resync strategy "resubscribe"); Bybit's snapshot:
    assert [t for _, t, _ in run(book_frame("snapshot", 12, [["99", "1"]], []))] == [
        "snapshot", "snapshot"]
    # A new socket: the book waits for the snapshot Bybit sends after the subscribe.
    state.reset(["orderbook.50.BTCUSDT"])
    assert state.book.u is None


def test_acks_pongs_and_refusals_become_items() -> None:
    codec = BybitCodec()
    [ack] = codec.parse('{"success":true,"ret_msg":"","conn_id":"c1","req_id":"cw-1",'
                        '"op":"subscribe"}')
    assert ack == Ack("cw-1", True, "", "c1")
    [no] = codec.parse('{"success":false,"ret_msg":"error:handler not found,topic:tickers.X",'
                       '"req_id":"cw-2","op":"subscribe"}')
    assert no == Ack("cw-2", False, "error:handler not found,topic:tickers.X", None)
    [dup] = codec.parse('{"success":false,"ret_msg":"error:already subscribed,topic:'
                        'tickers.BTCUSDT","req_id":"cw-3","op":"subscribe"}')
    assert isinstance(dup, Ack) and dup.ok  # flowing, as asked
    [pong] = codec.parse('{"success":true,"ret_msg":"pong","conn_id":"c9","op":"ping"}')
    assert pong == Pong("c9")
