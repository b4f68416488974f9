"""The one factory of cluster mode, :func:`create_cluster`: on the memory bus a plain local
:class:`~cryptowire.core.demand.Demand` and sources that run here; on Redis a
:class:`~cryptowire.cluster.demand.ClusterDemand` and every source wrapped in a
:class:`~cryptowire.cluster.leader.SourceLeader`. Redis modules are imported only then.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, cast

from cryptowire.bus.base import Broker
from cryptowire.core.channels import Channel
from cryptowire.core.demand import Demand, Router
from cryptowire.core.source import Source
from cryptowire.settings import Settings

if TYPE_CHECKING:
    from cryptowire.bus.redis import RedisBroker
    from cryptowire.cluster.demand import ClusterDemand


class Cluster:
    """One process alone: local demand; every source runs here."""

    def __init__(self, demand: Demand) -> None:
        self.demand = demand

    async def attach(self, sources: Sequence[Source],
                     parse: Callable[[str], Channel]) -> list[Source]:
        """The sources this node runs (on Redis: wrapped to run where their lease is)."""
        return list(sources)

    async def close(self) -> None:
        await self.demand.close()


class RedisCluster(Cluster):
    """Several nodes on one Redis: cluster-wide demand, one leader per source."""

    def __init__(self, demand: ClusterDemand, broker: RedisBroker, lease_ttl_s: float) -> None:
        super().__init__(demand)
        self.cluster_demand = demand
        self._broker = broker
        self._lease_ttl_s = lease_ttl_s

    async def attach(self, sources: Sequence[Source],
                     parse: Callable[[str], Channel]) -> list[Source]:
        from cryptowire.cluster.leader import lead

        await self.cluster_demand.start()
        return lead(self.cluster_demand, self._broker, list(sources), parse,
                    ttl_s=self._lease_ttl_s)


def create_cluster(settings: Settings, router: Router, broker: Broker) -> Cluster:
    """Pick by the scheme of ``settings.bus.url``, as :func:`~cryptowire.bus.create_broker`
    picks the broker: ``memory://`` is one process, anything else is Redis."""
    if settings.bus.url.split("://", 1)[0] == "memory":
        return Cluster(Demand(router, linger_s=settings.demand.linger_s))
    from cryptowire.cluster.demand import ClusterDemand

    redis_broker = cast("RedisBroker", broker)
    demand = ClusterDemand(router, redis_broker, linger_s=settings.demand.linger_s,
                           node_ttl_s=settings.bus.node_ttl_s)
    return RedisCluster(demand, redis_broker, settings.bus.lease_ttl_s)
