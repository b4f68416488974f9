"""``cryptowire.books.OrderBook``: property tests against a naive reference, and the rules one
by one (exact keys, spellings, removals, depth cut, all-or-nothing, exponent-free text)."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.unit.bookref import RefBook, RefError

from cryptowire.books import PRICE_MEMO, BookError, OrderBook

#: Deterministic under CI (the same examples every run), random on a developer's machine;
#: no example database written into the tree either way.
PROPERTY = settings(max_examples=250, deadline=None, database=None,
                    derandomize=os.environ.get("CI") == "true",
                    suppress_health_check=[HealthCheck.too_slow])

# -- strategies ---------------------------------------------------------------------------

@st.composite
def prices(draw: st.DrawFn) -> str:
    """A price on a 0.5 grid from 100 to 120, spelled in varied ways: "101", "101.0",
    "100.50", "100.500", sometimes in exponent notation ("1005.0E-1")."""
    halves = draw(st.integers(0, 40))
    whole, half = divmod(halves, 2)
    value = f"{100 + whole}.{5 if half else 0}"
    decimals = draw(st.integers(1 if half else 0, 3))
    text = f"{value}{'0' * (decimals - 1)}" if decimals else str(100 + whole)
    if draw(st.integers(0, 24)) == 0:
        digits = text.replace(".", "")
        shift = len(text) - text.index(".") - 1 if "." in text else 0
        text = f"{digits}E-{shift}" if shift else f"{digits}e+0"
    return text


SIZES = st.sampled_from(["0", "0.0", "0.000", "00", "0E-3", "1", "0.5", "2.500", "10",
                         "3.25", "0.001", "2.5E+1"])
LEVELS = st.lists(st.tuples(prices(), SIZES).map(list), max_size=8)
BAD_LEVELS: list[Any] = [
    ["abc", "1"], ["100", "-1"], ["NaN", "1"], ["100", 1], [100.5, "1"], ["100"],
    ["100", "2", "3"], "12", None, ["1e99999", "1"], [" 100", "1"], ["1_00", "1"],
    ["+100", "1"], ["\u0661\u0660\u0660", "1"], ["100", "inf"], [None, "1"], [["100"], "1"],
    ["100", "1E+101"], ["100", ""], [".", "1"], ["100", "1e+-5"], {"100": "1"},
]
STEPS = st.one_of(
    st.tuples(st.just("delta"), LEVELS, LEVELS),
    st.tuples(st.just("snapshot"), LEVELS, LEVELS),
    st.tuples(st.just("bad"), LEVELS, LEVELS, st.booleans(), st.integers(0, 8),
              st.sampled_from(BAD_LEVELS), st.booleans()),
)

# -- helpers ------------------------------------------------------------------------------


def state(book: OrderBook) -> tuple[Any, ...]:
    return (book.levels("bids"), book.levels("asks"), book.crossed(), len(book))


def assert_same(book: OrderBook, ref: RefBook) -> None:
    for side in ("bids", "asks"):
        got = book.levels(side)
        assert got == ref.levels(side), side
        for n in (0, 1, 3):
            assert book.levels(side, n) == ref.levels(side, n)
        for price, size in got:
            assert "e" not in (price + size).lower()
    assert book.best_bid() == (ref.levels("bids", 1) or [None])[0]
    assert book.best_ask() == (ref.levels("asks", 1) or [None])[0]
    assert book.crossed() == ref.crossed()
    assert len(book) == len(ref)


def run_bad(book: OrderBook, ref: RefBook, step: tuple[Any, ...]) -> None:
    _, bids, asks, on_bids, at, bad, as_snapshot = step
    side = list(bids if on_bids else asks)
    side.insert(min(at, len(side)), bad)
    message = (side, asks) if on_bids else (bids, side)
    before = state(book)
    with pytest.raises(BookError):
        (book.snapshot if as_snapshot else book.apply)(*message)
    with pytest.raises(RefError):
        (ref.snapshot if as_snapshot else ref.apply)(*message)
    assert state(book) == before


# -- properties ---------------------------------------------------------------------------


@PROPERTY
@given(depth=st.none() | st.integers(1, 8), first=st.tuples(LEVELS, LEVELS),
       steps=st.lists(STEPS, max_size=25))
def test_random_streams_match_the_reference_at_every_step(
        depth: int | None, first: tuple[list[Any], list[Any]],
        steps: list[tuple[Any, ...]]) -> None:
    book, ref = OrderBook(depth), RefBook(depth)
    book.snapshot(*first)
    ref.snapshot(*first)
    assert_same(book, ref)
    for step in steps:
        if step[0] == "delta":
            assert book.apply(step[1], step[2]) == ref.apply(step[1], step[2])
        elif step[0] == "snapshot":
            book.snapshot(step[1], step[2])
            ref.snapshot(step[1], step[2])
        else:
            run_bad(book, ref, step)
        assert_same(book, ref)


@PROPERTY
@given(depth=st.integers(1, 8), first=st.tuples(LEVELS, LEVELS),
       deltas=st.lists(st.tuples(LEVELS, LEVELS), max_size=15))
def test_applying_the_published_deltas_rebuilds_the_cut_book(
        depth: int, first: tuple[list[Any], list[Any]],
        deltas: list[tuple[list[Any], list[Any]]]) -> None:
    """The 4.1 contract seen from a subscriber: the publisher's snapshot then each delta
    plus the removals its cut returned rebuild the publisher's book, with or without a cut
    of the subscriber's own."""
    venue = OrderBook(depth)
    venue.snapshot(*first)
    cut, uncut = OrderBook(depth), OrderBook()
    for client in (cut, uncut):
        client.snapshot(venue.levels("bids"), venue.levels("asks"))
    for bids, asks in deltas:
        gone_bids, gone_asks = venue.apply(bids, asks)
        for client in (cut, uncut):
            client.apply(bids + gone_bids, asks + gone_asks)
            assert state(client) == state(venue)


# -- rules, one by one --------------------------------------------------------------------


def test_a_malformed_delta_changes_nothing() -> None:
    book = OrderBook(3)
    book.snapshot([["100.0", "1"], ["99.5", "2"], ["99", "3"]], [["101", "1"], ["102", "2"]])
    before = state(book)
    delta_bids = [["100.00", "5"], ["99.5", "0"], ["99.8", "1"], ["98", "1"]]
    for bad in (["103", "x"], ["103"], [None, "1"], ["1e5000", "1"]):
        with pytest.raises(BookError):
            book.apply(delta_bids, [["101", "0"], bad])
        assert state(book) == before
    with pytest.raises(BookError):
        book.snapshot([["1", "1"]], [["2", "-2"]])
    assert state(book) == before
    assert book.apply(delta_bids, [["101", "0"]]) == ([["98", "0"]], [])  # still usable
    assert book.levels("bids") == [["100.00", "5"], ["99.8", "1"], ["99", "3"]]


@pytest.mark.parametrize("bad", BAD_LEVELS, ids=repr)
def test_rejections_say_which_value(bad: Any) -> None:
    book = OrderBook()
    with pytest.raises(BookError) as err:
        book.apply([bad], [])
    assert "price" in str(err.value) or "size" in str(err.value) or "level" in str(err.value)
    assert len(book) == 0


def test_exponent_notation_is_written_out_in_full() -> None:
    book = OrderBook()
    book.apply([["1E+2", "2.5E-3"], ["1.50E+1", "5e-7"], ["7E0", "1"]], [["1.005E+2", "0E+2"]])
    assert book.levels("bids") == [["100", "0.0025"], ["15.0", "0.0000005"], ["7", "1"]]
    assert book.levels("asks") == []  # "0E+2" is a zero size: nothing to remove
    book.apply([["100.00", "0e-9"]], [])  # another spelling of 1E+2 removes it
    assert book.best_bid() == ["15.0", "0.0000005"]


def test_spellings_are_one_level_and_the_last_one_is_kept() -> None:
    book = OrderBook()
    book.snapshot([["100.5", "1"], ["100.50", "2"]], [["101", "1"]])
    assert book.levels("bids") == [["100.50", "2"]]
    book.apply([["100.500", "3"]], [["101.000", "0.000"]])
    assert book.levels("bids") == [["100.500", "3"]] and book.levels("asks") == []


def test_keys_are_exact_decimals_not_floats() -> None:
    book = OrderBook()
    # Equal as floats, distinct as decimals: a float key would merge or misorder them.
    book.apply([["0.3", "1"], ["0.30000000000000001", "2"], ["0.29999999999999999", "3"]],
               [["1.0000000000000000000001", "1"], ["1", "2"]])
    assert [p for p, _ in book.levels("bids")] == [
        "0.30000000000000001", "0.3", "0.29999999999999999"]
    assert [p for p, _ in book.levels("asks")] == ["1", "1.0000000000000000000001"]
    assert book.crossed() is False


def test_depth_cut_returns_the_removed_levels_best_first() -> None:
    book = OrderBook(2)
    book.snapshot([["10", "1"], ["9", "1"], ["8", "1"]], [["11", "1"], ["12", "1"]])
    assert book.levels("bids") == [["10", "1"], ["9", "1"]]
    removed = book.apply([["10.5", "1"], ["10.2", "1"]], [["10.8", "1"], ["10.9", "1"]])
    assert removed == ([["10", "0"], ["9", "0"]], [["11", "0"], ["12", "0"]])
    assert book.levels("bids") == [["10.5", "1"], ["10.2", "1"]]
    assert book.levels("asks") == [["10.8", "1"], ["10.9", "1"]]
    assert book.apply([["10.2", "0"]], []) == ([], [])  # a hole is not refilled by the book
    assert book.levels("bids") == [["10.5", "1"]]


def test_crossed_and_best() -> None:
    book = OrderBook()
    assert book.best_bid() is None and book.best_ask() is None and not book.crossed()
    book.snapshot([["100", "1"]], [["100.5", "1"]])
    assert not book.crossed()
    book.apply([["100.50", "1"]], [])
    assert book.crossed() and book.best_bid() == ["100.50", "1"]


def test_copy_is_independent_and_clear_empties() -> None:
    book = OrderBook(5)
    book.snapshot([["100", "1"]], [["101", "1"]])
    other = book.copy()
    other.apply([["100", "0"], ["99", "2"]], [["100.5", "1"]])
    assert book.levels("bids") == [["100", "1"]] and book.levels("asks") == [["101", "1"]]
    assert other.levels("bids") == [["99", "2"]] and other.depth == 5
    book.clear()
    assert len(book) == 0 and len(other) == 3
    returned = other.levels("bids")
    returned[0][1] = "999"  # what the book returns is the caller's to change
    assert other.levels("bids") == [["99", "2"]]


def test_payload_is_a_book_snapshot() -> None:
    book = OrderBook()
    book.snapshot([["100", "1"], ["99", "2"]], [["101", "1"], ["102", "3"]])
    assert book.payload("BTCUSDT", 1) == {"symbol": "BTCUSDT", "bids": [["100", "1"]],
                                          "asks": [["101", "1"]]}
    assert book.payload("BTCUSDT")["asks"] == [["101", "1"], ["102", "3"]]


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"):
        OrderBook(0)


def test_price_memo_stays_bounded() -> None:
    book = OrderBook(50)
    for i in range(PRICE_MEMO * 2 + 10):
        book.apply([[f"{i}.5", "1"]], [])
    assert len(book._memo) <= PRICE_MEMO + 1
    assert len(book) == 50 and book.best_bid() == [f"{PRICE_MEMO * 2 + 9}.5", "1"]


def test_errors_stay_short_for_huge_input() -> None:
    book = OrderBook()
    for level in (["1" * 100_000 + "x", "1"], ["1", "x" * 100_000], ["1"] * 100_000):
        with pytest.raises(BookError) as err:
            book.apply([level], [])
        assert len(str(err.value)) < 200
