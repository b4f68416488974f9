"""Cluster-wide demand: every node's subscriptions in Redis, the source leader follows the union.

Each node keeps its local reference counts exactly as :class:`~cryptowire.core.demand.Demand`
does (same linger), but instead of asking a source directly it records the channel in Redis;
the node that holds a source's lease (:class:`~cryptowire.bus.lease.SourceLeader`)
subscribes upstream for the union of all *live* nodes' sets and unsubscribes what no node
wants any more. Keys (``P`` is ``bus.prefix``)::

    P:nodes          set of node ids that ever heartbeated (the leader prunes dead ones)
    P:node:<id>      liveness: "1" with PX bus.node_ttl_s, refreshed every third of it
    P:demand:<id>    set of channel names this node has local subscribers for
    P:verdict:<ch>   "ok" once the leader subscribed upstream, "!<reason>" if its source
                     refused (expires after 30 s)

A first subscriber waits (up to ``verdict_timeout_s``) for the leader's verdict, so a refused
channel (unknown symbol...) is refused to the client with the source's own reason, whichever
node it is on. With no leader reachable in time the subscription is accepted; data starts
when a leader appears. During a Redis outage the local sets are kept and written back by the
heartbeat once Redis answers again (a restarted Redis has lost them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from cryptowire.bus.redis import REDIS_ERRORS, RedisBroker, text
from cryptowire.core.channels import Channel
from cryptowire.core.demand import Demand, Router
from cryptowire.core.source import Source
from cryptowire.errors import SourceError
from cryptowire.settings import Settings
from cryptowire.tasks import Supervisor

log = logging.getLogger("cryptowire.bus.cluster_demand")

REFUSAL_TTL_MS = 30_000
OK_TTL_MS = 86_400_000


def raise_if_cancelled() -> None:
    """Raise the cancellation that a Redis call may have swallowed.

    On Python 3.11 ``asyncio.wait_for``, which redis-py wraps around every command it sends,
    returns the result instead of raising when its task is cancelled just as the call
    completes (CPython gh-86296, fixed in 3.12); ``Task.cancelling()`` still tells. Every
    loop around Redis calls checks this at each turn, or a supervisor's ``stop`` would wait
    for it forever.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class _NodeDemand:
    """The :class:`~cryptowire.core.demand.TopicSource` the local refcounts drive."""

    name = "cluster"

    def __init__(self, owner: ClusterDemand) -> None:
        self._owner = owner

    async def subscribe(self, channel: Channel) -> None:
        await self._owner._add(channel.name)

    async def unsubscribe(self, channel: Channel) -> None:
        await self._owner._remove(channel.name)


class ClusterDemand(Demand):
    """:class:`~cryptowire.core.demand.Demand` whose upstream is the cluster's union."""

    def __init__(self, router: Router, broker: RedisBroker, *, linger_s: float = 2.0,
                 node_ttl_s: float = 5.0, lease_ttl_s: float = 3.0,
                 verdict_timeout_s: float = 3.0) -> None:
        node = _NodeDemand(self)
        super().__init__(lambda ch: node if router(ch) is not None else None,
                         linger_s=linger_s)
        self.broker = broker
        self.node_id = broker.node_id
        self._redis = broker.redis
        self._prefix = broker.prefix
        self._node_ttl_ms = max(int(node_ttl_s * 1000), 300)
        self._lease_ttl_s = lease_ttl_s
        self._verdict_timeout_s = verdict_timeout_s
        self._local: set[str] = set()
        self._removed: set[str] = set()
        self._supervisor = Supervisor("cluster-demand")
        self.leaders: list[Source] = []

    def key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    # -- lifecycle ---------------------------------------------------------------------

    async def attach(self, sources: Sequence[Source],
                     parse: Callable[[str], Channel]) -> list[Source]:
        """Start the heartbeat; wrap every source so it runs only where its lease is."""
        from cryptowire.bus.lease import SourceLeader

        if not self._supervisor.running():
            self._supervisor.spawn("heartbeat", self._heartbeat)
        self.leaders = [SourceLeader(s, self.broker, self, parse, ttl_s=self._lease_ttl_s)
                        for s in sources]
        return list(self.leaders)

    async def close(self) -> None:
        await super().close()
        await self._supervisor.stop()
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(self.key("demand", self.node_id), self.key("node", self.node_id))
                pipe.srem(self.key("nodes"), self.node_id)
                await pipe.execute()
        except REDIS_ERRORS:
            log.info("could not remove this node's demand from Redis (it expires anyway)")

    # -- this node's set ---------------------------------------------------------------

    async def _add(self, name: str) -> None:
        self._local.add(name)
        self._removed.discard(name)
        try:
            await self._beat(extra=name)
            verdict = await self._await_verdict(name)
        except REDIS_ERRORS:
            log.warning("Redis unavailable: demand for %s recorded locally only", name)
            return
        if verdict is not None:
            self._local.discard(name)
            try:
                await self._redis.srem(self.key("demand", self.node_id), name)
            except REDIS_ERRORS:
                self._removed.add(name)
            raise SourceError(verdict)

    async def _remove(self, name: str) -> None:
        self._local.discard(name)
        try:
            await self._redis.srem(self.key("demand", self.node_id), name)
        except REDIS_ERRORS:
            self._removed.add(name)

    async def _await_verdict(self, name: str) -> str | None:
        """``None`` when accepted (or no leader answered in time), else the refusal."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._verdict_timeout_s
        key = self.key("verdict", name)
        while True:
            raw = await self._redis.get(key)
            raise_if_cancelled()
            value = None if raw is None else text(raw)
            if value == "ok":
                return None
            if value is not None and value.startswith("!"):
                return value[1:]
            if loop.time() >= deadline:
                log.info("no source leader confirmed %s within %.1fs; accepted", name,
                         self._verdict_timeout_s)
                return None
            await asyncio.sleep(0.05)

    async def _beat(self, extra: str | None = None) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self.key("node", self.node_id), b"1", px=self._node_ttl_ms)
            pipe.sadd(self.key("nodes"), self.node_id)
            members = set(self._local)
            if extra is not None:
                members.add(extra)
            if members:
                pipe.sadd(self.key("demand", self.node_id), *sorted(members))
            removed = set(self._removed)
            if removed:
                pipe.srem(self.key("demand", self.node_id), *sorted(removed))
            await pipe.execute()
        self._removed -= removed

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self._beat()
            except REDIS_ERRORS as exc:
                log.debug("demand heartbeat failed: %s", exc)
            raise_if_cancelled()
            await asyncio.sleep(self._node_ttl_ms / 3000)

    # -- what the leader reads and writes ----------------------------------------------

    async def union(self) -> set[str]:
        """Channels wanted by any live node; forgets nodes whose liveness key expired."""
        nodes = sorted(text(m) for m in await self._redis.smembers(self.key("nodes")))
        if not nodes:
            return set()
        async with self._redis.pipeline(transaction=False) as pipe:
            for node in nodes:
                pipe.exists(self.key("node", node))
            alive = await pipe.execute()
        live = [n for n, ok in zip(nodes, alive, strict=True) if ok]
        dead = [n for n, ok in zip(nodes, alive, strict=True) if not ok]
        if dead:
            log.info("nodes %s missed their heartbeat; their demand is dropped", dead)
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.srem(self.key("nodes"), *dead)
                pipe.delete(*(self.key("demand", n) for n in dead))
                await pipe.execute()
        if not live:
            return set()
        members = await self._redis.sunion([self.key("demand", n) for n in live])
        return {text(m) for m in members}

    async def set_verdict(self, name: str, refusal: str | None) -> None:
        if refusal is None:
            await self._redis.set(self.key("verdict", name), b"ok", px=OK_TTL_MS)
        else:
            await self._redis.set(self.key("verdict", name), b"!" + refusal.encode(),
                                  px=REFUSAL_TTL_MS)

    async def clear_verdict(self, name: str) -> None:
        await self._redis.delete(self.key("verdict", name))

    def cluster_stats(self) -> dict[str, object]:
        return {"node_id": self.node_id, "local_demand": sorted(self._local)}


def create_demand(settings: Settings, router: Router, broker: object) -> Demand:
    """Local :class:`Demand` on the memory bus; :class:`ClusterDemand` on Redis."""
    if isinstance(broker, RedisBroker):
        return ClusterDemand(router, broker, linger_s=settings.demand.linger_s,
                             node_ttl_s=settings.bus.node_ttl_s,
                             lease_ttl_s=settings.bus.lease_ttl_s)
    return Demand(router, linger_s=settings.demand.linger_s)
