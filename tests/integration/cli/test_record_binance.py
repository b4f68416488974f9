"""``cryptowire record --venue binance`` against the Binance replay peer: the venue's own
SUBSCRIBE requests and acks, one endpoint per recording on futures (``public`` / ``market``),
frames written as received, in the combined-stream shape of ``tests/fixtures/binance/``."""

from __future__ import annotations

import io
import json

import pytest
from tests.peers.binance_peer import BinancePeer
from typer.testing import CliRunner

from cryptowire.cli import app
from cryptowire.cli.record import capture, resolve
from cryptowire.settings import BinanceSettings
from cryptowire.sources.exchange.codec import Data
from cryptowire.sources.venues.binance.venue import declare

pytestmark = pytest.mark.integration


async def test_futures_channels_are_recorded_one_endpoint_at_a_time() -> None:
    async with BinancePeer(interval_s=0.01) as peer:
        venue = declare(BinanceSettings(**peer.settings_values()))
        channels = ["ticker:BTCUSDT@binance", "trade:BTCUSDT@binance", "book:50:BTCUSDT@binance"]
        with pytest.raises(ValueError, match="need the endpoints market, public"):
            resolve(venue, channels, "binance")
        plan = resolve(venue, channels, "binance", endpoint="market")
        assert [s.key for s in plan.streams] == ["btcusdt@ticker", "btcusdt@markPrice@1s",
                                                 "btcusdt@aggTrade"]
        out = io.StringIO()
        url = plan.market.endpoints["market"]
        result = await capture(plan.market, url, plan.streams, out, seconds=10, max_frames=12)
        assert result.acked == set(result.topics) and result.refused == {}
        assert peer.subscribe_requests == {("market", key): 1 for key in result.topics}
        frames = [json.loads(line) for line in out.getvalue().splitlines()]
        assert len(frames) == 12 and all(set(f) == {"stream", "data"} for f in frames)
        assert {f["stream"] for f in frames} == set(result.topics)
        for line in out.getvalue().splitlines():  # replayable: the codec reads each line
            [item] = plan.market.codec.parse(line)
            assert isinstance(item, Data)


async def test_spot_books_are_recorded_with_their_depth_updates() -> None:
    async with BinancePeer(interval_s=0.01) as peer:
        venue = declare(BinanceSettings(**peer.settings_values()))
        plan = resolve(venue, ["book:50:BTCUSDT@binance-spot", "trade:BTCUSDT@binance-spot"],
                       "binance-spot")
        out = io.StringIO()
        result = await capture(plan.market, plan.market.endpoints[plan.endpoint], plan.streams,
                               out, seconds=10, max_frames=20)
        frames = [json.loads(line) for line in out.getvalue().splitlines()]
        depth = [f["data"] for f in frames if f["stream"] == "btcusdt@depth@100ms"]
        assert depth and all(d["e"] == "depthUpdate" and "pu" not in d for d in depth)
        assert result.per_topic["btcusdt@depth@100ms"] == len(depth)


def test_the_cli_knows_the_binance_venue() -> None:
    result = CliRunner().invoke(app, ["record", "liquidation:BTCUSDT@binance-spot",
                                      "--venue", "binance"])
    assert result.exit_code == 2
    assert "only ticker, trade, kline and book channels come from Binance" in result.output
