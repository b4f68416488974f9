"""The Redis broker's pub/sub reader: one connection, resynchronised after every outage.

:class:`PubSubReader` is the half of :class:`~cryptowire.bus.redis.RedisBroker` that
receives: it keeps one pub/sub connection subscribed to what the hub wants, holds live
messages until the positions are known after a (re)connect, announces a ``gap`` to the
local subscribers of every channel, hands each publication to ``deliver`` once, and a
watchdog PINGs Redis so a silent one is noticed. The broker owns the state it reads (set
in its ``__init__``); the publishing and history half stays in ``bus/redis.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from cryptowire.backoff import backoff_delay
from cryptowire.bus.base import DeliverFn
from cryptowire.bus.redis_protocol import REDIS_ERRORS, decode_message
from cryptowire.clock import now_ms
from cryptowire.core.history import new_epoch
from cryptowire.errors import BusError
from cryptowire.events import Publication

log = logging.getLogger("cryptowire.bus.redis")


class PubSubReader:
    """The reading half of the Redis broker (a base of :class:`RedisBroker`)."""

    prefix: str
    redis: Redis
    _probe: Redis
    _position: Any  # the POSITION_LUA script
    _pub_prefix: bytes
    _meta_ttl_ms: int
    _backoff_cap: float
    _deliver: DeliverFn | None
    _wanted: set[str]
    _waiters: dict[bytes, deque[asyncio.Future[None]]]
    _pubsub: PubSub | None
    _holding: list[Publication] | None
    _reset: bool
    _healthy: bool
    _synced: bool
    _down_since: int | None
    delivered: int
    reconnects: int
    gaps: int

    # -- keys --------------------------------------------------------------------------

    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def _keys(self, channel: str) -> list[str]:
        return [self.key("meta", channel), self.key("stream", channel),
                self.key("state", channel)]

    def _pub_channel(self, channel: str) -> bytes:
        return self._pub_prefix + channel.encode()

    # -- the reader --------------------------------------------------------------------

    async def _read_forever(self) -> None:
        attempt = 0
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as exc:
                if self._healthy or attempt == 0:
                    log.warning("Redis pub/sub lost (%s); reconnecting", exc)
            except Exception:
                log.exception("Redis reader failed; reconnecting")
            attempt = 0 if self._synced else attempt + 1
            self._synced = False
            self._mark_down()
            await self._close_pubsub()
            self._release_waiters()
            await asyncio.sleep(backoff_delay(attempt, base=0.1, cap=self._backoff_cap))

    async def _session(self) -> None:
        """One pub/sub connection: subscribe what is wanted, hold live messages until the
        positions are known, announce gaps, then read until the connection fails."""
        ps = self.redis.pubsub()
        self._reset = False
        await ps.connect()  # type: ignore[no-untyped-call]
        await ps.ping()
        self._pubsub = ps
        self._holding = []
        resync = asyncio.ensure_future(self._resync(ps))
        try:
            while not self._reset:
                msg = await ps.get_message(timeout=1.0)
                if msg is not None:
                    self._dispatch(msg)
                if resync.done():
                    resync.result()
        finally:
            if not resync.done():
                resync.cancel()
        raise BusError("Redis pub/sub reset by the watchdog")

    async def _resync(self, ps: PubSub) -> None:
        if self._down_since is not None:
            # Pooled command connections from before the outage are dead sockets; drop
            # them now rather than fail one command per stale connection.
            await self.redis.connection_pool.disconnect(inuse_connections=False)
        channels = sorted(self._wanted)
        waiters = []
        for channel in channels:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(self._pub_channel(channel), deque()).append(fut)
            waiters.append(fut)
        if channels:
            await ps.execute_command("SUBSCRIBE", *(self._pub_channel(c) for c in channels))
            async with asyncio.timeout(10.0):
                await asyncio.gather(*waiters)
        positions = {}
        for channel in channels:
            epoch, top = await self._position(keys=self._keys(channel),
                                              args=[new_epoch(), self._meta_ttl_ms])
            positions[channel] = (epoch.decode(), int(top))
        was_down = self._down_since is not None
        since = self._down_since or now_ms()
        self._down_since = None
        self._healthy = self._synced = True
        held, self._holding = self._holding or [], None
        if was_down:
            self.reconnects += 1
            log.info("Redis pub/sub connected again; %d channels resubscribed", len(channels))
        for channel, (epoch, top) in positions.items():
            if channel in self._wanted:
                self._deliver_gap(channel, epoch, top, since)
        for pub in held:
            pos = positions.get(pub.channel)
            if pos is None or pub.epoch != pos[0] or pub.offset > pos[1]:
                self._emit(pub)

    def _deliver_gap(self, channel: str, epoch: str, top: int, since: int) -> None:
        self.gaps += 1
        ts = now_ms()
        data = {"reason": "bus reconnected: messages since 'since' may be missing",
                "since": since}
        self._emit(Publication(channel=channel, type="gap", epoch=epoch, offset=top, ts=ts,
                               ts_received=ts, source="bus", data_json=orjson.dumps(data)))

    def _dispatch(self, msg: dict[str, Any]) -> None:
        kind = msg["type"]
        if kind == "message":
            raw: bytes = msg["channel"]
            channel = raw[len(self._pub_prefix):].decode()
            if channel not in self._wanted:
                return
            pub = decode_message(channel, msg["data"])
            if self._holding is not None:
                self._holding.append(pub)
            else:
                self._emit(pub)
        elif kind == "subscribe":
            waiters = self._waiters.get(msg["channel"])
            if waiters:
                fut = waiters.popleft()
                if not waiters:
                    del self._waiters[msg["channel"]]
                if not fut.done():
                    fut.set_result(None)

    def _emit(self, pub: Publication) -> None:
        deliver = self._deliver
        if deliver is None:
            return
        self.delivered += 1
        try:
            deliver(pub)
        except Exception:
            log.exception("delivering %s failed", pub.channel)

    def _mark_down(self) -> None:
        if self._down_since is None:
            self._down_since = now_ms()
        self._healthy = False

    def _release_waiters(self) -> None:
        """Let subscribers waiting for a confirmation go on (their gap comes later)."""
        for waiters in self._waiters.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
        self._waiters.clear()

    async def _close_pubsub(self) -> None:
        ps, self._pubsub = self._pubsub, None
        self._holding = None
        if ps is not None:
            try:
                await ps.aclose()  # type: ignore[no-untyped-call]
            except REDIS_ERRORS:
                pass

    async def _watchdog(self) -> None:
        """PING every second: a Redis that stops answering without closing the socket is
        noticed too, and the reader is made to reconnect."""
        while True:
            await asyncio.sleep(1.0)
            try:
                async with asyncio.timeout(2.0):
                    await self._probe.ping()
            except REDIS_ERRORS:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # stop() landed during the PING and the client turned the cancellation
                    # into an error: stop, or stop() waits for this loop forever
                    raise asyncio.CancelledError from None
                if self._healthy:
                    log.warning("Redis does not answer PING; bus degraded")
                    self._mark_down()
                    self._reset = True
