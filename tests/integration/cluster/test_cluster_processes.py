"""Three real hub processes on one Redis: fan-out across nodes, one leader, failover, and a
Redis restart. The demo source on a fast tick is the upstream (``upstream`` fixture)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from tests.integration.cluster.cluster_peer import HubProcess, Recorder, check_sequence
from tests.waiting import eventually

pytestmark = pytest.mark.integration

CHANNELS = ["ticker:BTCUSDT", "ticker:ETHUSDT", "trade:BTCUSDT"]


async def start_cluster(hubs: Any, url: str, n: int = 3) -> list[HubProcess]:
    t0 = time.monotonic()
    nodes: list[HubProcess] = hubs(n, url)
    await asyncio.gather(*(h.wait_ready() for h in nodes))
    print(f"cluster of {n} ready in {time.monotonic() - t0:.1f}s")
    return nodes


async def roles(nodes: list[HubProcess]) -> list[tuple[str | None, int]]:
    return list(await asyncio.gather(*(n.source_role() for n in nodes)))


async def wait_leader(nodes: list[HubProcess], timeout: float = 10.0) -> HubProcess:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rs = await roles(nodes)
        leads = [n for n, (role, _) in zip(nodes, rs, strict=True) if role == "leader"]
        if len(leads) == 1:
            return leads[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no single leader within {timeout}s: {await roles(nodes)}")


async def health_is(nodes: list[HubProcess], status: int) -> bool:
    return [(await n.get("/health"))[0] for n in nodes] == [status] * len(nodes)


async def spread_clients(nodes: list[HubProcess], per_node: int) -> list[Recorder]:
    clients = []
    for i in range(per_node * len(nodes)):
        node = nodes[i % len(nodes)]
        chans = CHANNELS if i % 2 == 0 else CHANNELS[:2]
        clients.append(Recorder(node.ws_url, chans))
    for c in clients:
        await c.start()
    return clients


def check_same_everywhere(clients: list[Recorder]) -> None:
    """Per client and channel: exactly once, in order, no gap; every client saw the same
    message at a given offset."""
    by_offset: dict[tuple[str, str, int], bytes] = {}
    for c in clients:
        for ch in c.channels:
            frames = c.of(ch)
            updates, gaps = check_sequence(frames)
            assert updates > 20 and gaps == 0, (ch, updates, gaps)
            for f in frames:
                key = (ch, f["epoch"], f["offset"])
                body = repr(f["data"]).encode()
                assert by_offset.setdefault(key, body) == body


async def test_fan_out_across_nodes_then_sigkill_the_leader(hubs: Any, redis_url: str) -> None:
    """Clients spread over three nodes all get every message of their channels once, in
    order; one node runs the source; SIGKILL it -> a new leader within 10 s, and the
    clients on the surviving nodes see at most a gap marker, never a duplicate."""
    nodes = await start_cluster(hubs, redis_url)
    leader = await wait_leader(nodes)
    clients = await spread_clients(nodes, per_node=3)
    await eventually(lambda: all(check_sequence(c.of(ch))[0] > 20
                                 for c in clients for ch in c.channels),
                     timeout=15.0, what="more than 20 updates of every channel at every client")
    snapshot = [Recorder(c.url, c.channels, frames=list(c.frames)) for c in clients]
    check_same_everywhere(snapshot)
    rs = dict(zip([n.name for n in nodes], await roles(nodes), strict=True))
    assert sorted(r for r, _ in rs.values()) == ["leader", "standby", "standby"]
    assert rs[leader.name] == ("leader", len(CHANNELS))  # one upstream topic per channel
    for ch in CHANNELS:  # all clients of a channel are at the same place
        lasts = [c.of(ch)[-1]["offset"] for c in snapshot if ch in c.channels]
        assert max(lasts) - min(lasts) < 30

    survivors = [n for n in nodes if n is not leader]
    watching = [c for c in clients if not c.url.startswith(leader.ws_url)]
    marks = {id(c): len(c.frames) for c in watching}
    leader.kill()
    t0 = time.monotonic()
    new_leader = await wait_leader(survivors, timeout=10.0)
    took = time.monotonic() - t0
    print(f"new leader {new_leader.name} after {took:.1f}s")
    assert took < 10.0
    await eventually(lambda: all(len(c.frames) > marks[id(c)] + 10 for c in watching),
                     timeout=15.0, what="data resumed on the new leader")
    for c in clients:
        await c.close()
    for c in watching:
        assert len(c.frames) > marks[id(c)] + 10  # data resumed on the new leader
        for ch in c.channels:
            _, gaps = check_sequence(c.of(ch))
            assert gaps <= 1, (ch, gaps)
    rs2 = await roles(survivors)
    assert sorted(r for r, _ in rs2) == ["leader", "standby"]


async def test_redis_restart_nodes_recover_without_restarting(
        hubs: Any, private_redis: Any) -> None:
    nodes = await start_cluster(hubs, private_redis.url, n=2)
    await wait_leader(nodes)
    clients = await spread_clients(nodes, per_node=2)
    await eventually(lambda: all(check_sequence(c.of(ch))[0] >= 5
                                 for c in clients for ch in c.channels),
                     timeout=15.0, what="a steady stream of every channel at every client")
    private_redis.stop()
    await eventually(lambda: health_is(nodes, 503), timeout=15.0,
                     what="every node degraded")  # degraded, still serving
    mark = {id(c): len(c.frames) for c in clients}
    await private_redis.start()
    await wait_leader(nodes, timeout=15.0)
    await eventually(lambda: all(any(f["type"] == "update" and f["channel"] == ch
                                     for f in c.frames[mark[id(c)]:])
                                 for c in clients for ch in c.channels),
                     timeout=15.0, what="data again on every channel at every client")
    await eventually(lambda: health_is(nodes, 200), timeout=15.0, what="every node healthy")
    for c in clients:
        await c.close()
        after = c.frames[mark[id(c)]:]
        for ch in c.channels:
            check_sequence(c.of(ch))  # no duplicate, new epoch only after a gap
            tail = [f for f in after if f["channel"] == ch]
            assert tail and tail[0]["type"] == "gap", ch  # told first, then data again
            assert tail[-1]["type"] == "update", ch
            assert tail[-1]["epoch"] != c.of(ch)[0]["epoch"]  # Redis lost history
    assert all(n.proc is not None and n.proc.poll() is None for n in nodes)
    assert await health_is(nodes, 200)
