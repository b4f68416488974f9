"""``cryptowire record`` against the Bybit V5 replay peer (a real socket), run as a user runs
it (a subprocess); what it writes replays through the peer."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.peers.bybit_peer import BybitPeer, dumps
from typer.testing import CliRunner

from cryptowire.cli import app
from cryptowire.core.channels import ChannelGrammar
from cryptowire.events import Event
from cryptowire.sources.bybit import BybitSource, DataFrame, parse_frame

pytestmark = pytest.mark.integration


@pytest.fixture
async def peer() -> AsyncIterator[BybitPeer]:
    async with BybitPeer(interval_s=0.005) as server:
        yield server


async def run(args: list[str], cwd: Path, env: dict[str, str] | None = None,
              timeout: float = 30.0) -> tuple[int, str]:
    """``python -m cryptowire ARGS``; ``(exit code, stderr)``. Async, so the peer in this
    process keeps serving meanwhile."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOWIRE_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cryptowire", *args, cwd=cwd, env={**clean, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, stderr.decode()


def read_jsonl(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line]


def sent_by_peer(peer: BybitPeer, category: str, topic: str, n: int) -> list[str]:
    """The first ``n`` frames the peer streams for ``topic``, as the text it sends."""
    frames = peer.frames_for(category, topic)
    span = peer.round_span_ms(category, topic)
    out: list[str] = []
    round_ = 0
    while len(out) < n:
        for frame in frames:
            out.append(dumps({**frame, "ts": frame["ts"] + round_ * span} if round_ else frame))
        round_ += 1
    return out[:n]


async def test_records_raw_frames_in_the_fixture_format(peer: BybitPeer, tmp_path: Path) -> None:
    out = tmp_path / "rec" / "linear.jsonl"
    out.parent.mkdir()
    code, stderr = await run(
        ["record", "ticker:BTCUSDT", "trade:BTCUSDT", "kline.60.ETHUSDT", "--url",
         peer.ws_url("linear"), "--frames", "40", "--seconds", "20", "--out", str(out)],
        tmp_path)
    assert code == 0, stderr
    assert "Recorded 40 frames" in stderr
    lines = read_jsonl(out)
    assert len(lines) == 40
    by_topic: dict[str, list[str]] = {}
    for line in lines:
        frame = parse_frame(line)  # each line is one Bybit topic frame
        assert isinstance(frame, DataFrame)
        by_topic.setdefault(json.loads(line)["topic"], []).append(line)
    assert set(by_topic) == {"tickers.BTCUSDT", "publicTrade.BTCUSDT", "kline.60.ETHUSDT"}
    # Byte for byte what the peer sent, in order, from the first (snapshot) frame on.
    for topic, recorded in by_topic.items():
        assert recorded == sent_by_peer(peer, "linear", topic, len(recorded))
    # One subscribe request per topic, each acknowledged; nothing else was asked.
    assert peer.subscribe_count("tickers.BTCUSDT") == 1
    assert peer.subscribe_count("kline.60.ETHUSDT") == 1

    # The recording replays through the peer: a peer loading it streams the same frames,
    # and the Bybit source fed by it delivers one event per recorded ticker frame.
    (out.parent / "spot.jsonl").write_text("")
    async with BybitPeer(out.parent, interval_s=0.005) as replay:
        for topic, recorded in by_topic.items():
            assert [dumps(f) for f in replay.frames_for("linear", topic)] == recorded
        source = BybitSource(replay.settings())
        events: list[Event] = []

        async def publish(event: Event) -> None:
            events.append(event)

        await source.start(publish)
        try:
            await source.subscribe(ChannelGrammar().parse("ticker:BTCUSDT"))
            want = [json.loads(line)["ts"] for line in by_topic["tickers.BTCUSDT"]]
            async with asyncio.timeout(5):
                while len(events) < len(want):
                    await asyncio.sleep(0.01)
        finally:
            await source.stop()
        assert [e.ts_source for e in events[: len(want)]] == want
        assert events[0].type == "snapshot"
        first: dict[str, Any] = json.loads(by_topic["tickers.BTCUSDT"][0])["data"]
        assert events[0].data["price"] == first["lastPrice"]


async def test_url_from_settings_spot_and_time_limit(peer: BybitPeer, tmp_path: Path) -> None:
    env = {"CRYPTOWIRE_BYBIT__SPOT_URL": peer.ws_url("spot"),
           "CRYPTOWIRE_BYBIT__LINEAR_URL": "ws://127.0.0.1:1/nowhere"}
    code, stderr = await run(["record", "ticker:ETHUSDT@spot", "kline:1m:BTCUSDT@spot",
                              "--seconds", "1"], tmp_path, env)
    assert code == 0, stderr
    lines = read_jsonl(tmp_path / "spot.jsonl")  # default name: the category's fixture name
    assert lines
    assert {json.loads(line)["topic"] for line in lines} == {"tickers.ETHUSDT",
                                                             "kline.1.BTCUSDT"}
    assert peer.subscribe_count("tickers.ETHUSDT", "spot") == 1


async def test_refusals_and_bad_arguments(peer: BybitPeer, tmp_path: Path) -> None:
    peer.reject_topic("tickers.ETHUSDT")
    url = peer.ws_url("linear")
    out = tmp_path / "out.jsonl"
    code, stderr = await run(["record", "ticker:ETHUSDT", "ticker:BTCUSDT", "--url", url,
                              "--frames", "5", "--out", str(out)], tmp_path)
    assert code == 0, stderr
    assert "refused: tickers.ETHUSDT (error:handler not found,topic:tickers.ETHUSDT)" in stderr
    assert {json.loads(line)["topic"] for line in read_jsonl(out)} == {"tickers.BTCUSDT"}

    code, stderr = await run(["record", "ticker:ETHUSDT", "--url", url, "--seconds", "5",
                              "--out", str(out)], tmp_path)
    assert code == 1 and "refused: tickers.ETHUSDT" in stderr


def test_bad_arguments_and_no_upstream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for args, code, text in [
        (["ticker:BTCUSDT", "ticker:BTCUSDT@spot"], 2, "one category"),
        (["tickers.*"], 2, "Wildcards"),
        (["swap:eth"], 2, "only ticker, trade, kline, book and liquidation"),
        (["ticker:BTCUSDT", "--seconds", "0"], 2, "--seconds must be positive"),
        (["ticker:BTCUSDT", "--url", "ws://127.0.0.1:1/x", "--seconds", "1"], 1,
         "Cannot connect"),
    ]:
        result = runner.invoke(app, ["record", *args])
        assert result.exit_code == code, (args, result.output)
        assert text in result.output, (args, result.output)
