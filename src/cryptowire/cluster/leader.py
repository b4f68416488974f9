"""Source leadership: a source runs only on the node that holds its lease.

:class:`SourceLeader` wraps a source; it takes the lease ``source:<name>``
(:class:`~cryptowire.cluster.lease.RedisLease`) and, while it holds it, runs the source for
the cluster-wide demand (:class:`~cryptowire.cluster.demand.ClusterDemand`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

from cryptowire.backoff import backoff_delay
from cryptowire.bus.redis import REDIS_ERRORS, Fence, RedisBroker
from cryptowire.clock import now_ms
from cryptowire.cluster.demand import REFUSAL_TTL_MS, ClusterDemand
from cryptowire.cluster.lease import RedisLease, raise_if_cancelled
from cryptowire.core.channels import Channel
from cryptowire.core.source import PublishFn, Source, SourceStatus, pick, serves, venues_of
from cryptowire.errors import BusError, ChannelError, CryptowireError, FencedError
from cryptowire.events import Event
from cryptowire.tasks import Supervisor

log = logging.getLogger("cryptowire.cluster.leader")


class SourceLeader:
    """A :class:`~cryptowire.core.source.Source` that runs ``source`` only while this node
    holds the lease ``source:<name>``, subscribed to the cluster-wide demand for its kinds.

    On taking over, it publishes a ``gap`` on every channel it resumes (events around the
    change of leader may be missing; none is published twice: the fence refuses a deposed
    leader's publications). The wrapped source must be restartable (``start`` after
    ``stop``). ``subscribe``/``unsubscribe`` are no-ops: demand reaches the leader through
    Redis (:class:`~cryptowire.cluster.demand.ClusterDemand`).

    Two tasks, so that a slow upstream never delays the lease:

    * ``lease`` (supervised) only acquires and renews the lease, every ``ttl_s / 3``, each
      renewal bounded by that period. It alone promotes and demotes this node.
    * the *term* task, one per leadership, started by a promotion and cancelled by the
      demotion: it starts the source, then follows the demand: a pass runs when a node's
      demand changed (pushed, :meth:`ClusterDemand.changes`), and at least every ``sync_s``
      (the fallback for a lost message, and what drops dead nodes' demand). Each pass
      starts the missing subscribes (and the unsubscribes) concurrently, at most
      ``max_concurrent`` upstream calls at a time, and waits for them at most ``pass_s``;
      a call still running then goes on in the background (the next passes skip its
      channel) and is refused after ``op_timeout_s``. Every step re-checks that the fence
      is still this node's, so a node that lost its lease starts nothing new, and the
      demotion cancels whatever is still in flight before it stops the source.
    """

    def __init__(self, source: Source, broker: RedisBroker, demand: ClusterDemand,
                 parse: Callable[[str], Channel], *, ttl_s: float,
                 sync_s: float = 1.0, pass_s: float = 1.0, op_timeout_s: float = 30.0,
                 max_concurrent: int = 32,
                 route: Callable[[Channel], Source | None] | None = None) -> None:
        self.source = source
        self.name = source.name
        self.kinds = source.kinds
        self.venues = venues_of(source)
        #: Where the node routes a channel: this leader runs its source's share of the demand.
        self._route = route or (lambda ch: source if serves(source, ch) else None)
        self._parsed: dict[str, Channel | None] = {}
        self.lease = RedisLease(broker.redis, broker.prefix, f"source:{source.name}",
                                holder=broker.node_id, ttl_s=ttl_s)
        self._broker = broker
        self._demand = demand
        self._parse = parse
        self._ttl_s = ttl_s
        self._sync_s = sync_s
        self._pass_s = pass_s
        self._op_timeout_s = op_timeout_s
        self._slots = asyncio.Semaphore(max_concurrent)
        self._supervisor = Supervisor(f"leader:{source.name}")
        self._subscribed: dict[str, Channel] = {}
        self._refused: dict[str, int] = {}
        self._ops: dict[str, asyncio.Task[None]] = {}
        self._gap: str | None = None
        self._gap_owed: dict[str, str] = {}
        self._term: asyncio.Task[None] | None = None
        self._source_started = False
        self._deposed = False
        self._failed = False
        self._start_failures = 0
        self._last_renewed = 0.0
        self._wake = asyncio.Event()
        self._changes = demand.changes()
        self.leader: str | None = None
        self.terms = 0
        #: Demand sync passes completed in this node's terms (tests wait for the first).
        self.passes = 0

    @property
    def leading(self) -> bool:
        return self.lease.fence is not None

    async def start(self, publish: PublishFn) -> None:
        self._supervisor.spawn("lease", self._keep_lease, backoff_cap=2.0)

    async def stop(self) -> None:
        await self._supervisor.stop()
        if self.leading or self._term is not None or self._source_started:
            await self._demote("node stopping")

    async def subscribe(self, channel: Channel) -> None:
        return None

    async def unsubscribe(self, channel: Channel) -> None:
        return None

    def status(self) -> SourceStatus:
        if self.leading:
            st = self.source.status()
            return replace(st, extra={**st.extra, "role": "leader", "fence": self.terms})
        inner = self.source.status()
        return SourceStatus(name=self.name, state="up", demo=inner.demo,
                            detail=f"standby: runs on node {self.leader or '(none yet)'}",
                            extra={"role": "standby", "leader": self.leader})

    # -- the lease task: acquire, renew, promote, demote ---------------------------------

    async def _keep_lease(self) -> None:
        try:
            await self._lease_loop()
        except asyncio.CancelledError:
            # The node stops (or dies, in tests): its term does not outlive the lease task.
            if self._term is not None:
                self._term.cancel()
            raise

    async def _lease_loop(self) -> None:
        every = self._ttl_s / 3
        loop = asyncio.get_running_loop()
        while True:
            raise_if_cancelled()
            try:
                if not self.leading:
                    sent = loop.time()
                    fence = await self.lease.acquire()
                    if fence is None:
                        self.leader = await self.lease.current_holder()
                        await asyncio.sleep(every)
                        continue
                    self._last_renewed = sent
                    self._promote(fence)
                await self._pause(every)
                if self._failed:
                    await self._demote("the source failed to start")
                    self._start_failures += 1
                    await asyncio.sleep(backoff_delay(self._start_failures, cap=2.0))
                    continue
                if self._deposed:
                    await self._demote("publish refused by the fence")
                    continue
                await self._renew(every)
            except (*REDIS_ERRORS, BusError) as exc:
                log.debug("lease %s: Redis unavailable (%s)", self.lease.key, exc)
                await asyncio.sleep(min(every, 0.5))

    async def _renew(self, every: float) -> None:
        loop = asyncio.get_running_loop()
        sent = loop.time()
        try:
            async with asyncio.timeout(every):
                ok = await self.lease.renew()
        except REDIS_ERRORS as exc:
            # The lease may still be ours in Redis; give it up before it can have expired.
            if loop.time() - self._last_renewed > self._ttl_s * 0.8:
                await self._demote(f"cannot renew the lease ({str(exc) or type(exc).__name__})")
            return
        if ok:
            self._last_renewed = sent
        else:
            await self._demote("lease lost to another node")

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when the term task asks for attention."""
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            pass
        self._wake.clear()

    def _promote(self, fence: Fence) -> None:
        self.terms = fence.number
        self.leader = self._broker.node_id
        self._deposed = self._failed = False
        self._gap = f"source {self.name} resumed on node {self.leader}"
        self._gap_owed.clear()
        log.info("node %s leads source %s (fence %d)", self.leader, self.name, fence.number)
        self._term = asyncio.get_running_loop().create_task(
            self._lead(fence), name=f"leader:{self.name}:term-{fence.number}")

    async def _demote(self, why: str) -> None:
        log.warning("node %s stops leading source %s: %s", self._broker.node_id, self.name, why)
        term, self._term = self._term, None
        if term is not None:
            term.cancel()
            await asyncio.gather(term, return_exceptions=True)
        channels = list(self._subscribed.values())
        self._subscribed.clear()
        if channels:
            calls = [asyncio.ensure_future(self._unsubscribe_quietly(c)) for c in channels]
            _, late = await asyncio.wait(calls, timeout=self._pass_s)
            for call in late:
                call.cancel()
            await asyncio.gather(*calls, return_exceptions=True)
        if self._source_started:
            self._source_started = False
            try:
                await self.source.stop()
            except Exception:
                log.exception("source %s failed to stop", self.name)
        try:
            await self.lease.release()
        except REDIS_ERRORS:
            self.lease.fence = None
        self.leader = None
        self._deposed = False

    # -- the term task: run the source, follow the demand --------------------------------

    def _holds(self, fence: Fence) -> bool:
        """Still this term's lease (checked between steps: a lost lease starts nothing)."""
        return self.lease.fence is fence and not self._deposed

    async def _lead(self, fence: Fence) -> None:
        try:
            self._source_started = True
            await self.source.start(self._publisher(fence))
        except Exception:
            # Never hold the lease with a source that did not start: let another node try.
            log.exception("source %s failed to start", self.name)
            self._failed = True
            self._wake.set()
            return
        self._start_failures = 0
        try:
            while self._holds(fence):
                raise_if_cancelled()
                try:
                    await self._sync(fence)
                except (*REDIS_ERRORS, BusError) as exc:
                    log.debug("source %s: demand not synced (%s)", self.name, exc)
                except Exception:
                    log.exception("source %s: demand sync failed", self.name)
                else:
                    self.passes += 1
                raise_if_cancelled()
                await self._next_change()
        finally:
            ops = list(self._ops.values())
            for op in ops:
                op.cancel()
            await asyncio.gather(*ops, return_exceptions=True)
            self._ops.clear()

    async def _next_change(self) -> None:
        """Wait for a change of some node's demand, or ``sync_s`` at most."""
        try:
            async with asyncio.timeout(self._sync_s):
                await self._changes.wait()
        except TimeoutError:
            pass

    def _publisher(self, fence: Fence) -> PublishFn:
        broker = self._broker

        async def publish(event: Event) -> Any:
            try:
                return await broker.publish(event, fence=fence)
            except FencedError:
                self._deposed = True
                self._wake.set()
                raise

        return publish

    async def _sync(self, fence: Fence) -> None:
        """One pass: start what the union of every live node's demand adds or drops, then
        wait for the calls in flight until they are done or ``pass_s`` ran out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._pass_s
        self._changes.clear()
        wanted = {n for n in await self._demand.union() if self._wants(n)}
        if not self._holds(fence):
            return
        now = now_ms()
        for name in sorted(wanted - self._subscribed.keys() - self._ops.keys()):
            if self._refused.get(name, 0) > now:
                continue
            gap = self._gap_owed.pop(name, self._gap)
            self._launch(name, self._subscribe_one(fence, name, gap))
        self._gap = None  # only the channels resumed on taking over get one
        for name in sorted(self._subscribed.keys() - wanted - self._ops.keys()):
            self._launch(name, self._unsubscribe_one(fence, name, self._subscribed.pop(name)))
        if self._ops:
            await asyncio.wait(list(self._ops.values()),
                               timeout=max(0.0, deadline - loop.time()))

    def _wants(self, name: str) -> bool:
        """Whether the node routes the demanded channel ``name`` here: its kind, and its
        venue (the ``@suffix`` or the grammar's default venue)."""
        if name.split(":", 1)[0] not in self.kinds:
            return False
        if name not in self._parsed:
            if len(self._parsed) >= 100_000:  # bounded: names come and go with the demand
                self._parsed.clear()
            try:
                self._parsed[name] = self._parse(name)
            except ChannelError:
                self._parsed[name] = None
        channel = self._parsed[name]
        return channel is not None and self._route(channel) is self.source

    def _launch(self, name: str, call: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(call, name=f"{self.name}:{name}")
        self._ops[name] = task

        def done(t: asyncio.Task[None]) -> None:
            if self._ops.get(name) is t:
                del self._ops[name]

        task.add_done_callback(done)

    async def _subscribe_one(self, fence: Fence, name: str, gap: str | None) -> None:
        channel: Channel | None = None
        try:
            channel = self._parse(name)
            async with self._slots:
                if not self._holds(fence):
                    return
                if gap is not None:
                    await self._broker.publish(Event(
                        channel=name, type="gap", source=self.name,
                        data={"reason": gap, "since": now_ms()}), fence=fence)
                raise_if_cancelled()
                if not self._holds(fence):
                    return
                async with asyncio.timeout(self._op_timeout_s):
                    await self.source.subscribe(channel)
        except FencedError:
            self._deposed = True
            self._wake.set()
            return
        except BusError:
            if gap is not None:  # Redis is down: the next pass tries again, gap included
                self._gap_owed[name] = gap
            return
        except Exception as exc:
            if isinstance(exc, CryptowireError):
                reason = exc.message
            elif isinstance(exc, TimeoutError):
                reason = "Upstream did not confirm the subscription in time."
                if channel is not None:
                    await self._unsubscribe_quietly(channel)
            else:
                reason = f"Upstream subscribe failed: {exc.__class__.__name__}"
            self._refused[name] = now_ms() + REFUSAL_TTL_MS
            await self._verdict(fence, name, reason)
            return
        self._subscribed[name] = channel
        await self._verdict(fence, name, None)

    async def _unsubscribe_one(self, fence: Fence, name: str, channel: Channel) -> None:
        async with self._slots:
            await self._unsubscribe_quietly(channel)
        if self._holds(fence):
            try:
                await self._demand.clear_verdict(name)
            except REDIS_ERRORS:
                pass  # it expires

    async def _unsubscribe_quietly(self, channel: Channel) -> None:
        try:
            async with asyncio.timeout(self._op_timeout_s):
                await self.source.unsubscribe(channel)
        except Exception:
            log.exception("source %s failed to unsubscribe %s", self.name, channel.name)

    async def _verdict(self, fence: Fence, name: str, refusal: str | None) -> None:
        if not self._holds(fence):
            return
        try:
            await self._demand.set_verdict(name, refusal)
        except REDIS_ERRORS as exc:
            log.debug("verdict of %s not written (%s)", name, exc)


def lead(demand: ClusterDemand, broker: RedisBroker, sources: list[Source],
         parse: Callable[[str], Channel], *, ttl_s: float) -> list[Source]:
    """Wrap every source so that it runs only on the node holding its lease, for the channels
    the node routes to it (:func:`~cryptowire.core.source.pick` over ``sources``)."""
    return [SourceLeader(s, broker, demand, parse, ttl_s=ttl_s,
                         route=lambda ch: pick(sources, ch)) for s in sources]
