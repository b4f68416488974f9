"""A reorg (anvil evm_snapshot / evm_revert, then other blocks mined at the same heights):
events of the orphaned blocks go out again as ``type: "removed"`` corrections, the new
chain's events are delivered, and the event log holds only the canonical ones."""

from __future__ import annotations

import asyncio

from tests.integration.evm.evmhub import CHAIN, HubFactory, collect, subscribe
from tests.peers.anvil import Dex


async def test_reorg_emits_removed_corrections(evm_hub_factory: HubFactory, dex: Dex) -> None:
    hub = await evm_hub_factory()
    await hub.track(dex)
    ws = await hub.ws()
    await subscribe(ws, f"swap:{CHAIN}")
    watcher = hub.source.watchers[CHAIN]
    await asyncio.wait_for(watcher.caught_up.wait(), 10)

    snap = await dex.snapshot()
    orphaned = [await dex.swap(dex.tokens[0], buy=True, amount_in=10**17 * (i + 1))
                for i in range(3)]
    first = await collect(ws, 3)
    assert [f["data"]["tx_hash"] for f in first] == orphaned
    assert all(f["type"] == "update" for f in first)

    await dex.revert(snap)
    # The other branch: different swaps, one block more, so it is the longer chain.
    canonical = [await dex.swap(dex.tokens[1], buy=False, amount_in=10**9 * (i + 1))
                 for i in range(4)]
    frames = await collect(ws, 7)
    removed = [f for f in frames if f["type"] == "removed"]
    updates = [f for f in frames if f["type"] == "update"]
    assert sorted(f["data"]["tx_hash"] for f in removed) == sorted(orphaned)
    assert [f["data"] for f in removed] == [f["data"] for f in first]
    assert [f["data"]["tx_hash"] for f in updates] == canonical
    # Corrections come before the replacement events.
    assert frames.index(removed[-1]) < frames.index(updates[0])
    async with hub.http.get(f"{hub.url}/api/v1/events",
                            params={"channel": f"swap:{CHAIN}"}) as resp:
        stored = [e["tx_hash"] for e in (await resp.json())["events"]]
    assert stored == canonical
    assert watcher.stats.reorgs >= 1
