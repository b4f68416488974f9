"""Binance closes a connection after 24 h: the source replaces its socket before that
(make-before-break, sources/exchange/rotation.py) and hands each stream over by Binance's own
sequence (a depth update's ``u`` following ``pu`` on futures, ``U - 1`` on spot; the book's
sync also drops an update it already applied), so a book goes on without a gap and without a
new REST snapshot. Here against the replay peer, with the
declaration's 24 h made 4 s (rotation 3 s before it) so two rotations happen in seconds."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from tests.integration.sources.binance_support import (
    GRAMMAR,
    VENUE,
    Collected,
    check_every_step,
    peer_settings,
)
from tests.peers.binance_peer import BinancePeer
from tests.waiting import eventually

from cryptowire.settings import BinanceSettings
from cryptowire.sources.exchange.source import ExchangeSource
from cryptowire.sources.exchange.venue import Limits, Venue
from cryptowire.sources.venues.binance.venue import declare


def short_lived(venue: Venue) -> Venue:
    """``venue`` whose sockets live 4 s (rotated after 1 s) instead of Binance's 24 h."""
    markets = {
        key: dataclasses.replace(market, limits=dataclasses.replace(
            market.limits, max_lifetime_s=4.0, rotation_margin_s=3.0))
        for key, market in venue.markets.items()}
    return dataclasses.replace(venue, markets=markets)


def test_the_declaration_rotates_before_binances_24_hours() -> None:
    for market in declare(BinanceSettings()).markets.values():
        limits: Limits = market.limits
        assert limits.max_lifetime_s == 24 * 3600
        after = limits.rotate_after_s
        assert after is not None and 0 < after < 24 * 3600


@pytest.mark.parametrize("market", ["futures", "spot"])
async def test_a_book_goes_on_exactly_across_two_rotations(market: str) -> None:
    async with BinancePeer(interval_s=0.01, ping_s=0.5) as peer:
        settings = peer_settings(peer)
        source = ExchangeSource(short_lived(declare(settings)), settings,
                                backoff_max_s=0.2, ack_timeout_s=3.0)
        got = Collected()
        await source.start(got.publish)
        try:
            channel = f"book:50:BTCUSDT@{VENUE[market]}"
            ticker = f"ticker:BTCUSDT@{VENUE[market]}"
            await source.subscribe(GRAMMAR.parse(channel))
            await source.subscribe(GRAMMAR.parse(ticker))
            key = VENUE[market]
            await eventually(lambda: rotations(source, key) >= 2, timeout=20.0,
                             what="two socket rotations")
            deltas = got.types(channel).count("delta")
            await eventually(lambda: got.types(channel).count("delta") > deltas + 10,
                             what="deltas after the second rotation")
            assert got.types(channel).count("snapshot") == 1, "a book restarted"
            assert "gap" not in got.types(channel) and "gap" not in got.types(ticker)
            assert peer.depth_requests[(market, "BTCUSDT")] == 1  # no new REST sync
            seqs = [e.data["venueSeq"] for e in got.of(channel)]
            assert seqs == sorted(set(seqs)), "an update published twice or out of order"
            assert check_every_step(peer, got.of(channel), market, 50) > 20
            assert source.status().extra[key]["rotation_error"] is None  # type: ignore[index]
        finally:
            await source.stop()


def rotations(source: ExchangeSource, market: str) -> int:
    extra: Any = source.status().extra.get(market, {})
    return int(extra.get("rotations", 0))
