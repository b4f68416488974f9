"""Local subscription index and fan-out.

The hot path (:meth:`Hub.deliver`): a publication is framed once per dialect present among
its subscribers, the same bytes are appended to every subscriber's pending list, and at the
end of the event-loop tick each session's pending frames are written with one
``transport.write``. No per-session encoding, task or await. Each session's outbound bytes
(pending + the transport's own buffer) are bounded; a session over the bound is closed with
4008 and counted, and the others never wait for it.

Subscribing goes through a short *buffering* phase: the session is indexed at once but live
publications are held while the broker is asked for the position (or the history to
recover); then the reply, the recovered publications and the held ones are sent in offset
order, exactly once, and the session switches to live delivery.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from cryptowire.bus.base import Broker
from cryptowire.core.channels import Channel
from cryptowire.core.demand import Demand
from cryptowire.errors import CryptowireError
from cryptowire.events import Publication

log = logging.getLogger("cryptowire.core.hub")

CLOSE_SLOW_CONSUMER = 4008
CLOSE_INTERNAL_ERROR = 1011


class Transport(Protocol):
    """What the hub needs of a connection: asyncio's ``WriteTransport`` subset."""

    def write(self, data: bytes) -> None: ...

    def get_write_buffer_size(self) -> int: ...

    def is_closing(self) -> bool: ...


class Encoder(Protocol):
    """A dialect's publication framer: the full wire frame for a publication, or ``None``."""

    name: str

    def frame_publication(self, pub: Publication) -> bytes | None: ...


@dataclass(slots=True)
class Principal:
    """Who is on a session: an API key (id + scopes) or anonymous."""

    key_id: str | None = None
    name: str = "anonymous"
    scopes: frozenset[str] = frozenset()

    @property
    def anonymous(self) -> bool:
        return self.key_id is None


_session_ids = itertools.count(1)


class Session:
    """One client connection as the core sees it: a transport, a dialect, subscriptions."""

    __slots__ = (
        "id", "transport", "encoder", "principal", "channels", "pending", "pending_bytes",
        "closed", "_close", "_hub", "remote", "connected_ms", "__weakref__",
    )

    def __init__(
        self, hub: Hub, transport: Transport, encoder: Encoder,
        close: Callable[[int, str], None], *, principal: Principal | None = None,
        remote: str = "", connected_ms: int = 0,
    ) -> None:
        self.id = next(_session_ids)
        self.transport = transport
        self.encoder = encoder
        self.principal = principal or Principal()
        self.channels: set[str] = set()
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.closed = False
        self._close = close
        self._hub = hub
        self.remote = remote
        self.connected_ms = connected_ms

    def send(self, frame: bytes) -> None:
        """Queue a whole wire frame; it is written at the end of this loop tick."""
        if self.closed:
            return
        if not self.pending:
            self._hub._mark_dirty(self)
        self.pending.append(frame)
        self.pending_bytes += len(frame)
        if self.pending_bytes > self._hub.outbound_limit:
            self._hub._slow(self)

    def flush(self) -> None:
        """Write the pending frames now, in one write."""
        if not self.pending or self.closed:
            return
        data = b"".join(self.pending) if len(self.pending) > 1 else self.pending[0]
        self.pending.clear()
        self.pending_bytes = 0
        transport = self.transport
        if transport.is_closing():
            return
        if transport.get_write_buffer_size() + len(data) > self._hub.outbound_limit:
            self._hub._slow(self)
            return
        transport.write(data)

    def close(self, code: int, reason: str) -> None:
        """Close the connection with ``code`` (pending frames are flushed first)."""
        if self.closed:
            return
        self.flush()
        self.closed = True
        self.pending.clear()
        self.pending_bytes = 0
        self._close(code, reason)


@dataclass(slots=True)
class HubStats:
    """Plain counters; ``/metrics`` reads them at scrape time (no work on the hot path)."""

    publications: int = 0
    messages_out: int = 0
    bytes_out: int = 0
    slow_consumer_closes: int = 0
    dropped: int = 0
    writes: int = 0
    recovered: int = 0
    recovery_failed: int = 0
    per_dialect_encodes: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class SubscribeResult:
    """What a subscribe produced, for the dialect to put into its reply."""

    accepted: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    positions: dict[str, tuple[str, int]] = field(default_factory=dict)
    recovered: dict[str, bool] = field(default_factory=dict)


class Hub:
    """The local index of who is subscribed to what, and the fan-out."""

    def __init__(self, broker: Broker, demand: Demand, *, outbound_limit: int) -> None:
        self.broker = broker
        self.demand = demand
        self.outbound_limit = outbound_limit
        #: Who may read what: ``access(principal, channel)`` returns a refusal reason or None.
        self.access: Callable[[Principal, Channel], str | None] | None = None
        self.stats = HubStats()
        self.sessions: dict[int, Session] = {}
        # channel -> encoder -> sessions receiving it live
        self._index: dict[str, dict[Encoder, set[Session]]] = {}
        # channel -> session -> publications held while it subscribes
        self._buffering: dict[str, dict[Session, list[Publication]]] = {}
        # channel -> in-process consumers (RFQ rates, services) called on each publication
        self._watchers: dict[str, list[Callable[[Publication], None]]] = {}
        # channels this node asked the broker for (subscribe on first need, drop on last)
        self._on_broker: set[str] = set()
        self._dirty: list[Session] = []
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- fan-out ------------------------------------------------------------------------

    def deliver(self, pub: Publication) -> None:
        """Send ``pub`` to every local subscriber of its channel (the hot path)."""
        self.stats.publications += 1
        channel = pub.channel
        watchers = self._watchers.get(channel)
        if watchers:
            for watcher in watchers:
                try:
                    watcher(pub)
                except Exception:  # an in-process consumer must not stop the fan-out
                    log.exception("watcher of %s failed", channel)
        held = self._buffering.get(channel)
        if held:
            for pubs in held.values():
                pubs.append(pub)
        by_encoder = self._index.get(channel)
        if not by_encoder:
            return
        stats = self.stats
        for encoder, sessions in by_encoder.items():
            try:
                frame = encoder.frame_publication(pub)
            except Exception:  # one dialect's bug must not cost the other dialects the message
                log.exception("encoder %s failed on %s", encoder.name, channel)
                continue
            if frame is None:
                continue
            n = len(sessions)
            size = len(frame)
            stats.messages_out += n
            stats.bytes_out += n * size
            # Session.send inlined: this loop runs once per delivery, so it does only list
            # appends and one integer compare per session (no call, no await, no task).
            limit = self.outbound_limit
            dirty = self._dirty
            was_dirty = bool(dirty)
            for session in sessions:
                pending = session.pending
                if not pending:
                    if session.closed:
                        continue
                    dirty.append(session)
                pending.append(frame)
                queued = session.pending_bytes + size
                session.pending_bytes = queued
                if queued > limit:
                    self._slow(session)
            if dirty and not was_dirty and not self._flush_scheduled:
                self._flush_scheduled = True
                loop = self._loop or asyncio.get_running_loop()
                self._loop = loop
                loop.call_soon(self._flush)

    def _mark_dirty(self, session: Session) -> None:
        self._dirty.append(session)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop = self._loop or asyncio.get_running_loop()
            self._loop = loop
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        self.stats.writes += len(dirty)
        for session in dirty:
            try:
                session.flush()
            except Exception:  # a broken transport closes its own session, never the tick
                log.exception("writing to session %s failed: closing it", session.id)
                session.pending.clear()
                session.pending_bytes = 0
                if not session.closed:
                    session.closed = True
                    try:
                        session._close(CLOSE_INTERNAL_ERROR, "Internal error")
                    except Exception:
                        log.exception("closing session %s failed", session.id)

    def _slow(self, session: Session) -> None:
        if session.closed:
            return
        self.stats.slow_consumer_closes += 1
        self.stats.dropped += len(session.pending)
        session.pending.clear()
        session.pending_bytes = 0
        log.warning("session %s is a slow consumer: closing with 4008", session.id)
        session.closed = True
        session._close(CLOSE_SLOW_CONSUMER, "Slow consumer: outbound buffer full")

    # -- in-process consumers -----------------------------------------------------------

    async def watch(self, channel: str, fn: Callable[[Publication], None]) -> None:
        """Call ``fn`` with every publication of ``channel`` (the caller holds demand)."""
        self._watchers.setdefault(channel, []).append(fn)
        await self._need_broker(channel)

    async def unwatch(self, channel: str, fn: Callable[[Publication], None]) -> None:
        watchers = self._watchers.get(channel)
        if not watchers or fn not in watchers:
            return
        watchers.remove(fn)
        if not watchers:
            del self._watchers[channel]
            await self._maybe_drop_broker(channel)

    async def _need_broker(self, channel: str) -> None:
        if channel not in self._on_broker:
            self._on_broker.add(channel)
            try:
                await self.broker.subscribe(channel)
            except BaseException:
                self._on_broker.discard(channel)
                raise

    async def _maybe_drop_broker(self, channel: str) -> None:
        if (channel in self._on_broker and self.subscribers(channel) == 0
                and channel not in self._watchers):
            self._on_broker.discard(channel)
            await self.broker.unsubscribe(channel)

    # -- sessions -----------------------------------------------------------------------

    def register(self, session: Session) -> None:
        self.sessions[session.id] = session

    async def unregister(self, session: Session) -> None:
        """Forget ``session`` and release everything it was subscribed to."""
        self.sessions.pop(session.id, None)
        session.closed = True
        await self.unsubscribe(session, list(session.channels))

    def subscribers(self, channel: str) -> int:
        by_encoder = self._index.get(channel)
        live = sum(len(s) for s in by_encoder.values()) if by_encoder else 0
        return live + len(self._buffering.get(channel, ()))

    def channel_counts(self) -> dict[str, int]:
        return {ch: self.subscribers(ch) for ch in self._index}

    # -- subscribe / unsubscribe --------------------------------------------------------

    async def subscribe(
        self, session: Session, channels: Iterable[Channel],
        recover: dict[str, tuple[str, int]] | None = None,
        on_accepted: Callable[[SubscribeResult], None] | None = None,
    ) -> SubscribeResult:
        """Subscribe ``session``; rejections carry the source's reason.

        ``on_accepted`` is called with the result once positions are known and before any
        publication of the new channels is sent to the session: the dialect queues its
        reply there, so the reply always precedes the data.
        """
        result = SubscribeResult()
        wanted: dict[str, Channel] = {}
        for channel in channels:  # deduped: a repeated name is acquired (and sent) once
            if channel.name in session.channels or channel.name in wanted:
                continue
            refusal = self.access(session.principal, channel) if self.access else None
            if refusal is not None:
                result.rejected.append((channel.name, refusal))
            else:
                wanted[channel.name] = channel
        # Hold the wanted channels' publications from now on and note where their streams
        # stand: the subscription starts here, so nothing published while the source
        # acknowledges (Bybit's first frame right behind its ack) is lost, and nothing is
        # sent twice (every subscribe recovers from this origin, deduplicated by offset).
        for name in wanted:
            self._buffering.setdefault(name, {})[session] = []
        acquired: list[str] = []
        try:
            origin = {name: await self.broker.position(name) for name in wanted}
            errors = await asyncio.gather(*(self._acquire(c, acquired) for c in wanted.values()))
        except BaseException:
            for name in acquired:
                self.demand.release(name)
            self._stop_holding(session, wanted)
            raise
        fresh: list[Channel] = []
        for channel, error in zip(wanted.values(), errors, strict=True):
            if error is not None:
                result.rejected.append((channel.name, error))
                self._stop_holding(session, [channel.name])
            else:
                fresh.append(channel)
        try:
            await self._start(session, fresh, recover or {}, origin, result, on_accepted)
        except BaseException:
            # Nothing taken here may outlive a failed or cancelled subscribe: no session
            # left buffering (it would hold every publication), no demand, no broker topic.
            taken = [c.name for c in fresh if c.name in session.channels]
            for channel in fresh:
                if channel.name not in session.channels:
                    self.demand.release(channel.name)
            self._stop_holding(session, [c.name for c in fresh])
            await self.unsubscribe(session, taken)
            raise
        if session.closed and fresh:
            # The session went away while this subscribe awaited (a source, the broker):
            # its unregister may already have run without seeing these channels. Give back
            # what was taken here, or the demand count and broker subscription would leak.
            await self.unsubscribe(session, [c.name for c in fresh])
        return result

    def _stop_holding(self, session: Session, names: Iterable[str]) -> None:
        for name in names:
            held = self._buffering.get(name)
            if held is not None:
                held.pop(session, None)
                if not held:
                    del self._buffering[name]

    async def _start(self, session: Session, fresh: list[Channel],
                     recover: dict[str, tuple[str, int]], origin: dict[str, tuple[str, int]],
                     result: SubscribeResult,
                     on_accepted: Callable[[SubscribeResult], None] | None) -> None:
        for channel in fresh:
            session.channels.add(channel.name)
            await self._need_broker(channel.name)
        starts: dict[str, int] = {}
        backlog: dict[str, list[Publication]] = {}
        for channel in fresh:
            name = channel.name
            asked = name in recover
            r_epoch, r_offset = recover[name] if asked else origin[name]
            epoch, top = await self.broker.position(name)
            missed = await self.broker.history_since(name, r_epoch, r_offset)
            if asked:
                result.recovered[name] = missed is not None
                if missed is not None:
                    self.stats.recovered += 1
                else:
                    self.stats.recovery_failed += 1
            if missed is None:  # nothing to replay: the stream starts at the top
                starts[name] = top
                result.positions[name] = (epoch, top)
            else:
                starts[name] = r_offset
                backlog[name] = missed
                result.positions[name] = (epoch, r_offset)
            result.accepted.append(name)
        if on_accepted is not None:
            on_accepted(result)
        for channel in fresh:
            self._go_live(session, channel.name, starts[channel.name],
                          backlog.get(channel.name, []))

    def _go_live(self, session: Session, channel: str, start: int,
                 backlog: list[Publication]) -> None:
        held = self._buffering.get(channel, {}).pop(session, [])
        if not self._buffering.get(channel, True):
            del self._buffering[channel]
        if session.closed or channel not in session.channels:
            return
        last = start
        encoder = session.encoder
        for pub in itertools.chain(backlog, held):
            if pub.offset > last:
                last = pub.offset
                frame = encoder.frame_publication(pub)
                if frame is not None:
                    session.send(frame)
        self._index.setdefault(channel, {}).setdefault(encoder, set()).add(session)

    async def _acquire(self, channel: Channel, acquired: list[str]) -> str | None:
        if not channel.upstream:
            return None
        try:
            await self.demand.acquire(channel)
        except CryptowireError as exc:
            return exc.message
        except Exception:
            log.exception("acquiring %s failed", channel.name)
            return "Internal error while subscribing upstream; try again."
        acquired.append(channel.name)
        return None

    async def unsubscribe(self, session: Session, names: Iterable[str]) -> list[str]:
        """Remove ``names`` from ``session``; returns the ones it actually had."""
        removed: list[str] = []
        for name in names:
            if name not in session.channels:
                continue
            session.channels.discard(name)
            removed.append(name)
            by_encoder = self._index.get(name)
            if by_encoder is not None:
                group = by_encoder.get(session.encoder)
                if group is not None:
                    group.discard(session)
                    if not group:
                        del by_encoder[session.encoder]
                if not by_encoder:
                    del self._index[name]
            held = self._buffering.get(name)
            if held is not None:
                held.pop(session, None)
                if not held:
                    del self._buffering[name]
            try:
                await self._maybe_drop_broker(name)
            finally:
                self.demand.release(name)  # even when the broker failed: never leak demand
        return removed

    def close_all(self, code: int, reason: str) -> None:
        for session in list(self.sessions.values()):
            session.close(code, reason)
