"""Leases, fencing, source leadership and cluster-wide demand against the real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from tests.waiting import eventually

from cryptowire.bus.redis import RedisBroker
from cryptowire.cluster.demand import ClusterDemand
from cryptowire.cluster.factory import RedisCluster
from cryptowire.cluster.leader import SourceLeader
from cryptowire.cluster.lease import RedisLease
from cryptowire.core.channels import Channel, ChannelGrammar
from cryptowire.core.source import PublishFn, SourceStatus
from cryptowire.errors import FencedError, SourceError
from cryptowire.events import Event, Publication

pytestmark = pytest.mark.integration


async def _gone(redis: Any, key: str) -> bool:
    return int(await redis.exists(key)) == 0


async def _lacks(redis: Any, key: str, member: str) -> bool:
    return not await redis.sismember(key, member)


async def wait_for(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    await eventually(pred, timeout)


@pytest.fixture
async def brokers(redis_url: str, prefix: str) -> AsyncIterator[Callable[[], Any]]:
    from cryptowire.settings import BusSettings, HistorySettings

    made: list[RedisBroker] = []

    async def make() -> RedisBroker:
        b = RedisBroker(redis_url, HistorySettings(), BusSettings(url=redis_url, prefix=prefix))
        await b.start(lambda _: None)
        made.append(b)
        return b

    yield make
    for b in made:
        await b.stop()


async def test_lease_is_exclusive_renewable_and_released_by_its_holder(brokers: Any) -> None:
    a, b = await brokers(), await brokers()
    la = RedisLease(a.redis, a.prefix, "x", holder="A", ttl_s=5)
    lb = RedisLease(b.redis, b.prefix, "x", holder="B", ttl_s=5)
    fa = await la.acquire()
    assert fa is not None
    assert await lb.acquire() is None
    assert await la.renew()
    assert await lb.current_holder() == "A"
    await lb.release()  # not the holder: nothing happens
    assert await lb.current_holder() == "A"
    await la.release()
    fb = await lb.acquire()
    assert fb is not None and fb.number > fa.number
    assert not await la.renew()


async def test_expired_lease_goes_to_the_next_node_with_a_larger_fence(brokers: Any) -> None:
    a, b = await brokers(), await brokers()
    la = RedisLease(a.redis, a.prefix, "y", holder="A", ttl_s=0.2)
    lb = RedisLease(b.redis, b.prefix, "y", holder="B", ttl_s=0.2)
    fa = await la.acquire()
    assert fa is not None
    # A "paused" past its lease: Redis expires the key.
    await eventually(lambda: _gone(a.redis, la.key), what="lease expired")
    fb = await lb.acquire()
    assert fb is not None and fb.number == fa.number + 1


async def test_stale_fence_cannot_publish(brokers: Any) -> None:
    a, b = await brokers(), await brokers()
    la = RedisLease(a.redis, a.prefix, "z", holder="A", ttl_s=0.2)
    lb = RedisLease(b.redis, b.prefix, "z", holder="B", ttl_s=5)
    fa = await la.acquire()
    assert fa is not None
    ok = await a.publish(Event("app:f", {"n": 1}), fence=fa)
    await eventually(lambda: _gone(a.redis, la.key), what="lease expired")
    # Lease expired, nobody took over yet: still refused (the lease key is gone).
    with pytest.raises(FencedError):
        await a.publish(Event("app:f", {"n": 2}), fence=fa)
    fb = await lb.acquire()
    assert fb is not None
    with pytest.raises(FencedError):
        await a.publish(Event("app:f", {"n": 3}), fence=fa)
    nxt = await b.publish(Event("app:f", {"n": 4}), fence=fb)
    assert (nxt.epoch, nxt.offset) == (ok.epoch, ok.offset + 1)
    assert a.stats()["fenced_refusals"] == 2


class FakeSource:
    """A restartable source that records its upstream topics and publishes on request."""

    name = "fake"
    kinds = frozenset({"ticker"})

    def __init__(self) -> None:
        self.topics: set[str] = set()
        self.publish: PublishFn | None = None
        self.running = False

    async def start(self, publish: PublishFn) -> None:
        self.publish, self.running = publish, True

    async def stop(self) -> None:
        self.running = False

    async def subscribe(self, channel: Channel) -> None:
        if channel.symbol == "BADUSDT":
            raise SourceError("Unknown symbol 'BADUSDT' on the fake market.")
        self.topics.add(channel.name)

    async def unsubscribe(self, channel: Channel) -> None:
        self.topics.discard(channel.name)

    def status(self) -> SourceStatus:
        return SourceStatus(name="fake", state="up", topics=len(self.topics))


class ClusterNode:
    def __init__(self, broker: RedisBroker) -> None:
        self.broker = broker
        self.source = FakeSource()
        self.grammar = ChannelGrammar({"eth": 1})
        self.demand = ClusterDemand(lambda ch: self.source if ch.kind in self.source.kinds
                                    else None, broker, linger_s=0.1, node_ttl_s=1.0)
        self.cluster = RedisCluster(self.demand, broker, lease_ttl_s=1.0)
        self.leader: SourceLeader | None = None

    async def start(self) -> None:
        [leader] = await self.cluster.attach([self.source], self.grammar.parse)
        assert isinstance(leader, SourceLeader)
        self.leader = leader
        await leader.start(self.broker.publish)

    async def stop(self) -> None:
        assert self.leader is not None
        await self.leader.stop()
        await self.cluster.close()


async def stop_quietly(nodes: list[ClusterNode]) -> None:
    for node in nodes:
        try:
            await node.stop()
        except Exception:  # noqa: BLE001 - a test may have stopped it already
            pass


@pytest.fixture
async def cluster(brokers: Any) -> AsyncIterator[Callable[[], Any]]:
    nodes: list[ClusterNode] = []

    async def make() -> ClusterNode:
        node = ClusterNode(await brokers())
        await node.start()
        nodes.append(node)
        return node

    yield make
    await stop_quietly(nodes)


def leaders(nodes: list[ClusterNode]) -> list[ClusterNode]:
    return [n for n in nodes if n.leader is not None and n.leader.leading]


async def test_one_leader_follows_the_union_of_every_nodes_demand(cluster: Any) -> None:
    nodes = [await cluster(), await cluster(), await cluster()]
    await wait_for(lambda: len(leaders(nodes)) == 1)
    [lead] = leaders(nodes)
    others = [n for n in nodes if n is not lead]
    grammar = lead.grammar
    btc, eth = grammar.parse("ticker:BTCUSDT"), grammar.parse("ticker:ETHUSDT")
    await others[0].demand.acquire(btc)
    await others[1].demand.acquire(btc)
    await others[1].demand.acquire(eth)
    assert lead.source.topics == {"ticker:BTCUSDT", "ticker:ETHUSDT"}  # verdict awaited
    assert all(not n.source.running and not n.source.topics for n in others)
    others[0].demand.release("ticker:BTCUSDT")
    # Past the linger node 1's record no longer names BTC; a later demand's verdict then
    # proves the leader has reconciled a union taken after that.
    mine = others[0].demand.key("demand", others[0].demand.node_id)
    await eventually(lambda: _lacks(others[0].broker.redis, mine, "ticker:BTCUSDT"),
                     what="node 1 released BTC")
    await others[0].demand.acquire(grammar.parse("ticker:SOLUSDT"))  # verdict awaited
    assert "ticker:BTCUSDT" in lead.source.topics  # node 2 still wants it
    others[0].demand.release("ticker:SOLUSDT")
    others[1].demand.release("ticker:BTCUSDT")
    await wait_for(lambda: lead.source.topics == {"ticker:ETHUSDT"})
    with pytest.raises(SourceError, match="BADUSDT"):
        await others[0].demand.acquire(grammar.parse("ticker:BADUSDT"))
    assert others[0].demand.count("ticker:BADUSDT") == 0


async def start_without_fast_polls(nodes: list[ClusterNode]) -> None:
    """Start ``nodes`` with fallback polls of a minute: only the pub/sub messages can wake
    the leader and the waiting node in time."""
    for node in nodes:
        node.demand.poll_s = 60.0
        node.demand._verdict_timeout_s = 60.0
        [leader] = await node.cluster.attach([node.source], node.grammar.parse)
        assert isinstance(leader, SourceLeader)
        leader._sync_s = 60.0
        node.leader = leader
        await leader.start(node.broker.publish)


async def test_verdicts_and_demand_changes_are_pushed_not_polled(brokers: Any) -> None:
    nodes = [ClusterNode(await brokers()), ClusterNode(await brokers())]
    try:
        await start_without_fast_polls(nodes)
        await wait_for(lambda: len(leaders(nodes)) == 1
                       and all(n.demand.listening for n in nodes))
        [lead] = leaders(nodes)
        [other] = [n for n in nodes if n is not lead]
        await wait_for(lambda: lead.leader is not None and lead.leader.passes > 0)
        async with asyncio.timeout(10):
            await other.demand.acquire(other.grammar.parse("ticker:BTCUSDT"))
            assert lead.source.topics == {"ticker:BTCUSDT"}
            with pytest.raises(SourceError, match="BADUSDT"):
                await other.demand.acquire(other.grammar.parse("ticker:BADUSDT"))
    finally:
        await stop_quietly(nodes)


async def test_pushed_verdicts_resume_after_a_redis_restart(private_redis: Any,
                                                            prefix: str) -> None:
    from cryptowire.settings import BusSettings, HistorySettings

    url = private_redis.url
    brokers = [RedisBroker(url, HistorySettings(), BusSettings(url=url, prefix=prefix))
               for _ in range(2)]
    for b in brokers:
        await b.start(lambda _: None)
    nodes = [ClusterNode(b) for b in brokers]
    try:
        await start_without_fast_polls(nodes)
        await wait_for(lambda: len(leaders(nodes)) == 1
                       and all(n.demand.listening for n in nodes))
        private_redis.stop()
        await wait_for(lambda: not any(n.demand.listening for n in nodes))
        await private_redis.start()
        await wait_for(lambda: all(n.demand.listening for n in nodes), timeout=10)
        await wait_for(lambda: any(n.leader is not None and n.leader.leading
                                   and n.source.running for n in nodes), timeout=10)
        async with asyncio.timeout(10):
            await nodes[0].demand.acquire(nodes[0].grammar.parse("ticker:ETHUSDT"))
        assert any(n.source.topics == {"ticker:ETHUSDT"} for n in nodes)
    finally:
        await stop_quietly(nodes)
        for b in brokers:
            await b.stop()


async def test_failover_resumes_the_demand_with_a_gap(cluster: Any) -> None:
    nodes = [await cluster(), await cluster()]
    await wait_for(lambda: len(leaders(nodes)) == 1)
    [old] = leaders(nodes)
    [new] = [n for n in nodes if n is not old]
    # Demand that exists when a leader takes over is "resumed" with a gap: add it after the
    # leader's first pass, so that the only gap is the failover's.
    await wait_for(lambda: old.leader is not None and old.leader.passes > 0)
    got: list[Publication] = []
    new.broker._deliver = got.append
    await new.broker.subscribe("ticker:SOLUSDT")
    await new.demand.acquire(new.grammar.parse("ticker:SOLUSDT"))
    assert old.source.topics == {"ticker:SOLUSDT"}
    assert old.source.publish is not None
    await old.source.publish(Event("ticker:SOLUSDT", {"price": "1"}))
    # The old leader dies without releasing anything (its tasks just stop).
    assert old.leader is not None
    await old.leader._supervisor.stop()
    stale = old.source.publish
    t0 = asyncio.get_running_loop().time()
    await wait_for(lambda: new.leader is not None and new.leader.leading, timeout=10)
    assert asyncio.get_running_loop().time() - t0 < 10
    await wait_for(lambda: new.source.topics == {"ticker:SOLUSDT"})
    with pytest.raises(FencedError):
        await stale(Event("ticker:SOLUSDT", {"price": "stale"}))
    assert new.source.publish is not None
    await new.source.publish(Event("ticker:SOLUSDT", {"price": "2"}))
    await wait_for(lambda: len(got) == 3)
    assert [p.type for p in got] == ["update", "gap", "update"]
    assert [p.offset for p in got] == [1, 2, 3]
    assert [p.data.get("price") for p in got if p.type == "update"] == ["1", "2"]


# -- a slow upstream: renewal must not wait for the source's subscribes -----------------


class Running:
    """Which nodes' sources are running right now, and the most that ever ran at once."""

    def __init__(self) -> None:
        self.now: set[int] = set()
        self.most = 0
        self.starts = 0


class SlowSource(FakeSource):
    """A fake upstream whose subscribe waits ``delay`` s for its ack (Bybit: up to 10 s)."""

    name = "slow"

    def __init__(self, running: Running, delay: float) -> None:
        super().__init__()
        self.running_set = running
        self.delay = delay
        self.in_flight = 0
        self.cancelled = 0

    async def start(self, publish: PublishFn) -> None:
        await super().start(publish)
        self.running_set.now.add(id(self))
        self.running_set.starts += 1
        self.running_set.most = max(self.running_set.most, len(self.running_set.now))

    async def stop(self) -> None:
        await super().stop()
        self.running_set.now.discard(id(self))

    async def subscribe(self, channel: Channel) -> None:
        self.in_flight += 1
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1
        self.topics.add(channel.name)


class SlowNode(ClusterNode):
    def __init__(self, broker: RedisBroker, running: Running, delay: float,
                 ttl_s: float) -> None:
        self.broker = broker
        self.source = SlowSource(running, delay)
        self.grammar = ChannelGrammar({"eth": 1})
        self.demand = ClusterDemand(lambda ch: self.source if ch.kind in self.source.kinds
                                    else None, broker, linger_s=0.1, node_ttl_s=1.0)
        self.cluster = RedisCluster(self.demand, broker, lease_ttl_s=ttl_s)
        self.leader = None


@pytest.fixture
async def slow_cluster(brokers: Any) -> AsyncIterator[Callable[..., Any]]:
    nodes: list[ClusterNode] = []

    async def make(running: Running, *, delay: float, ttl_s: float = 1.0) -> SlowNode:
        node = SlowNode(await brokers(), running, delay, ttl_s)
        await node.start()
        nodes.append(node)
        return node

    yield make
    await stop_quietly(nodes)


async def test_slow_upstream_subscribes_do_not_starve_lease_renewal(
        slow_cluster: Any, redis_url: str, prefix: str) -> None:
    """TTL 1 s, ten channels whose subscribe takes 0.4 s each (4 s one after another): one
    leadership term for 5 s, never two sources running at once, all ten subscribed."""
    from redis.asyncio import Redis

    running = Running()
    nodes = [await slow_cluster(running, delay=0.4), await slow_cluster(running, delay=0.4)]
    await wait_for(lambda: len(leaders(nodes)) == 1)
    [lead] = leaders(nodes)
    asker = next(n for n in nodes if n is not lead)
    names = [f"ticker:C{i}USDT" for i in range(10)]
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.gather(*(asker.demand.acquire(asker.grammar.parse(n)) for n in names))
    confirmed_in = loop.time() - t0
    # Not synchronisation: the point is that time passes (5 TTLs of a slow sync) while the
    # invariants are watched every 20 ms.
    end = loop.time() + 5.0
    while loop.time() < end:
        assert leaders(nodes) == [lead], "leadership moved"
        assert len(running.now) <= 1
        await asyncio.sleep(0.02)
    assert lead.source.topics == set(names)
    # Concurrent subscribes: every verdict long before 10 x 0.4 s (or the 3 s verdict timeout).
    assert confirmed_in < 2.0, confirmed_in
    assert running.starts == 1 and running.most == 1
    redis = Redis.from_url(redis_url)
    try:
        assert int(await redis.get(f"{prefix}:fence:source:slow") or 0) == 1  # one term
    finally:
        await redis.aclose()
    assert lead.leader is not None and lead.leader.terms == 1


async def test_a_leader_that_loses_its_lease_mid_sync_stops_promptly(
        slow_cluster: Any, redis_url: str, prefix: str) -> None:
    """The lease is taken away while three 5 s subscribes are in flight: within about a
    third of the TTL the node stops leading, cancels them and stops its source."""
    from redis.asyncio import Redis

    running = Running()
    node = await slow_cluster(running, delay=5.0)
    await wait_for(lambda: len(leaders([node])) == 1)
    node.demand._verdict_timeout_s = 0.1
    for i in range(3):
        await node.demand.acquire(node.grammar.parse(f"ticker:D{i}USDT"))
    await wait_for(lambda: node.source.in_flight == 3)  # all three in flight at once
    flying = node.source.in_flight
    redis = Redis.from_url(redis_url)
    try:
        await redis.set(f"{prefix}:lease:source:slow", "thief:0", px=30_000)
    finally:
        await redis.aclose()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await wait_for(lambda: not node.source.running, timeout=1.5)
    took = loop.time() - t0
    assert node.leader is not None and not node.leader.leading
    assert node.source.in_flight == 0 and node.source.cancelled == flying
    assert not node.source.topics
    assert took < 1.0, took
