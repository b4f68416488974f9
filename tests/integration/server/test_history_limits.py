"""History memory on a running hub: big ``app:`` publications stay within ``history.max_bytes``
without costing ``pg:`` history, and ``ttl_s`` frees history that nobody reads."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson
import pytest

from .conftest import TIMEOUT, Hub, subscribe

MiB = 1024 * 1024
BUDGET = 4 * MiB


async def _history_bytes(hub: Hub) -> tuple[int, int]:
    """``(from /metrics, from /stats)``."""
    async with hub.http.get(f"{hub.url}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    found = re.search(r"^cryptowire_history_bytes (\S+)$", text, re.MULTILINE)
    assert found, "no cryptowire_history_bytes gauge in /metrics"
    stats = await hub.stats()
    return int(float(found.group(1))), int(stats["history_bytes"])


async def _publish(hub: Hub, key: str, channel: str, data: Any) -> dict[str, Any]:
    async with hub.http.post(f"{hub.url}/api/v1/publish",
                             data=orjson.dumps({"channel": channel, "data": data}),
                             headers={"Content-Type": "application/json",
                                      "X-API-Key": key}) as resp:
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        return body


@pytest.mark.hub_settings(history={"max_bytes": BUDGET}, demo={"mode": "off"})
async def test_big_app_messages_stay_within_the_budget_and_spare_pg(hub: Hub) -> None:
    fills = [await hub.publish("pg:fill_event", {"id": i}) for i in range(3)]
    key, _ = await hub.create_key("pub", ("publish", "read"))
    first: dict[str, Any] = {}
    for i in range(40):  # 40 x 400 KB = 16 MB through the publish API, 4x the budget
        body = await _publish(hub, key, "app:big", {"i": i, "pad": "x" * 400_000})
        first = first or body["positions"][0]
        from_metrics, from_stats = await _history_bytes(hub)
        assert from_metrics <= BUDGET and from_stats <= BUDGET, i
    assert from_metrics > BUDGET // 2  # the gauge counts what is held, not zero

    # What the budget evicted is a gap on the wire, never a silent skip...
    ws = await hub.connect()
    reply = await subscribe(ws, "app:big", recover={
        "app:big": {"epoch": first["epoch"], "offset": 0}})
    assert reply["recovered"] == {"app:big": False}
    # ...and the pg: history (another kind, within its share) is whole. (pg: channels are
    # read on the wire only with a pgnotify source; the broker is what recovery asks.)
    got = await hub.node.broker.history_since("pg:fill_event", fills[0].epoch, 0)
    assert got is not None and [p.data for p in got] == [{"id": 0}, {"id": 1}, {"id": 2}]


@pytest.mark.hub_settings(history={"ttl_s": 0.5}, demo={"mode": "off"})
async def test_ttl_frees_history_nobody_reads(hub: Hub) -> None:
    for i in range(10):
        await hub.publish("app:old", {"i": i, "pad": "x" * 100_000})
    held, _ = await _history_bytes(hub)
    assert held >= 1_000_000
    async with asyncio.timeout(TIMEOUT):
        while held >= 100_000:  # the sweeper frees it: nothing here reads app:old
            await asyncio.sleep(0.05)
            held, _ = await _history_bytes(hub)
