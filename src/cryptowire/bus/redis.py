"""The Redis broker (``redis://``): offsets and history in Redis, delivery over pub/sub.

The same :class:`~cryptowire.bus.base.Broker` seam as the memory broker and the same delivery
path: a publication reaches this node's hub through ``deliver`` only, decoded once per node;
the hub then frames it once per dialect. Modelled on centrifugal/centrifuge
``broker_redis.go``: one Lua script increments the channel's offset, appends to its stream
and publishes, atomically, so the pub/sub order is the offset order.

Keys (``P`` is ``bus.prefix``, ``C`` a hub channel)::

    P:meta:C     hash {e: epoch, s: top offset, b: payload bytes in the stream}; idle ones
                 expire after bus.meta_ttl_s
    P:stream:C   stream, entry id "<offset>-0", fields t = ts_received, p = payload; each
                 publication trims it to history.size entries, history.max_channel_bytes of
                 payload (meta field b) and none older than history.ttl_s; the stream
                 expires history.ttl_s after the last publication
    P:pub:C      pub/sub channel; message "<epoch>\\n<offset>\\n<payload>"
    P:state:C    the state of a ticker, kline or book channel (:mod:`cryptowire.bus.redis_state`)

    payload = orjson([type, ts, ts_received, source]) + "\\n" + data_json

A lost meta hash (Redis restarted without persistence, key evicted) means a new epoch: the
stream is deleted with it, so a client's old ``(epoch, offset)`` never matches and it is told
it has a gap. A node subscribes to ``P:pub:C`` only while its hub has local subscribers of C.

Outage: sessions stay connected; :meth:`RedisBroker.healthy` is ``False``; publishing raises
:class:`BusError`; ``position`` answers ``("", 0)`` and ``history_since`` ``None`` (the
client is told to expect a gap); the reader reconnects with capped, jittered backoff,
re-subscribes, and then delivers a ``gap`` publication to the local subscribers of every
channel, carrying the ``(epoch, offset)`` from which delivery resumes exactly. That reading
half (pub/sub, resync, gaps, watchdog) is :mod:`cryptowire.bus.redis_reader`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from typing import Any

from redis.asyncio.client import PubSub

from cryptowire.bus.base import DeliverFn
from cryptowire.bus.redis_protocol import (
    HISTORY_LUA,
    POSITION_LUA,
    PUBLISH_LUA,
    REDIS_ERRORS,
    Fence,
    connect_redis,
    decode_message,
    decode_payload,
    encode_payload,
    field_of,
    text,
)
from cryptowire.bus.redis_reader import PubSubReader
from cryptowire.bus.redis_state import (
    CHECKPOINT_LUA,
    STATE_LUA,
    Checkpoints,
    rebuild,
    state_mode,
)
from cryptowire.clock import now_ms
from cryptowire.core.history import new_epoch
from cryptowire.core.state import is_stateful, kind_of
from cryptowire.errors import BusError, FencedError
from cryptowire.events import Event, Publication
from cryptowire.settings import BusSettings, HistorySettings
from cryptowire.tasks import Supervisor

log = logging.getLogger("cryptowire.bus.redis")

__all__ = ["REDIS_ERRORS", "Fence", "RedisBroker", "connect_redis", "decode_message",
           "decode_payload", "encode_payload", "text"]


class RedisBroker(PubSubReader):
    """A broker shared by every node of a cluster through one Redis (``redis://``)."""

    name = "redis"

    def __init__(self, url: str, history: HistorySettings, bus: BusSettings, *,
                 node_id: str | None = None) -> None:
        self.url = url
        self.prefix = bus.prefix
        self.node_id = node_id or f"n-{secrets.token_hex(4)}"
        self.redis = connect_redis(url, bus.max_connections)
        # The watchdog's PING has its own connection: a pool busy with a burst of commands
        # must not look like a Redis that stopped answering.
        self._probe = connect_redis(url, 1)
        self._size = history.size
        self._ttl_ms = int(history.ttl_s * 1000)
        self._max_stream_bytes = history.max_channel_bytes
        self._meta_ttl_ms = int(bus.meta_ttl_s * 1000)
        self._backoff_cap = bus.backoff_cap_s
        self._publish = self.redis.register_script(PUBLISH_LUA)
        self._position = self.redis.register_script(POSITION_LUA)
        self._history = self.redis.register_script(HISTORY_LUA)
        self._state = self.redis.register_script(STATE_LUA)
        self._checkpoint = self.redis.register_script(CHECKPOINT_LUA)
        # Book checkpoints well within what the stream keeps (count, age, bytes), so that a
        # reader can replay the deltas after one (bus/redis_state.py).
        self._checkpoints = Checkpoints(
            every=min(64, history.size // 4), max_age_ms=max(1, self._ttl_ms // 4),
            max_bytes=max(1, history.max_channel_bytes // 4),
            max_channels=history.max_channels)
        self._pub_prefix = f"{self.prefix}:pub:".encode()
        self._deliver: DeliverFn | None = None
        self._wanted: set[str] = set()
        self._waiters: dict[bytes, deque[asyncio.Future[None]]] = {}
        self._pubsub: PubSub | None = None
        # publications (and book checkpoints) waiting for the next pipeline, and the task
        # sending them: (script, keys, args, the publisher's future, the event published)
        self._outbox: list[tuple[Any, list[Any], list[Any], asyncio.Future[Any] | None,
                                 tuple[Event, bytes] | None]] = []
        self._sender: asyncio.Future[None] | None = None
        self._holding: list[Publication] | None = None
        self._reset = False
        self._healthy = False
        self._synced = False
        self._down_since: int | None = None
        self._supervisor = Supervisor("redis-broker")
        self.published = 0
        self.publish_batches = 0
        self.delivered = 0
        self.reconnects = 0
        self.gaps = 0
        self.fenced = 0

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self, deliver: DeliverFn) -> None:
        """Start delivering; never fails because Redis is down (the reader keeps trying)."""
        self._deliver = deliver
        self._supervisor.spawn("reader", self._read_forever)
        self._supervisor.spawn("watchdog", self._watchdog)

    async def stop(self) -> None:
        self._deliver = None
        if self._sender is not None and not self._sender.done():
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
        await self._supervisor.stop()
        await self._close_pubsub()
        self._release_waiters()
        await self.redis.aclose()
        await self._probe.aclose()

    # -- publishing --------------------------------------------------------------------

    async def publish(self, event: Event, *, fence: Fence | None = None) -> Publication:
        """Stamp, store and publish ``event`` in one script; with ``fence``, only while
        that lease is still held (else :class:`FencedError`)."""
        payload, data_json = encode_payload(event)
        keys = self._keys(event.channel)
        args: list[Any] = [self._pub_channel(event.channel), payload, self._size,
                           max(self._ttl_ms, 1), self._meta_ttl_ms, new_epoch(),
                           event.ts_received, now_ms() - self._ttl_ms, self._max_stream_bytes,
                           state_mode(event)]
        if fence is not None:
            keys += [fence.lease_key, fence.fence_key]
            args += [fence.token, fence.number]
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._outbox.append((self._publish, keys, args, done, (event, data_json)))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.ensure_future(self._send_outbox())
        res = await done
        if res is None:
            self.fenced += 1
            raise FencedError(f"stale lease {fence.lease_key if fence else ''}: "
                              "another node took over, not published")
        self.published += 1
        ts = event.ts_source if event.ts_source is not None else event.ts_received
        return Publication(channel=event.channel, type=event.type, epoch=res[0].decode(),
                           offset=int(res[1]), ts=ts, ts_received=event.ts_received,
                           source=event.source, data_json=data_json)

    async def _send_outbox(self) -> None:
        """Send the queued publications, all that are waiting in one pipeline, one pipeline
        at a time: publications made concurrently (a burst, a REST batch) cost one round
        trip and reach the other nodes together (one write per client for all of them),
        and the offsets follow the order of the publish calls."""
        while self._outbox:
            batch, self._outbox = self._outbox, []
            self.publish_batches += 1
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for script, keys, args, _, _ in batch:
                        await script(keys=keys, args=args, client=pipe)
                    results = await pipe.execute(raise_on_error=False)
            except asyncio.CancelledError:
                for _, _, _, done, _ in batch + self._outbox:
                    if done is not None and not done.done():
                        done.set_exception(BusError("bus stopped, not published"))
                self._outbox = []
                raise
            except Exception as exc:  # Redis unreachable (or the client failed): all of them
                results = [exc] * len(batch)
            for (_, _, _, done, published), res in zip(batch, results, strict=True):
                if published is not None and res and not isinstance(res, BaseException):
                    self._confirmed(*published, res)
                if done is None or done.done():  # a checkpoint, or the publisher was cancelled
                    continue
                if isinstance(res, BaseException):
                    error = BusError(f"Redis unreachable, not published: {res}")
                    error.__cause__ = res
                    done.set_exception(error)
                else:
                    done.set_result(res)

    def _confirmed(self, event: Event, data_json: bytes, res: Any) -> None:
        """A book publication Redis gave an offset: its checkpoint goes in the next
        pipeline when one is due (bus/redis_state.py)."""
        if kind_of(event.channel) != "book":
            return
        ts = event.ts_source if event.ts_source is not None else event.ts_received
        epoch, offset = res[0].decode(), int(res[1])
        payload = self._checkpoints.confirmed(Publication(
            channel=event.channel, type=event.type, epoch=epoch, offset=offset, ts=ts,
            ts_received=event.ts_received, source=event.source, data_json=data_json))
        if payload is not None:
            meta, _, state = self._keys(event.channel)
            self._outbox.append((self._checkpoint, [meta, state],
                                 [epoch, offset, payload, self._meta_ttl_ms], None, None))

    # -- node subscriptions ------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        """Subscribe ``P:pub:<channel>``; returns once Redis confirmed it (so every later
        publication reaches this node), or at once while Redis is down."""
        self._wanted.add(channel)
        ps = self._pubsub
        if ps is None:
            return
        key = self._pub_channel(channel)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, deque()).append(waiter)
        try:
            await ps.execute_command("SUBSCRIBE", key)
            async with asyncio.timeout(5.0):  # not wait_for: it can drop a cancellation
                await asyncio.shield(waiter)  # on 3.11 (gh-86296) and hang a stop()
        except REDIS_ERRORS:
            log.warning("subscribe %s: Redis unavailable; will resubscribe on reconnect",
                        channel)
            self._reset = True

    async def unsubscribe(self, channel: str) -> None:
        self._wanted.discard(channel)
        ps = self._pubsub
        if ps is None:
            return
        try:
            await ps.execute_command("UNSUBSCRIBE", self._pub_channel(channel))
        except REDIS_ERRORS:
            self._reset = True

    # -- history -----------------------------------------------------------------------

    async def position(self, channel: str) -> tuple[str, int]:
        """``(epoch, top)``; ``("", 0)`` while Redis is down (the client gets a gap later)."""
        try:
            epoch, top = await self._position(keys=self._keys(channel),
                                              args=[new_epoch(), self._meta_ttl_ms])
        except REDIS_ERRORS:
            log.warning("position of %s unknown: Redis unavailable", channel)
            return "", 0
        return epoch.decode(), int(top)

    async def history_since(
        self, channel: str, epoch: str, offset: int
    ) -> list[Publication] | None:
        """Read the stream after ``offset``; ``None`` when any of it is gone."""
        if offset < 0 or not epoch:
            return None
        try:
            res = await self._history(keys=self._keys(channel),
                                      args=[epoch, offset, self._size])
        except REDIS_ERRORS:
            log.warning("history of %s unavailable: Redis unavailable", channel)
            return None
        if res is None:
            return None
        cur_epoch, top, entries = res[0].decode(), int(res[1]), res[2]
        if cur_epoch != epoch or offset > top or top - offset > self._size:
            return None
        if offset == top:
            return []
        pubs = []
        expected = offset + 1
        for entry_id, fields in entries:
            entry_offset = int(entry_id.split(b"-")[0])
            if entry_offset != expected:  # a missing entry: never recover across it
                return None
            expected += 1
            pubs.append(decode_payload(channel, epoch, entry_offset, field_of(fields, b"p")))
        if not pubs or pubs[-1].offset != top:  # the stream ends before the top
            return None
        if pubs[0].ts_received < now_ms() - self._ttl_ms:
            return None
        return pubs

    async def state(self, channel: str) -> Publication | None:
        """The channel's state as of the stream's top, rebuilt from its state key and the
        entries after it; ``None`` when unknown, not exact, or Redis is down."""
        if not is_stateful(channel):
            return None
        try:
            res = await self._state(keys=self._keys(channel), args=[self._size])
        except REDIS_ERRORS:
            log.warning("state of %s unavailable: Redis unavailable", channel)
            return None
        return rebuild(channel, res)

    # -- health ------------------------------------------------------------------------

    def healthy(self) -> bool:
        return self._healthy

    def history_bytes(self) -> int:
        """History lives in Redis, not in this process."""
        return 0

    def stats(self) -> dict[str, object]:
        return {"type": "redis", "node_id": self.node_id, "prefix": self.prefix,
                "connected": self._healthy, "published": self.published,
                "publish_batches": self.publish_batches,
                "delivered": self.delivered, "subscriptions": len(self._wanted),
                "reconnects": self.reconnects, "gaps": self.gaps,
                "state_checkpoints": self._checkpoints.written,
                "fenced_refusals": self.fenced}
