"""One contract, every broker: the memory broker and the Redis broker must agree.

The same tests run against ``memory://`` and ``redis://`` (the shared Redis, a fresh key
prefix per test). Tests that need two nodes or a Redis to restart are Redis-only, below.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from tests.waiting import eventually

from cryptowire.bus.base import Broker
from cryptowire.bus.memory import MemoryBroker
from cryptowire.bus.redis import RedisBroker
from cryptowire.clock import now_ms
from cryptowire.errors import BusError
from cryptowire.events import Event, Publication
from cryptowire.jsonnum import loads_exact
from cryptowire.settings import BusSettings, HistorySettings

pytestmark = pytest.mark.integration

Factory = Callable[..., Any]


class Node:
    """A broker plus what it delivered (what a hub would receive)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.got: list[Publication] = []

    def of(self, channel: str) -> list[Publication]:
        return [p for p in self.got if p.channel == channel]


async def wait_for(pred: Callable[[], bool], timeout: float = 5.0) -> None:
    await eventually(pred, timeout)


@pytest.fixture(params=["memory", "redis"])
async def make_node(request: pytest.FixtureRequest) -> AsyncIterator[Factory]:
    """``await make_node(size=..., ttl_s=...)`` -> a started :class:`Node`; Redis nodes of
    one test share a prefix (they are nodes of one cluster)."""
    nodes: list[Node] = []
    url = prefix = None
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("prefix")

    async def make(size: int = 100, ttl_s: float = 600.0) -> Node:
        history = HistorySettings(size=size, ttl_s=ttl_s)
        broker: Broker
        if request.param == "memory":
            broker = MemoryBroker(history)
        else:
            assert url is not None and prefix is not None
            broker = RedisBroker(url, history, BusSettings(url=url, prefix=prefix))
        node = Node(broker)
        await broker.start(node.got.append)
        if isinstance(broker, RedisBroker):
            await wait_for(broker.healthy)
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        await node.broker.stop()


def ev(channel: str, i: int, **kw: Any) -> Event:
    return Event(channel=channel, data={"i": i, "price": f"{i}.10", "name": "ü"},
                 source="test", **kw)


async def test_offsets_are_monotonic_per_channel(make_node: Factory) -> None:
    node = await make_node()
    b = node.broker
    a_pubs = [await b.publish(ev("app:a", i)) for i in range(20)]
    b_pubs = [await b.publish(ev("app:b", i)) for i in range(5)]
    assert [p.offset for p in a_pubs] == list(range(1, 21))
    assert [p.offset for p in b_pubs] == list(range(1, 6))
    assert len({p.epoch for p in a_pubs}) == 1
    assert await b.position("app:a") == (a_pubs[0].epoch, 20)
    assert a_pubs[3].data == {"i": 3, "price": "3.10", "name": "ü"}


async def test_position_of_a_fresh_channel_is_stable(make_node: Factory) -> None:
    b = (await make_node()).broker
    epoch, top = await b.position("app:fresh")
    assert top == 0
    assert await b.position("app:fresh") == (epoch, 0)
    pub = await b.publish(ev("app:fresh", 1))
    assert (pub.epoch, pub.offset) == (epoch, 1)
    assert await b.history_since("app:fresh", epoch, 0) == [pub]


async def test_subscribed_channel_is_delivered_exactly_once_in_order(
        make_node: Factory) -> None:
    node = await make_node()
    await node.broker.subscribe("app:x")
    sent = [await node.broker.publish(ev("app:x", i)) for i in range(30)]
    # A marker after the last: delivery is in order, so once it is in nothing of the 30 is
    # still on its way (a duplicate would have arrived before it).
    marker = await node.broker.publish(ev("app:x", 30))
    await wait_for(lambda: marker in node.got)
    assert node.of("app:x") == [*sent, marker]


async def test_history_since_returns_exactly_the_missed(make_node: Factory) -> None:
    b = (await make_node(size=10)).broker
    sent = [await b.publish(ev("app:h", i, type="snapshot" if i == 0 else "update"))
            for i in range(10)]
    epoch = sent[0].epoch
    assert await b.history_since("app:h", epoch, 4) == sent[4:]
    assert await b.history_since("app:h", epoch, 0) == sent
    assert await b.history_since("app:h", epoch, 10) == []
    assert (await b.history_since("app:h", epoch, 0) or [])[0].type == "snapshot"


async def test_history_since_is_none_when_it_cannot_be_exact(make_node: Factory) -> None:
    b = (await make_node(size=5)).broker
    sent = [await b.publish(ev("app:r", i)) for i in range(12)]
    epoch = sent[0].epoch
    assert await b.history_since("app:r", "other-epoch", 10) is None
    assert await b.history_since("app:r", epoch, 13) is None  # beyond the top
    assert await b.history_since("app:r", epoch, -1) is None
    assert await b.history_since("app:r", epoch, 6) is None  # 7..12 > 5 kept
    assert await b.history_since("app:r", epoch, 7) == sent[7:]
    assert await b.history_since("app:never", epoch, 0) is None


async def test_history_is_bounded_by_age(make_node: Factory) -> None:
    b = (await make_node(ttl_s=1.0)).broker
    old = now_ms() - 5_000
    first = await b.publish(ev("app:old", 0, ts_received=old))
    await b.publish(ev("app:old", 1, ts_received=old))
    assert await b.history_since("app:old", first.epoch, 0) is None


async def test_an_event_that_cannot_be_encoded_takes_no_offset(make_node: Factory) -> None:
    """Refused before its offset is taken: no hole for recovery to skip (issue 10, item 5)."""
    b = (await make_node()).broker
    deep: Any = []
    for _ in range(299):
        deep = [deep]
    one = await b.publish(ev("app:enc", 1))
    with pytest.raises(orjson.JSONEncodeError):
        await b.publish(Event(channel="app:enc", data=deep, source="test"))
    two = await b.publish(ev("app:enc", 2))
    assert two.offset == 2 and await b.position("app:enc") == (one.epoch, 2)
    assert await b.history_since("app:enc", one.epoch, 0) == [one, two]


async def test_exact_numbers_round_trip(make_node: Factory) -> None:
    """Integers past 64 bits and decimals keep their digits through history and delivery."""
    node = await make_node()
    await node.broker.subscribe("app:num")
    text = b'{"big":123456789012345678901234567890,"px":1.50}'
    pub = await node.broker.publish(Event(channel="app:num", data=loads_exact(text)))
    assert pub.data_json == text
    [got] = await node.broker.history_since("app:num", pub.epoch, 0) or [None]
    assert got is not None and got.data_json == text
    await wait_for(lambda: len(node.of("app:num")) == 1)
    assert node.of("app:num")[0].data_json == text


async def test_unsubscribe_then_resubscribe(make_node: Factory) -> None:
    node = await make_node()
    b = node.broker
    await b.subscribe("app:u")
    one = await b.publish(ev("app:u", 1))
    await wait_for(lambda: len(node.of("app:u")) == 1)
    await b.unsubscribe("app:u")
    await b.publish(ev("app:u", 2))
    await b.subscribe("app:u")
    three = await b.publish(ev("app:u", 3))
    await wait_for(lambda: three in node.got)
    got = node.of("app:u")
    assert got[0] == one and got[-1] == three
    assert [p.offset for p in got] == sorted({p.offset for p in got})  # no duplicate


async def test_a_burst_of_concurrent_commands_all_succeed(make_node: Factory) -> None:
    """300 subscribes at once each read a position and history: none may fail for want of
    a connection (redis-py's default pool raised "Too many connections" past 100)."""
    node = await make_node()
    sent = [await node.broker.publish(ev("app:burst", i)) for i in range(3)]
    epoch = sent[0].epoch
    positions, histories = await asyncio.gather(
        asyncio.gather(*(node.broker.position("app:burst") for _ in range(300))),
        asyncio.gather(*(node.broker.history_since("app:burst", epoch, 1) for _ in range(300))),
    )
    assert set(positions) == {(epoch, 3)}
    assert all(h == sent[1:] for h in histories)
    if isinstance(node.broker, RedisBroker):
        assert node.broker.healthy()


# -- Redis only: several nodes, epochs, restarts --------------------------------------


@pytest.fixture
async def redis_nodes(redis_url: str, prefix: str) -> AsyncIterator[Factory]:
    brokers: list[RedisBroker] = []

    async def make(url: str = redis_url, size: int = 100) -> Node:
        broker = RedisBroker(url, HistorySettings(size=size),
                             BusSettings(url=url, prefix=prefix, backoff_cap_s=0.5))
        node = Node(broker)
        await broker.start(node.got.append)
        await wait_for(broker.healthy)
        brokers.append(broker)
        return node

    yield make
    for b in brokers:
        await b.stop()


async def test_node_receives_only_what_it_subscribed(redis_nodes: Factory) -> None:
    a, b, c = await redis_nodes(), await redis_nodes(), await redis_nodes()
    await b.broker.subscribe("app:x")
    await b.broker.subscribe("app:mark")
    await c.broker.subscribe("app:mark")
    sent = [await a.broker.publish(ev("app:x", i)) for i in range(50)]
    await a.broker.publish(ev("app:y", 0))
    # A marker published after everything else; one node's feed is in order, so once the
    # marker is in, whatever else was coming to that node has come.
    mark = await a.broker.publish(ev("app:mark", 1))
    await wait_for(lambda: mark in b.got and mark in c.got)
    assert b.of("app:x") == sent and b.of("app:y") == []  # exactly once, in order
    assert a.got == [] and c.of("app:x") == []  # never subscribed: nothing crossed to them
    await b.broker.unsubscribe("app:x")
    await a.broker.publish(ev("app:x", 99))
    mark2 = await a.broker.publish(ev("app:mark", 2))
    await wait_for(lambda: mark2 in b.got)
    assert len(b.of("app:x")) == 50


async def test_concurrent_publications_share_a_round_trip_in_call_order(
        redis_nodes: Factory) -> None:
    """A burst published concurrently goes to Redis in one pipeline (one round trip, and
    the other nodes receive it together); offsets follow the order of the calls."""
    a, b = await redis_nodes(), await redis_nodes()
    assert isinstance(a.broker, RedisBroker)
    await b.broker.subscribe("app:burst")
    before = a.broker.publish_batches
    sent = await asyncio.gather(*(a.broker.publish(ev("app:burst", i)) for i in range(50)))
    assert [p.offset for p in sent] == list(range(1, 51))
    assert [orjson.loads(p.data_json)["i"] for p in sent] == list(range(50))
    assert a.broker.publish_batches - before <= 2  # not 50
    await wait_for(lambda: len(b.got) >= 50)
    assert b.got == sent


async def test_recovery_on_another_node(redis_nodes: Factory) -> None:
    a, b = await redis_nodes(), await redis_nodes()
    sent = [await a.broker.publish(ev("app:rec", i)) for i in range(8)]
    assert await b.broker.history_since("app:rec", sent[2].epoch, 3) == sent[3:]
    assert await b.broker.position("app:rec") == (sent[0].epoch, 8)


async def test_lost_history_means_a_new_epoch(redis_nodes: Factory, redis_url: str,
                                              prefix: str) -> None:
    a = await redis_nodes()
    old = await a.broker.publish(ev("app:e", 1))
    assert isinstance(a.broker, RedisBroker)
    await a.broker.redis.delete(f"{prefix}:meta:app:e")
    epoch, top = await a.broker.position("app:e")
    assert epoch != old.epoch and top == 0
    assert await a.broker.history_since("app:e", old.epoch, 0) is None
    new = await a.broker.publish(ev("app:e", 2))
    assert (new.epoch, new.offset) == (epoch, 1)


async def test_a_missing_stream_entry_is_never_recovered_across(
        redis_nodes: Factory, prefix: str) -> None:
    """Recovery is exactly offset+1..top or a gap: a stream entry gone from the middle (or
    the end) makes ``history_since`` answer ``None``, never a shorter list."""
    a = await redis_nodes()
    sent = [await a.broker.publish(ev("app:hole", i)) for i in range(5)]
    epoch = sent[0].epoch
    assert isinstance(a.broker, RedisBroker)
    await a.broker.redis.xdel(f"{prefix}:stream:app:hole", "3-0")
    assert await a.broker.history_since("app:hole", epoch, 1) is None
    assert await a.broker.history_since("app:hole", epoch, 0) is None
    assert await a.broker.history_since("app:hole", epoch, 3) == sent[3:]  # after the hole
    await a.broker.redis.xdel(f"{prefix}:stream:app:hole", "5-0")
    assert await a.broker.history_since("app:hole", epoch, 3) is None  # the top is missing


async def test_redis_restart_degrades_then_recovers_with_a_gap(
        redis_nodes: Factory, private_redis: Any) -> None:
    a, b = await redis_nodes(private_redis.url), await redis_nodes(private_redis.url)
    await b.broker.subscribe("app:z")
    first = await a.broker.publish(ev("app:z", 1))
    await wait_for(lambda: len(b.got) == 1)
    private_redis.stop()
    await wait_for(lambda: not a.broker.healthy() and not b.broker.healthy())
    with pytest.raises(BusError):
        await a.broker.publish(ev("app:z", 2))
    assert await b.broker.position("app:z") == ("", 0)
    assert await b.broker.history_since("app:z", first.epoch, 1) is None
    await private_redis.start()
    await wait_for(lambda: a.broker.healthy() and b.broker.healthy(), timeout=10)
    await wait_for(lambda: any(p.type == "gap" for p in b.got))
    gap = b.got[1]
    assert gap.type == "gap" and gap.channel == "app:z"
    assert gap.epoch != first.epoch  # Redis lost everything: a new epoch
    after = await a.broker.publish(ev("app:z", 3))
    await wait_for(lambda: after in b.got)
    assert (after.epoch, after.offset) == (gap.epoch, gap.offset + 1)
    assert [p.type for p in b.got] == ["update", "gap", "update"]
