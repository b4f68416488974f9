"""A Bybit data frame -> events, sans-I/O (literal frames in, exact events out)."""

from __future__ import annotations

from cryptowire.sources.bybit.events import events_of
from cryptowire.sources.bybit.parser import DataFrame, TickerBook, parse_frame
from cryptowire.sources.bybit.subscriptions import Subscription
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
