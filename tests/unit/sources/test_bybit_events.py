"""A Bybit data frame -> events, sans-I/O (literal frames in, exact events out)."""

from __future__ import annotations

import orjson

from cryptowire.sources.bybit.events import events_of, reconnect_gaps
from cryptowire.sources.bybit.parser import DataFrame, TickerBook, parse_frame
from cryptowire.sources.bybit.subscriptions import Subscription, SubscriptionTable
from cryptowire.sources.bybit.topics import parse_topic

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


def test_first_frame_is_the_snapshot_then_updates_for_every_channel() -> None:
    sub = Subscription(parse_topic("kline.5.BTCUSDT"), {"kline:5m:BTCUSDT": None, "alias": None})
    events = list(events_of(frame(KLINES), sub, TickerBook(), "linear", "bybit"))
    assert [(e.channel, e.type, e.data["close"]) for e in events] == [
        ("kline:5m:BTCUSDT", "snapshot", "16649.5"), ("alias", "snapshot", "16649.5"),
        ("kline:5m:BTCUSDT", "update", "16677"), ("alias", "update", "16677")]
    assert {e.ts_source for e in events} == {1672324988882}
    assert {e.source for e in events} == {"bybit"}
    assert (sub.fresh, sub.live) == (False, True)
    again = list(events_of(frame(KLINES), sub, TickerBook(), "linear", "bybit"))
    assert {e.type for e in again} == {"update"}


def test_a_channel_dropped_between_payloads_gets_no_more() -> None:
    sub = Subscription(parse_topic("kline.5.BTCUSDT"), {"a": None, "b": None})
    seen = []
    for event in events_of(frame(KLINES), sub, TickerBook(), "linear", "bybit"):
        seen.append(event.channel)
        sub.channels.pop("b", None)  # unsubscribed while the first event was being published
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
        sub = Subscription(frame(text).topic, {channel: None})
        first = list(events_of(frame(text), sub, TickerBook(), "linear", "bybit"))
        again = list(events_of(frame(text), sub, TickerBook(), "linear", "bybit"))
        assert first and {e.type for e in first + again} == {"update"}
        assert sub.live


def test_one_liquidation_event_per_item_with_exact_strings() -> None:
    sub = Subscription(parse_topic("allLiquidation.BTCUSDT"), {"liquidation:BTCUSDT": None})
    events = list(events_of(frame(LIQUIDATIONS), sub, TickerBook(), "linear", "bybit"))
    assert [(e.channel, e.type, e.data, e.ts_source) for e in events] == [
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


async def test_book_frames_become_snapshot_delta_and_gap_with_the_break_left_to_act_on(
) -> None:
    table = SubscriptionTable()
    sub = table.add(parse_topic("orderbook.50.BTCUSDT"), "book:50:BTCUSDT")
    sub.channels["orderbook.50.BTCUSDT"] = None
    assert sub.book is not None and sub.book.depth == 50

    def run(text: str) -> list[tuple[str, str, object]]:
        out = events_of(frame(text), sub, TickerBook(), "linear", "bybit")
        return [(e.channel, e.type, e.data) for e in out]

    snap = {"symbol": "BTCUSDT", "bids": [["100.5", "1"]], "asks": [["101.0", "2"]],
            "venueSeq": 7}
    assert run(book_frame("snapshot", 7, [["100.5", "1"]], [["101.0", "2"]])) == [
        ("book:50:BTCUSDT", "snapshot", snap), ("orderbook.50.BTCUSDT", "snapshot", snap)]
    delta = {"symbol": "BTCUSDT", "bids": [["100.5", "0"]], "asks": [], "venueSeq": 8}
    assert run(book_frame("delta", 8, [["100.5", "0"]], [])) == [
        ("book:50:BTCUSDT", "delta", delta), ("orderbook.50.BTCUSDT", "delta", delta)]
    assert sub.broken is None
    gap = run(book_frame("delta", 10, [["100.0", "1"]], []))
    reason = ("orderbook.50.BTCUSDT: update id 10 after 8 (expected 9); re-synchronising "
              "from a new snapshot")
    assert gap == [(ch, "gap", {"reason": reason}) for ch in sub.channels]
    assert sub.broken is not None and sub.broken.cause == "sequence"
    assert run(book_frame("delta", 11, [["100.0", "1"]], [])) == []  # until the snapshot
    # The connection re-subscribes: unsubscribe then subscribe, on the same socket.
    requests = table.resubscribe(sub)
    assert [(r["op"], r["args"]) for r in requests] == [
        ("unsubscribe", ["orderbook.50.BTCUSDT"]), ("subscribe", ["orderbook.50.BTCUSDT"])]
    assert sub.sent and sub.waiter is not None
    assert [t for _, t, _ in run(book_frame("snapshot", 12, [["99", "1"]], []))] == [
        "snapshot", "snapshot"]
    # A new socket: the book waits for the snapshot Bybit sends after the subscribe.
    sub.broken = None
    table.new_socket()
    assert sub.book.u is None and sub.broken is None
    table.resolve_pending()


def test_reconnect_gaps_once_per_channel_of_the_topics_that_owe_one() -> None:
    owing = Subscription(parse_topic("tickers.BTCUSDT"), {"a": None, "b": None}, gap_since=5)
    clean = Subscription(parse_topic("tickers.ETHUSDT"), {"c": None})
    events = reconnect_gaps([owing, clean], "closed", "bybit")
    assert [(e.channel, e.type, e.data) for e in events] == [
        (ch, "gap", {"reason": "upstream reconnected: closed", "since": 5}) for ch in "ab"]
    assert owing.gap_since is None
    assert reconnect_gaps([owing], "closed", "bybit") == []
