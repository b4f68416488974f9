"""The path tracer behind docs/architecture.md ("Paths") still follows both paths to the socket."""

from __future__ import annotations

from pathlib import Path

from bench.trace_paths import trace


async def test_the_tracer_follows_a_subscribe_and_a_tick_to_the_transport(tmp_path: Path,
                                                                          ) -> None:
    text = await trace(tmp_path)
    subscribe, tick = text.split("### One tick")
    for path in (subscribe, tick):
        assert "(asyncio) transport.write" in path
        assert "cryptowire calls" in path and "layer hops" in path
    assert "core.hub.Hub.subscribe" in subscribe
    assert "core.fanout.Fanout.publish" in tick
