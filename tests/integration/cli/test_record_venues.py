"""``cryptowire record`` is generic through the venue declaration: the made-up venue of the
supervisor tests is recorded with its own requests, endpoints and acks."""

from __future__ import annotations

import io
import json

import pytest
from tests.integration.sources.test_exchange_supervisor import declare
from tests.peers.fake_venue import FakeVenuePeer
from typer.testing import CliRunner

from cryptowire.cli import app
from cryptowire.cli.record import capture, resolve

pytestmark = pytest.mark.integration


async def test_a_declared_venue_is_recorded_with_its_own_requests() -> None:
    async with FakeVenuePeer() as peer:
        venue = declare(peer)
        plan = resolve(venue, ["ticker:BTCUSDT", "trade:ETHUSDT", "ticker:SOLUSDT"], "linear",
                       endpoint="public")
        assert (plan.market.key, plan.endpoint) == ("linear", "public")
        assert [s.key for s in plan.streams] == ["t.btc-usdt", "a.eth-usdt", "t.sol-usdt"]
        peer.refused.add("t.btc-usdt")
        out = io.StringIO()
        result = await capture(plan.market, peer.ws_url("public"), plan.streams, out,
                               seconds=10, max_frames=2)
        assert peer.requests("sub") == [["t.btc-usdt"], ["a.eth-usdt"], ["t.sol-usdt"]]
        assert result.refused == {"t.btc-usdt": "unknown stream t.btc-usdt"}
        assert result.acked == {"a.eth-usdt", "t.sol-usdt"}
        lines = out.getvalue().splitlines()
        assert [json.loads(line)["s"] for line in lines] == ["a.eth-usdt", "t.sol-usdt"]
        assert result.per_topic == {"t.btc-usdt": 0, "a.eth-usdt": 1, "t.sol-usdt": 1}


async def test_channels_spanning_endpoints_need_one_endpoint_at_a_time() -> None:
    async with FakeVenuePeer() as peer:
        venue = declare(peer)
        with pytest.raises(ValueError, match="need the endpoints extra, public"):
            resolve(venue, ["trade:BTCUSDT"], "linear")
        plan = resolve(venue, ["trade:BTCUSDT"], "linear", endpoint="extra")
        assert [s.key for s in plan.streams] == ["b.btc-usdt"]
        with pytest.raises(ValueError, match="Fake has no venue 'okx'"):
            resolve(venue, ["ticker:BTCUSDT@okx"], "linear")


def test_an_undeclared_venue_is_refused() -> None:
    result = CliRunner().invoke(app, ["record", "ticker:BTCUSDT", "--venue", "nope"])
    assert result.exit_code == 2
    assert "venue 'nope' is not declared" in result.output
