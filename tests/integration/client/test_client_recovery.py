"""The SDK against a real hub that drops it or restarts while events keep being published.

(a) The same hub keeps running and drops the client twice (a 1001 close of every session,
then an aborted transport): every event is delivered exactly once, offsets contiguous, no gap.
(b) The hub process is replaced (new node, new in-memory history, new epoch): the client
reconnects by itself, says so with a :class:`Gap`, and goes on with live events.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from tests.integration.client.clienthub import (
    FAST,
    TIMEOUT,
    Collector,
    RestartableHub,
    publish_numbers,
)
from tests.waiting import eventually

from cryptowire.client import Disconnected, Gap, Reconnected, connect

pytestmark = pytest.mark.integration

CHANNEL = "app:test"


async def test_drops_lose_and_duplicate_nothing(hub: RestartableHub) -> None:
    key, _ = await hub.create_key("reader", ["read"])
    total = 300
    published: dict[int, float] = {}
    # First retry after 0.15-0.3 s: the publisher (an event every few ms) fills each outage.
    async with connect(hub.ws_url, key, backoff_base_s=0.3, backoff_max_s=0.5) as client:
        assert client.scopes == frozenset({"read"})
        reply = await client.subscribe(CHANNEL)
        assert reply.channels == (CHANNEL,) and not reply.rejected
        epoch = reply.positions[CHANNEL].epoch
        seen = Collector(client)
        publisher = asyncio.create_task(publish_numbers(hub, CHANNEL, total, 0.003,
                                                        log=published))
        try:
            # Drops are timed on what was *published* (not received), so the publisher is
            # still running during each outage however loaded the machine is.
            await seen.wait_for(lambda c: len(published) >= 60)
            assert hub.node is not None
            hub.node.hub.close_all(1001, "test: going away")  # a clean close, with a code
            await seen.wait_for(lambda c: len(c.of(Reconnected)) == 1)
            await seen.wait_for(lambda c: len(published) >= 150)
            for session in list(hub.node.hub.sessions.values()):
                session.transport.abort()  # the connection just vanishes: no close frame
            await seen.wait_for(lambda c: len(c.of(Reconnected)) == 2)
            await asyncio.wait_for(publisher, TIMEOUT * 3)
            # A marker after the last: the channel is delivered in order, so once it is in,
            # anything extra (a duplicate) would already have arrived before it.
            await hub.publish(CHANNEL, {"n": total + 1})
            await seen.wait_for(lambda c: any(m.data["n"] == total + 1 for m in c.messages()))
        finally:
            publisher.cancel()
            await seen.stop()
    messages = seen.messages(CHANNEL)
    assert [m.offset for m in messages] == list(range(1, total + 2))  # the marker last
    assert [m.data["n"] for m in messages] == list(range(1, total + 2))
    assert {m.epoch for m in messages} == {epoch}
    assert all(m.source == "app" and m.type == "update" and m.ts > 0 for m in messages)
    assert seen.of(Gap) == []
    drops = seen.of(Disconnected)
    assert [d.code for d in drops][0] == 1001 and len(drops) == 2
    assert all(0.15 <= d.retry_in_s <= 0.3 for d in drops)
    assert client.reconnects == 2
    assert client.duplicates_dropped == 0  # the hub's own promise: exactly once
    # Events really were published while the client was away (and so were recovered):
    for drop in drops:
        down = seen.times[seen.items.index(drop)]
        back = seen.times[seen.items.index(seen.of(Reconnected)[drops.index(drop)])]
        assert any(down < t < back for t in published.values())


async def test_hub_restart_yields_gap_then_live(hub: RestartableHub) -> None:
    key, _ = await hub.create_key("reader", ["read"])
    async with connect(hub.ws_url, key, **FAST) as client:
        await client.subscribe(CHANNEL)
        seen = Collector(client)
        try:
            await publish_numbers(hub, CHANNEL, 20, 0.0)
            await seen.wait_for(lambda c: len(c.messages()) == 20)
            old_epoch = seen.messages()[0].epoch

            accepted: dict[int, float] = {}
            publisher = asyncio.create_task(publish_numbers(hub, CHANNEL, 200, 0.01,
                                                            first=21, log=accepted))
            await eventually(lambda: len(accepted) >= 5, what="the publisher under way")
            await hub.restart()  # a new process: new history, new epoch, same port and keys
            # A request made while the hub is away waits for the reconnect and succeeds.
            extra = await client.subscribe("app:other")
            assert extra.channels == ("app:other",)
            await seen.wait_for(lambda c: len({m.epoch for m in c.messages()}) == 2)
            await seen.wait_for(lambda c: len([m for m in c.messages()
                                               if m.epoch != old_epoch]) >= 20)
            publisher.cancel()
            other = await hub.publish("app:other", {"hello": 1})
            await seen.wait_for(lambda c: len(c.messages("app:other")) == 1)
        finally:
            await seen.stop()
    kinds = [type(i).__name__ for i in seen.items]
    first_disconnect = kinds.index("Disconnected")
    assert kinds[:first_disconnect] == ["Message"] * (first_disconnect)
    assert seen.of(Disconnected)[0].code == 1001  # the old hub said goodbye
    gaps = seen.of(Gap)
    assert [g.channel for g in gaps] == [CHANNEL]
    assert "lost its history" in gaps[0].reason and old_epoch in gaps[0].reason
    gap_at = seen.items.index(gaps[0])
    assert any(isinstance(i, Reconnected) for i in seen.items[:gap_at])
    new = [m for m in seen.messages(CHANNEL) if m.epoch != old_epoch]
    assert all(seen.items.index(m) > gap_at for m in new)
    offsets = [m.offset for m in new]
    assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))  # live, contiguous
    # In order and each (epoch, offset) once. (An ``n`` may repeat: the publisher resends an
    # event whose HTTP response the stopping hub cut off, and the hub may have published it.)
    numbers = [m.data["n"] for m in seen.messages(CHANNEL)]
    assert numbers == sorted(numbers)
    positions = [(m.epoch, m.offset) for m in seen.messages(CHANNEL)]
    assert len(set(positions)) == len(positions)
    assert seen.messages("app:other")[0].offset == other["offset"]


async def test_outage_longer_than_history_is_a_gap(tmp_path: Path,
                                                  http: aiohttp.ClientSession) -> None:
    hub = RestartableHub(tmp_path, http, history={"size": 5})
    await hub.start()
    try:
        # The first retry comes 0.5-1 s after the drop: time enough to overflow the history.
        async with connect(hub.ws_url, backoff_base_s=1.0, backoff_max_s=1.0) as client:
            await client.subscribe(CHANNEL)
            seen = Collector(client)
            try:
                await publish_numbers(hub, CHANNEL, 3, 0.0)
                await seen.wait_for(lambda c: len(c.messages()) == 3)
                assert hub.node is not None
                hub.node.hub.close_all(1001, "test: going away")
                await seen.wait_for(lambda c: len(c.of(Disconnected)) == 1)
                # One request, well inside the outage: 4..23, of which history keeps 19..23.
                await hub.publish_many(CHANNEL, [{"n": n} for n in range(4, 24)])
                await seen.wait_for(lambda c: len(c.of(Reconnected)) == 1)
                await publish_numbers(hub, CHANNEL, 2, 0.0, first=24)
                await seen.wait_for(lambda c: len(c.messages()) == 5)
            finally:
                await seen.stop()
    finally:
        await hub.stop()
    gaps = seen.of(Gap)
    assert len(gaps) == 1 and "no longer covers offset 3" in gaps[0].reason
    assert [m.data["n"] for m in seen.messages()] == [1, 2, 3, 24, 25]
    assert seen.items.index(gaps[0]) < seen.items.index(seen.messages()[3])
