"""The channel state reducer (core/state.py): ticker/kline = the last full payload, book = the
OrderBook its snapshot/deltas build, unknown (never wrong) after a gap, a hole, a bad delta."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from cryptowire.core.state import ChannelState, StateStore, is_stateful
from cryptowire.events import Publication

BOOK = "book:50:BTCUSDT"


def pub(channel: str, offset: int, data: Any, type_: str = "update", epoch: str = "e1",
        ts: int = 0) -> Publication:
    return Publication(channel=channel, type=type_, epoch=epoch, offset=offset, ts=ts or offset,
                       ts_received=ts or offset, source="test", data_json=orjson.dumps(data))


def snap(offset: int, bids: list[list[str]], asks: list[list[str]], **kw: Any) -> Publication:
    data: dict[str, Any] = {"symbol": "BTCUSDT", "bids": bids, "asks": asks}
    if "seq" in kw:
        data["venueSeq"] = kw.pop("seq")
    return pub(BOOK, offset, data, "snapshot", **kw)


def delta(offset: int, bids: list[list[str]], asks: list[list[str]], **kw: Any) -> Publication:
    data: dict[str, Any] = {"symbol": "BTCUSDT", "bids": bids, "asks": asks}
    if "seq" in kw:
        data["venueSeq"] = kw.pop("seq")
    return pub(BOOK, offset, data, "delta", **kw)


def data_of(p: Publication | None) -> Any:
    assert p is not None
    return orjson.loads(p.data_json)


def test_which_channels_have_a_state() -> None:
    assert is_stateful("ticker:BTCUSDT") and is_stateful("kline:1m:BTCUSDT@spot")
    assert is_stateful(BOOK)
    for name in ("trade:BTCUSDT", "liquidation:BTCUSDT", "app:x", "swap:eth:0xab", "pg:x"):
        assert not is_stateful(name)


def test_ticker_state_is_the_last_payload_at_its_offset() -> None:
    state = ChannelState("ticker:BTCUSDT")
    assert state.snapshot() is None
    state.apply(pub("ticker:BTCUSDT", 1, {"symbol": "BTCUSDT", "price": "1.10"}, "snapshot"))
    state.apply(pub("ticker:BTCUSDT", 2, {"symbol": "BTCUSDT", "price": "1.20"}))
    out = state.snapshot()
    assert out is not None
    assert (out.type, out.epoch, out.offset, out.source) == ("snapshot", "e1", 2, "test")
    assert out.data_json == b'{"symbol":"BTCUSDT","price":"1.20"}'
    # An older offset changes nothing; a gap keeps the last value but moves the offset.
    state.apply(pub("ticker:BTCUSDT", 1, {"price": "9"}))
    assert data_of(state.snapshot())["price"] == "1.20"
    state.apply(pub("ticker:BTCUSDT", 3, {"reason": "x"}, "gap"))
    assert state.snapshot() is not None and state.snapshot().offset == 3  # type: ignore[union-attr]
    assert data_of(state.snapshot())["price"] == "1.20"


def test_book_snapshot_then_deltas() -> None:
    state = ChannelState(BOOK)
    state.apply(snap(1, [["100.0", "1"], ["99.5", "2"]], [["100.5", "3"]], seq=10))
    state.apply(delta(2, [["99.5", "0"], ["99.0", "4"]], [["101", "1"]], seq=11))
    out = state.snapshot()
    assert out is not None and out.offset == 2 and out.type == "snapshot"
    assert data_of(out) == {"symbol": "BTCUSDT", "bids": [["100.0", "1"], ["99.0", "4"]],
                            "asks": [["100.5", "3"], ["101", "1"]], "venueSeq": 11}
    # A new snapshot replaces the book whole.
    state.apply(snap(3, [["50", "1"]], [["51", "1"]]))
    assert data_of(state.snapshot()) == {"symbol": "BTCUSDT", "bids": [["50", "1"]],
                                         "asks": [["51", "1"]]}


def test_a_book_is_unknown_after_a_gap_until_the_next_snapshot() -> None:
    state = ChannelState(BOOK)
    state.apply(snap(1, [["100", "1"]], [["101", "1"]]))
    state.apply(pub(BOOK, 2, {"reason": "resync"}, "gap"))
    assert state.snapshot() is None
    gap = state.marker()
    assert gap is not None and gap.type == "gap" and gap.offset == 2
    state.apply(delta(3, [["100", "2"]], []))
    assert state.snapshot() is None  # a delta on an unknown book stays unknown
    state.apply(snap(4, [["90", "1"]], [["91", "1"]]))
    assert data_of(state.snapshot())["bids"] == [["90", "1"]]
    assert state.marker() is None


def test_a_book_is_never_wrong() -> None:
    """Before any snapshot, after a hole in the offsets, a new epoch, a malformed delta or a
    crossed book: no state rather than a wrong one."""
    state = ChannelState(BOOK)
    state.apply(delta(1, [["100", "1"]], []))
    assert state.snapshot() is None and state.marker() is None  # never known: no marker
    cases = [
        delta(3, [["100", "2"]], []),  # offset 2 is missing
        delta(2, [["100", "2"]], [], epoch="e2"),  # another epoch
        pub(BOOK, 2, {"bids": [["100"]], "asks": []}, "delta"),  # not [price, size]
        pub(BOOK, 2, {"bids": [["abc", "1"]], "asks": []}, "delta"),  # not a decimal
        pub(BOOK, 2, {"asks": []}, "delta"),  # no bids
        delta(2, [["102", "1"]], []),  # crossed: best bid above best ask
    ]
    for bad in cases:
        state = ChannelState(BOOK)
        state.apply(snap(1, [["100", "1"]], [["101", "1"]]))
        state.apply(bad)
        assert state.snapshot() is None, bad
        marker = state.marker()
        assert marker is not None and marker.type == "gap", bad


def test_a_redis_bus_gap_at_the_top_offset_clears_the_book() -> None:
    state = ChannelState(BOOK)
    state.apply(snap(5, [["100", "1"]], [["101", "1"]]))
    state.apply(pub(BOOK, 5, {"reason": "bus reconnected"}, "gap"))
    assert state.snapshot() is None


def test_the_snapshot_is_cached_until_the_next_publication() -> None:
    state = ChannelState(BOOK)
    state.apply(snap(1, [["100", "1"]], [["101", "1"]]))
    first = state.snapshot()
    assert state.snapshot() is first
    state.apply(delta(2, [["100", "2"]], []))
    assert state.snapshot() is not first


def test_depth_cut_follows_the_channel() -> None:
    state = ChannelState("book:1:BTCUSDT")
    state.apply(pub("book:1:BTCUSDT", 1, {"symbol": "BTCUSDT", "bids": [["1", "1"], ["0.5", "1"]],
                                          "asks": [["2", "1"]]}, "snapshot"))
    assert data_of(state.snapshot())["bids"] == [["1", "1"]]


def test_store_keeps_stateful_channels_only_and_is_bounded() -> None:
    store = StateStore(max_channels=2)
    store.apply(pub("trade:BTCUSDT", 1, {"id": "1"}))
    assert len(store) == 0
    for i, sym in enumerate(["AAUSDT", "BBUSDT", "CCUSDT"]):
        store.apply(pub(f"ticker:{sym}", i + 1, {"symbol": sym}))
    assert len(store) == 2
    assert store.snapshot("ticker:AAUSDT") is None  # the least recently published went
    assert data_of(store.snapshot("ticker:CCUSDT")) == {"symbol": "CCUSDT"}


# -- random delta streams against a naive reference book ----------------------------------


def reference_apply(book: dict[Decimal, str], levels: list[list[str]]) -> None:
    for price, size in levels:
        if Decimal(size) == 0:
            book.pop(Decimal(price), None)
        else:
            book[Decimal(price)] = size


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False))
def test_random_delta_streams_match_a_reference(rnd: random.Random) -> None:
    bids: dict[Decimal, str] = {Decimal("100") - i: "1" for i in range(5)}
    asks: dict[Decimal, str] = {Decimal("101") + i: "1" for i in range(5)}
    state = ChannelState("book:500:BTCUSDT")
    state.apply(pub("book:500:BTCUSDT", 1, {
        "symbol": "BTCUSDT", "bids": [[str(p), s] for p, s in sorted(bids.items())[::-1]],
        "asks": [[str(p), s] for p, s in sorted(asks.items())]}, "snapshot"))
    for offset in range(2, 40):
        d_bids = [[str(Decimal(rnd.randint(900, 1000)) / 10), rnd.choice(["0", "1.5", "2"])]
                  for _ in range(rnd.randint(0, 3))]
        d_asks = [[str(Decimal(rnd.randint(1010, 1100)) / 10), rnd.choice(["0", "0.25", "3"])]
                  for _ in range(rnd.randint(0, 3))]
        reference_apply(bids, d_bids)
        reference_apply(asks, d_asks)
        state.apply(pub("book:500:BTCUSDT", offset, {"symbol": "BTCUSDT", "bids": d_bids,
                                                     "asks": d_asks}, "delta"))
        got = data_of(state.snapshot())
        assert [[Decimal(p), s] for p, s in got["bids"]] == [
            [p, s] for p, s in sorted(bids.items(), reverse=True)]
        assert [[Decimal(p), s] for p, s in got["asks"]] == [
            [p, s] for p, s in sorted(asks.items())]
