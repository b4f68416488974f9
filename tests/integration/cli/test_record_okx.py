"""``cryptowire record --venue okx`` against the OKX replay peer: OKX's own requests (one
argument each), the refusal of an instrument OKX does not list named with OKX's reason, the
text ``ping`` keep-alive, and the recording written frame for frame as the peer sent it, in
the fixture format the peer replays."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
from pathlib import Path

import pytest
from tests.peers.okx_peer import FIXTURES, OkxPeer

from cryptowire.cli.record import capture, resolve
from cryptowire.settings import OkxSettings
from cryptowire.sources.exchange.venue import Ping
from cryptowire.sources.venues.okx.venue import declare

pytestmark = pytest.mark.integration


async def test_okx_is_recorded_in_the_fixture_format(tmp_path: Path) -> None:
    async with OkxPeer(interval_s=0.005) as peer:
        venue = declare(OkxSettings(public_url=peer.ws_url("public"),
                                    business_url=peer.ws_url("business"),
                                    rest_url=peer.rest_url))
        plan = resolve(venue, ["ticker:BTCUSDT@okx", "trade:BTCUSDT@okx",
                               "liquidation:BTCUSDT@okx", "trade:NOPEUSDT@okx"], "okx")
        assert (plan.market.key, plan.endpoint) == ("okx", "public")
        assert [s.key for s in plan.streams] == [
            "tickers:BTC-USDT-SWAP", "funding-rate:BTC-USDT-SWAP", "mark-price:BTC-USDT-SWAP",
            "trades:BTC-USDT-SWAP", "liquidation-orders:SWAP", "trades:NOPE-USDT-SWAP"]
        out = io.StringIO()
        result = await capture(plan.market, peer.ws_url("public"), plan.streams, out,
                               seconds=10, max_frames=30)
        assert result.refused.keys() == {"trades:NOPE-USDT-SWAP"}
        assert "60018" in result.refused["trades:NOPE-USDT-SWAP"]
        assert result.acked == {s.key for s in plan.streams[:5]}
        lines = out.getvalue().splitlines()
        assert len(lines) == 30 and result.frames == 30
        sent = [text for path, text in peer.sent if path == "public"]
        assert lines == sent[:30]  # byte for byte, in order
        assert all(result.per_topic[s.key] > 0 for s in plan.streams[:5])
        args = [r["args"] for c in peer.connections for r in c.received]
        assert all(len(a) == 1 for a in args)  # one argument per request

    # The recording replays: a peer built on it streams the same frames.
    fixtures = tmp_path / "okx"
    shutil.copytree(FIXTURES, fixtures)
    (fixtures / "swap.jsonl").write_text("\n".join(lines) + "\n")
    async with OkxPeer(fixtures, interval_s=0.005) as replay:
        recorded = [json.loads(line) for line in lines]
        trades = [f for f in recorded if f["arg"]["channel"] == "trades"]
        assert replay.frames_for(("trades", "BTC-USDT-SWAP"))[:2] == trades[:2]


async def test_the_ping_keeps_the_recording_alive() -> None:
    async with OkxPeer(interval_s=0.005) as peer:
        venue = declare(OkxSettings(public_url=peer.ws_url("public")))
        market = venue.markets["okx"]
        quick = dataclasses.replace(market, ping=Ping("ping", 0.05, 30.0))
        plan = resolve(venue, ["trade:BTCUSDT@okx"], "okx")
        await capture(quick, peer.ws_url("public"), plan.streams, io.StringIO(), seconds=0.5)
        assert peer.pings >= 2
