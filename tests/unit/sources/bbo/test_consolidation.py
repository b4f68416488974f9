"""The pure bbo rule (sources/bbo/consolidation.py): venues in and out, staleness on an
injected clock, gaps, exact decimal comparisons and the tie-break order."""

from __future__ import annotations

from typing import get_args

import pytest

from cryptowire.core.channels import VENUE_ALIASES, VENUES
from cryptowire.settings.bbo import BboSettings, BboVenue
from cryptowire.sources.bbo import Consolidation

STALE = 1000


def bbo(*venues: str) -> Consolidation:
    return Consolidation("BTCUSDT", venues or ("bybit", "binance", "okx"), STALE)


def test_the_best_bid_and_ask_may_come_from_different_venues() -> None:
    c = bbo()
    c.update("bybit", ("100.0", "1"), ("100.5", "2"), ts=10)
    c.update("binance", ("100.2", "3"), ("100.6", "1"), ts=20)
    c.update("okx", ("99.9", "5"), ("100.4", "0.5"), ts=30)
    state = c.state(now=100)
    assert state["bid"] == {"price": "100.2", "size": "3", "venue": "binance"}
    assert state["ask"] == {"price": "100.4", "size": "0.5", "venue": "okx"}
    assert state["venues"] == {
        "bybit": {"bid": ["100.0", "1"], "ask": ["100.5", "2"], "ts": 10},
        "binance": {"bid": ["100.2", "3"], "ask": ["100.6", "1"], "ts": 20},
        "okx": {"bid": ["99.9", "5"], "ask": ["100.4", "0.5"], "ts": 30},
    }
    assert state["excluded"] == {}
    assert state["symbol"] == "BTCUSDT"


def test_prices_compare_exactly_and_keep_the_venue_strings() -> None:
    c = bbo()
    # "100.10" and "100.1" are one price: the tie goes to the larger size.
    c.update("bybit", ("100.10", "1.5"), None, ts=10)
    c.update("binance", ("100.1", "1.50001"), None, ts=10)
    assert c.state(50)["bid"] == {"price": "100.1", "size": "1.50001", "venue": "binance"}
    # A float would call these equal (0.1 + 0.2 style): Decimal does not.
    c.update("okx", ("100.100000000000000001", "0.001"), None, ts=10)
    assert c.state(50)["bid"]["venue"] == "okx"
    # Strings go out as the venue wrote them, trailing zeros included.
    c.update("okx", ("99", "1"), ("100.20", "7.000"), ts=10)
    assert c.state(50)["ask"] == {"price": "100.20", "size": "7.000", "venue": "okx"}
    assert c.state(50)["bid"]["price"] == "100.1"


def test_ties_go_to_the_larger_size_then_the_fresher_then_the_first_listed() -> None:
    c = bbo()
    c.update("bybit", ("100", "2"), ("101", "2"), ts=10)
    c.update("binance", ("100.0", "2.0"), ("101.00", "2"), ts=20)
    c.update("okx", ("100.00", "1"), ("101", "1"), ts=30)
    state = c.state(50)
    assert state["bid"]["venue"] == state["ask"]["venue"] == "binance"  # same size, fresher
    c.update("binance", ("100.0", "2.0"), ("101.00", "2"), ts=10)  # now as old as bybit
    state = c.state(50)
    assert state["bid"]["venue"] == state["ask"]["venue"] == "bybit"  # listed first
    c.update("okx", ("100.00", "2.1"), ("101", "9"), ts=5)
    assert c.state(50)["bid"]["venue"] == c.state(50)["ask"]["venue"] == "okx"  # larger size


def test_a_stale_venue_drops_out_and_comes_back_with_its_next_update() -> None:
    c = bbo()
    c.update("bybit", ("100", "1"), ("101", "1"), ts=0)
    c.update("okx", ("100.5", "1"), ("100.9", "1"), ts=500)
    c.update("binance", ("99", "1"), ("102", "1"), ts=900)
    assert c.state(999)["bid"]["venue"] == "okx"
    assert c.next_stale(999) == 1000  # bybit first
    state = c.state(1000)  # bybit: no update for stale_after_ms
    assert set(state["venues"]) == {"okx", "binance"} and state["excluded"] == {"bybit": "stale"}
    assert c.next_stale(1000) == 1500
    state = c.state(1500)  # okx too: the best goes to what remains
    assert state["bid"] == {"price": "99", "size": "1", "venue": "binance"}
    assert state["excluded"] == {"bybit": "stale", "okx": "stale"}
    c.update("okx", ("100.5", "1"), ("100.9", "1"), ts=1600)  # exact again
    assert c.state(1600)["bid"]["venue"] == "okx"
    assert c.state(1600)["excluded"] == {"bybit": "stale"}


def test_a_gap_drops_a_venue_until_it_is_known_again() -> None:
    c = bbo()
    c.update("bybit", ("100", "1"), ("101", "1"), ts=10)
    c.update("okx", ("100.5", "1"), ("100.6", "1"), ts=10)
    c.unknown("okx", "gap")
    state = c.state(20)
    assert state["bid"]["venue"] == state["ask"]["venue"] == "bybit"
    assert "okx" not in state["venues"] and state["excluded"]["okx"] == "gap"
    c.update("okx", ("100.5", "1"), ("100.6", "1"), ts=30)  # its next snapshot
    assert c.state(40)["bid"]["venue"] == "okx"


def test_no_venue_left_is_said_never_made_up() -> None:
    c = bbo()
    assert c.state(0) == {"symbol": "BTCUSDT", "bid": None, "ask": None, "venues": {},
                          "excluded": {"bybit": "waiting", "binance": "waiting",
                                       "okx": "waiting"}}
    c.update("bybit", ("100", "1"), ("101", "1"), ts=0)
    c.unknown("bybit", "gap")
    state = c.state(10)
    assert state["bid"] is None and state["ask"] is None and state["venues"] == {}
    assert c.next_stale(10) is None


def test_an_empty_side_is_null_and_the_other_side_still_counts() -> None:
    c = bbo("bybit", "okx")
    c.update("bybit", None, ("101", "1"), ts=0)
    c.update("okx", ("100", "2"), None, ts=0)
    state = c.state(1)
    assert state["bid"]["venue"] == "okx" and state["ask"]["venue"] == "bybit"
    assert state["venues"]["bybit"] == {"bid": None, "ask": ["101", "1"], "ts": 0}


def test_changed_reports_a_state_once_and_ignores_ts_alone() -> None:
    c = bbo("bybit", "okx")
    first = c.changed(0)
    assert first is not None and first["bid"] is None
    assert c.changed(0) is None
    c.update("bybit", ("100", "1"), ("101", "1"), ts=0)
    assert c.changed(1) is not None
    c.update("bybit", ("100", "1"), ("101", "1"), ts=5)  # same top, newer: not a change
    assert c.changed(6) is None
    c.update("okx", ("99", "1"), ("102", "1"), ts=6)  # a venue's top changes, not the best
    changed = c.changed(7)
    assert changed is not None and changed["bid"]["venue"] == "bybit"
    assert c.changed(1004) is None  # okx still fresh at 1004, bybit (ts 5) too
    stale = c.changed(1005)  # bybit leaves
    assert stale is not None and stale["excluded"] == {"bybit": "stale"}
    c.forget_published()
    assert c.changed(1005) == stale


def test_a_refused_venue_is_removed_and_unknown_names_are_refused() -> None:
    c = bbo()
    c.remove("binance")
    assert c.venues == ["bybit", "okx"]
    assert "binance" not in c.state(0)["excluded"]
    with pytest.raises(KeyError):
        c.update("binance", ("1", "1"), None, ts=0)
    with pytest.raises(ValueError, match="stale_after_ms"):
        Consolidation("BTCUSDT", ["okx"], 0)


def test_the_settings_venue_names_are_the_channel_venues_and_aliases() -> None:
    assert set(get_args(BboVenue)) == set(VENUES) | set(VENUE_ALIASES)
    assert BboSettings().venues == ["linear", "binance", "okx"]
    assert BboSettings().stale_after_ms == 10_000
    with pytest.raises(ValueError, match="each venue once"):
        BboSettings(venues=["linear", "bybit"])
    with pytest.raises(ValueError):
        BboSettings(venues=["kraken"])  # type: ignore[list-item]
    with pytest.raises(ValueError):
        BboSettings(venues=[])


def test_a_removed_venue_added_back_takes_its_configured_place() -> None:
    c = bbo()
    c.remove("bybit")
    c.remove("okx")
    c.add("okx")
    assert c.venues == ["binance", "okx"] and c.state(0)["excluded"]["okx"] == "waiting"
    c.add("bybit")
    c.add("bybit")  # already in: nothing changes
    assert c.venues == ["bybit", "binance", "okx"]
    for venue in c.venues:  # ties go to the first listed again
        c.update(venue, ("100", "1"), ("101", "1"), ts=0)
    assert c.state(1)["bid"]["venue"] == "bybit"
    with pytest.raises(KeyError):
        c.add("kraken")
