"""Bybit order book validation, sans-I/O: literal frames in, exact publications out.

Frame shapes from the Bybit docs (v5/websocket/public/orderbook, its response examples).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptowire.books import OrderBook
from cryptowire.sources.bybit.book import BREAK_CAUSES, TopicBook
from cryptowire.sources.bybit.parser import DataFrame, parse_frame
from cryptowire.sources.exchange.codec import BookBreak, BookChange

TOPIC = "orderbook.50.BTCUSDT"


def frame(kind: str, u: int, bids: list[list[Any]], asks: list[list[Any]], *,
          symbol: str = "BTCUSDT", ts: int = 1687940967466, topic: str = TOPIC) -> DataFrame:
    text = orjson.dumps({"topic": topic, "type": kind, "ts": ts,
                         "data": {"s": symbol, "b": bids, "a": asks, "u": u, "seq": 66544703342},
                         "cts": ts - 2})
    parsed = parse_frame(text)
    assert isinstance(parsed, DataFrame)
    return parsed


SNAPSHOT_BIDS = [["30247.20", "30.028"], ["30245.40", "0.224"], ["30240.00", "1.5"]]
SNAPSHOT_ASKS = [["30248.70", "0.010"], ["30249.30", "0.892"], ["30252.50", "4.591"]]


def live_book(depth: int = 50, u: int = 177400506) -> TopicBook:
    book = TopicBook(TOPIC, "BTCUSDT", depth)
    change = book.apply(frame("snapshot", u, SNAPSHOT_BIDS, SNAPSHOT_ASKS))
    assert isinstance(change, BookChange)
    return book


def test_snapshot_publishes_the_whole_book_best_first_at_u() -> None:
    book = TopicBook(TOPIC, "BTCUSDT", 50)
    # Bybit sorts bids descending and asks ascending; the book re-sorts whatever it gets.
    change = book.apply(frame("snapshot", 18521288, SNAPSHOT_BIDS[::-1], SNAPSHOT_ASKS))
    assert change == BookChange("snapshot", {"symbol": "BTCUSDT", "bids": SNAPSHOT_BIDS,
                                             "asks": SNAPSHOT_ASKS, "venueSeq": 18521288})
    assert book.u == 18521288


def test_delta_is_published_as_sent_with_the_next_u() -> None:
    book = live_book()
    bids = [["30247.20", "30.028"], ["30245.40", "0"], ["30242.10", "1.593"]]
    asks = [["30248.70", "0"], ["30249.50", "1.778"], ["30249.60", "0"]]
    change = book.apply(frame("delta", 177400507, bids, asks))
    assert change == BookChange("delta", {"symbol": "BTCUSDT", "bids": bids, "asks": asks,
                                          "venueSeq": 177400507})
    assert book.book.levels("bids") == [["30247.20", "30.028"], ["30242.10", "1.593"],
                                        ["30240.00", "1.5"]]
    assert book.book.levels("asks") == [["30249.30", "0.892"], ["30249.50", "1.778"],
                                        ["30252.50", "4.591"]]


def test_levels_the_depth_cut_removes_are_appended_as_removals() -> None:
    book = live_book(depth=3)
    change = book.apply(frame("delta", 177400507, [["30246.00", "2"]], []))
    assert isinstance(change, BookChange)
    assert change.data["bids"] == [["30246.00", "2"], ["30240.00", "0"]]
    assert change.data["asks"] == []


def test_snapshot_is_cut_at_the_depth() -> None:
    book = TopicBook("orderbook.1.BTCUSDT", "BTCUSDT", 1)
    change = book.apply(frame("snapshot", 9, SNAPSHOT_BIDS, SNAPSHOT_ASKS,
                              topic="orderbook.1.BTCUSDT"))
    assert isinstance(change, BookChange)
    assert (change.data["bids"], change.data["asks"]) == ([SNAPSHOT_BIDS[0]], [SNAPSHOT_ASKS[0]])


def test_a_u_gap_breaks_and_nothing_is_published_until_the_next_snapshot() -> None:
    book = live_book(u=100)
    change = book.apply(frame("delta", 102, [["30246.00", "2"]], []))
    assert isinstance(change, BookBreak)
    assert change.cause == "sequence"
    assert change.reason == (f"{TOPIC}: update id 102 after 100 (expected 101); "
                             "re-synchronising from a new snapshot")
    assert len(book.book) == 0 and book.u is None
    # Deltas still in flight (before the re-subscribe answers) are dropped silently.
    assert book.apply(frame("delta", 103, [["30246.00", "3"]], [])) is None
    assert book.apply(frame("delta", 101, [["30246.00", "3"]], [])) is None
    fresh = book.apply(frame("snapshot", 104, SNAPSHOT_BIDS, SNAPSHOT_ASKS))
    assert isinstance(fresh, BookChange) and fresh.type == "snapshot"
    assert fresh.data["venueSeq"] == 104
    assert isinstance(book.apply(frame("delta", 105, [], [["30252.50", "0"]])), BookChange)


@pytest.mark.parametrize("kind", ["snapshot", "delta"])
def test_u_1_is_a_restart_that_overwrites_the_book(kind: str) -> None:
    book = live_book(u=5000)
    change = book.apply(frame(kind, 1, [["100.0", "1"]], [["101.0", "2"]]))
    assert change == BookChange("snapshot", {"symbol": "BTCUSDT", "bids": [["100.0", "1"]],
                                             "asks": [["101.0", "2"]], "venueSeq": 1})
    assert isinstance(book.apply(frame("delta", 2, [["99.5", "1"]], [])), BookChange)


def test_a_new_snapshot_resets_whatever_its_u() -> None:
    book = live_book(u=5000)
    change = book.apply(frame("snapshot", 7, [["100.0", "1"]], []))
    assert isinstance(change, BookChange) and change.data["bids"] == [["100.0", "1"]]
    assert change.data["asks"] == [] and book.u == 7


def test_a_delta_before_any_snapshot_is_a_break() -> None:
    book = TopicBook(TOPIC, "BTCUSDT", 50)
    change = book.apply(frame("delta", 8, [["1.0", "1"]], []))
    assert isinstance(change, BookBreak) and change.cause == "no_snapshot"
    assert "a delta (u=8) before any snapshot" in change.reason


def test_reset_for_a_new_socket_waits_for_a_snapshot() -> None:
    book = live_book(u=10)
    book.reset()
    change = book.apply(frame("delta", 11, [["1.0", "1"]], []))
    assert isinstance(change, BookBreak) and change.cause == "no_snapshot"


@pytest.mark.parametrize(("bids", "asks"), [
    ([["30246.00", 2.5]], []),  # a float: refused, never turned into a string
    ([["30246.00"]], []),
    ([], [["abc", "1"]]),
    ([], [["-1", "1"]]),
    ([], "not a list"),
])
def test_a_malformed_delta_is_a_break(bids: Any, asks: Any) -> None:
    book = live_book()
    change = book.apply(frame("delta", 177400507, bids, asks))
    assert isinstance(change, BookBreak) and change.cause == "malformed"
    assert book.u is None


def test_malformed_frame_fields_are_a_break() -> None:
    assert isinstance(bad := live_book().apply(frame("delta", 177400507, [], [],
                                                     symbol="ETHUSDT")), BookBreak)
    assert bad.cause == "malformed" and "symbol 'ETHUSDT'" in bad.reason
    for u in (0, "177400507", True):
        change = live_book().apply(frame("delta", u, [], []))  # type: ignore[arg-type]
        assert isinstance(change, BookBreak) and change.cause == "malformed"


def test_a_crossed_delta_is_a_break_never_published() -> None:
    book = live_book()
    change = book.apply(frame("delta", 177400507, [["30248.70", "1.000"]], []))
    assert change == BookBreak("crossed", (
        f"{TOPIC}: crossed book at update 177400507 (best bid 30248.70 >= best ask 30248.70); "
        "re-synchronising from a new snapshot"))
    assert len(book.book) == 0


def test_a_crossed_snapshot_is_a_break() -> None:
    book = TopicBook(TOPIC, "BTCUSDT", 50)
    change = book.apply(frame("snapshot", 3, [["101", "1"]], [["100", "1"]]))
    assert isinstance(change, BookBreak) and change.cause == "crossed"
    assert book.waiting


def test_break_causes_are_the_documented_labels() -> None:
    assert BREAK_CAUSES == ("sequence", "no_snapshot", "malformed", "crossed")


# -- property: a client applying what is published holds the validated book, never crossed --

PRICES = [f"{100 + i * Decimal('0.5')}" for i in range(40)]
level = st.tuples(st.sampled_from(PRICES), st.sampled_from(["0", "0.000", "1", "2.50", "10"]))
delta = st.tuples(st.lists(level, max_size=6), st.lists(level, max_size=6),
                  st.sampled_from([0, 0, 0, 0, 1, 2]))  # how far u jumps: 0 = the next u


@given(st.lists(delta, max_size=40), st.sampled_from([1, 3, 50]))
@settings(max_examples=150, deadline=None)
def test_published_stream_rebuilds_the_venue_book(deltas: list[Any], depth: int) -> None:
    book = TopicBook(TOPIC, "BTCUSDT", depth)
    # Bids 100..109.5, asks 110..119.5: an uncrossed start; deltas may cross it.
    bids = [[p, "1"] for p in PRICES[:20]]
    asks = [[p, "1"] for p in PRICES[20:]]
    client: OrderBook | None = None
    u = 1000
    book.apply(frame("snapshot", u, bids, asks))
    client = OrderBook(depth)
    client.snapshot(bids, asks)
    # A naive reference (a dict per side, sorted on Decimal) for the depth that never cuts.
    start = {"bids": {Decimal(p): s for p, s in bids}, "asks": {Decimal(p): s for p, s in asks}}
    naive = {side: dict(levels) for side, levels in start.items()}
    for b, a, jump in deltas:
        u += 1 + jump
        change = book.apply(frame("delta", u, [list(x) for x in b], [list(x) for x in a]))
        if isinstance(change, BookBreak):
            client = None  # the gap: the client drops its book
            naive = {side: dict(levels) for side, levels in start.items()}
            u += 1
            change = book.apply(frame("snapshot", u, bids, asks))
        if change is None:
            continue
        assert isinstance(change, BookChange)
        if change.type == "snapshot":
            client = OrderBook(depth)
            client.snapshot(change.data["bids"], change.data["asks"])
        else:
            assert client is not None, "a delta after a gap, before any snapshot"
            client.apply(change.data["bids"], change.data["asks"])
            for side, levels in (("bids", b), ("asks", a)):
                for price, size in levels:
                    if Decimal(size) == 0:
                        naive[side].pop(Decimal(price), None)
                    else:
                        naive[side][Decimal(price)] = size
        if depth == 50:  # more than every price: nothing is cut
            for side, reverse in (("bids", True), ("asks", False)):
                want = [Decimal(p) for p in sorted(naive[side], reverse=reverse)]
                assert [Decimal(p) for p, _ in client.levels(side)] == want
        assert not client.crossed()
        assert client.levels("bids") == book.book.levels("bids")
        assert client.levels("asks") == book.book.levels("asks")
        assert len(client.levels("bids")) <= depth
