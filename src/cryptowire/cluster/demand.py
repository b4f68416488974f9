"""Cluster-wide demand: every node's subscriptions in Redis, the source leader follows the union.

Each node keeps its local reference counts exactly as :class:`~cryptowire.core.demand.Demand`
does (same linger), but instead of asking a source directly it records the channel in Redis;
the node that holds a source's lease (:class:`~cryptowire.cluster.leader.SourceLeader`)
subscribes upstream for the union of all *live* nodes' sets and unsubscribes what no node
wants any more. Keys (``P`` is ``bus.prefix``)::

    P:nodes          set of node ids that ever heartbeated (the leader prunes dead ones)
    P:node:<id>      liveness: "1" with PX bus.node_ttl_s, refreshed every third of it
    P:demand:<id>    set of channel names this node has local subscribers for
    P:verdict:<ch>   "ok" once the leader subscribed upstream, "!<reason>" if its source
                     refused (expires after 30 s)
    P:cluster        pub/sub: "v <ch>" when a verdict is written, "d" when a node's set
                     changed

Both are pushed, not polled: a node waiting for a verdict wakes on the ``v`` message, a
leader starts its next sync pass on the ``d`` message. A slow poll (``poll_s``) stays only as
the fallback for a message lost while the pub/sub connection was down.

A first subscriber waits (up to ``verdict_timeout_s``) for the leader's verdict, so a refused
channel (unknown symbol...) is refused to the client with the source's own reason, whichever
node it is on. With no leader reachable in time the subscription is accepted; data starts
when a leader appears. During a Redis outage the local sets are kept and written back by the
heartbeat once Redis answers again (a restarted Redis has lost them).
"""

from __future__ import annotations

import asyncio
import logging

from cryptowire.backoff import backoff_delay
from cryptowire.bus.redis import REDIS_ERRORS, RedisBroker, text
from cryptowire.cluster.lease import raise_if_cancelled
from cryptowire.core.channels import Channel
from cryptowire.core.demand import Demand, Router
from cryptowire.errors import SourceError
from cryptowire.tasks import Supervisor

log = logging.getLogger("cryptowire.cluster.demand")

REFUSAL_TTL_MS = 30_000
OK_TTL_MS = 86_400_000


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
                 node_ttl_s: float = 5.0,
                 verdict_timeout_s: float = 3.0, poll_s: float = 1.0) -> None:
        node = _NodeDemand(self)
        super().__init__(lambda ch: node if router(ch) is not None else None,
                         linger_s=linger_s)
        self.broker = broker
        self.node_id = broker.node_id
        self._redis = broker.redis
        self._prefix = broker.prefix
        self._node_ttl_ms = max(int(node_ttl_s * 1000), 300)
        self._verdict_timeout_s = verdict_timeout_s
        self.poll_s = poll_s
        self._channel = self.key("cluster")
        self._verdict_waiters: dict[str, list[asyncio.Event]] = {}
        self._change_waiters: list[asyncio.Event] = []
        #: Subscribed to ``P:cluster`` (pushed verdicts and changes reach this node).
        self.listening = False
        self._heard = False
        self._local: set[str] = set()
        self._removed: set[str] = set()
        self._supervisor = Supervisor("cluster-demand")

    def key(self, *parts: str) -> str:
        return ":".join((self._prefix, *parts))

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start the heartbeat and the listener of pushed verdicts and changes."""
        if not self._supervisor.running():
            self._supervisor.spawn("heartbeat", self._heartbeat)
            self._supervisor.spawn("listen", self._listen)

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
            await self._changed()
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
            await self._changed()
        except REDIS_ERRORS:
            self._removed.add(name)

    async def _changed(self) -> None:
        await self._redis.publish(self._channel, b"d")

    async def _await_verdict(self, name: str) -> str | None:
        """``None`` when accepted (or no leader answered in time), else the refusal.

        Woken by the leader's ``v`` message; reads the key again at most every ``poll_s``
        in case that message was lost."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._verdict_timeout_s
        key = self.key("verdict", name)
        wake = asyncio.Event()
        waiters = self._verdict_waiters.setdefault(name, [])
        waiters.append(wake)
        try:
            while True:
                wake.clear()
                raw = await self._redis.get(key)
                raise_if_cancelled()
                value = None if raw is None else text(raw)
                if value == "ok":
                    return None
                if value is not None and value.startswith("!"):
                    return value[1:]
                left = deadline - loop.time()
                if left <= 0:
                    log.info("no source leader confirmed %s within %.1fs; accepted", name,
                             self._verdict_timeout_s)
                    return None
                await _wait(wake, min(left, self.poll_s))
        finally:
            waiters.remove(wake)
            if not waiters:
                del self._verdict_waiters[name]

    def changes(self) -> asyncio.Event:
        """An event set whenever some node's demand changed (one per leader)."""
        wake = asyncio.Event()
        self._change_waiters.append(wake)
        return wake

    async def _listen(self) -> None:
        """Hold a pub/sub subscription to ``P:cluster``, resubscribing after a Redis outage
        (meanwhile the waiters fall back to their slow polls)."""
        attempt = 0
        while True:
            try:
                await self._listen_once()
            except REDIS_ERRORS as exc:
                log.debug("cluster pub/sub lost: %s", exc)
            raise_if_cancelled()
            attempt = 0 if self._heard else attempt + 1
            self._heard = False
            await asyncio.sleep(backoff_delay(attempt, base=0.1, cap=2.0))

    async def _listen_once(self) -> None:
        """One pub/sub connection: wake who waits for its messages until it fails."""
        ps = self._redis.pubsub()
        try:
            await ps.subscribe(self._channel)
            self.listening = self._heard = True
            for wake in self._change_waiters:  # anything may have changed while it was down
                wake.set()
            while True:
                msg = await ps.get_message(ignore_subscribe_messages=True, timeout=5.0)
                raise_if_cancelled()
                if msg is not None and msg.get("type") == "message":
                    self._notified(text(msg["data"]))
        finally:
            self.listening = False
            try:
                await ps.aclose()  # type: ignore[no-untyped-call]
            except REDIS_ERRORS:
                pass

    def _notified(self, data: str) -> None:
        if data == "d":
            for wake in self._change_waiters:
                wake.set()
        elif data.startswith("v "):
            for wake in self._verdict_waiters.get(data[2:], ()):
                wake.set()

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
        """Write the verdict on ``name`` and wake the nodes waiting for it."""
        async with self._redis.pipeline(transaction=True) as pipe:
            if refusal is None:
                pipe.set(self.key("verdict", name), b"ok", px=OK_TTL_MS)
            else:
                pipe.set(self.key("verdict", name), b"!" + refusal.encode(),
                         px=REFUSAL_TTL_MS)
            pipe.publish(self._channel, b"v " + name.encode())
            await pipe.execute()

    async def clear_verdict(self, name: str) -> None:
        await self._redis.delete(self.key("verdict", name))


async def _wait(event: asyncio.Event, seconds: float) -> None:
    """Wait until ``event`` is set or ``seconds`` passed."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        pass
