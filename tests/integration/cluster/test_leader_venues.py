"""Cluster leaders share the demand as the node routes it: by kind, and for market channels
by venue (``@binance`` to the Binance source, no ``@`` to the default venue's), so no source
subscribes another's channels (before, every leader took every channel of its kinds)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from tests.waiting import eventually

from cryptowire.bus.redis import RedisBroker
from cryptowire.cluster.demand import ClusterDemand
from cryptowire.cluster.factory import RedisCluster
from cryptowire.cluster.leader import SourceLeader
from cryptowire.core.channels import Channel, ChannelGrammar
from cryptowire.core.source import PublishFn, SourceStatus, pick

pytestmark = pytest.mark.integration

MARKET = frozenset({"ticker", "trade", "kline", "book", "liquidation"})


class VenueSource:
    def __init__(self, name: str, venues: frozenset[str] | None) -> None:
        self.name = name
        self.kinds = MARKET
        if venues is not None:
            self.venues = venues
        self.topics: set[str] = set()

    async def start(self, publish: PublishFn) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def subscribe(self, channel: Channel) -> None:
        self.topics.add(channel.name)

    async def unsubscribe(self, channel: Channel) -> None:
        self.topics.discard(channel.name)

    def status(self) -> SourceStatus:
        return SourceStatus(name=self.name, state="up", topics=len(self.topics))


@pytest.fixture
async def broker(redis_url: str, prefix: str) -> AsyncIterator[RedisBroker]:
    from cryptowire.settings import BusSettings, HistorySettings

    b = RedisBroker(redis_url, HistorySettings(), BusSettings(url=redis_url, prefix=prefix))
    await b.start(lambda _: None)
    yield b
    await b.stop()


async def test_each_leader_runs_its_venues_share_of_the_demand(broker: RedisBroker) -> None:
    bybit = VenueSource("bybit", frozenset({"linear", "spot"}))
    binance = VenueSource("binance", frozenset({"binance", "binance-spot"}))
    demo = VenueSource("demo", None)  # serves every venue: only what no venue source takes
    sources: list[Any] = [bybit, binance, demo]
    grammar = ChannelGrammar()
    route: Callable[[Channel], Any] = lambda ch: pick(sources, ch)  # noqa: E731
    demand = ClusterDemand(route, broker, linger_s=0.1, node_ttl_s=1.0)
    cluster = RedisCluster(demand, broker, lease_ttl_s=1.0)
    leaders = await cluster.attach(sources, grammar.parse)
    assert all(isinstance(leader, SourceLeader) for leader in leaders)
    assert [getattr(leader, "venues", None) for leader in leaders] == [
        bybit.venues, binance.venues, None]
    for leader in leaders:
        await leader.start(broker.publish)
    try:
        await eventually(lambda: all(getattr(x, "leading", False) for x in leaders), 5.0,
                         "every source led")
        for name in ("ticker:BTCUSDT", "ticker:BTCUSDT@binance", "book:50:ETHUSDT@spot",
                     "trade:BTCUSDT@binance-spot", "ticker:BTCUSDT@okx"):
            await demand.acquire(grammar.parse(name))  # each waits for its verdict
        assert bybit.topics == {"ticker:BTCUSDT", "book:50:ETHUSDT@spot"}
        assert binance.topics == {"ticker:BTCUSDT@binance", "trade:BTCUSDT@binance-spot"}
        assert demo.topics == {"ticker:BTCUSDT@okx"}  # no OKX source: the demo's
    finally:
        for leader in leaders:
            await leader.stop()
        await cluster.close()
