"""Local subscription index and fan-out.

The hot path (:meth:`Hub.deliver`): a publication is framed once per dialect present among
its subscribers, and at the end of the event-loop tick each session gets its frames of that
tick in one ``transport.write``. No per-session encoding, task or await. The subscribers of a
channel in one dialect form a *group*:

- a session live in that group only (*solo*, the common case: a client of one stream) costs
  nothing per publication: the frame is appended once to the group's list for the tick, and
  at the end of the tick the group's frames are joined once and the same bytes are written to
  each of its solo sessions (behind the session's own queued replies, in the same write);
- a session live in several groups (*shared*) gets each frame appended to its own pending
  list, so its single write keeps the publications of all its channels in publication order.

Whenever a group's membership changes, or a session closes, the tick's group frames are first
*spilled* into the members' own pending lists, so a reply (unsubscribed, a close frame) never
overtakes a publication delivered before it. Each session's outbound bytes (pending + the
transport's own buffer) are bounded; a session over the bound is closed with 4008 and counted,
and the others never wait for it.

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

from cryptowire.bus.base import Broker
from cryptowire.core.channels import Channel
from cryptowire.core.demand import Demand
from cryptowire.core.session import Encoder, Group, Principal, Session, Transport
from cryptowire.errors import CryptowireError
from cryptowire.events import Publication

log = logging.getLogger("cryptowire.core.hub")

CLOSE_SLOW_CONSUMER = 4008
CLOSE_INTERNAL_ERROR = 1011

#: Session and its seams live in core/session.py; importing them from here keeps working.
__all__ = ["Encoder", "Hub", "HubStats", "Principal", "Session", "SubscribeResult", "Transport"]


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
        # channel -> encoder -> the sessions receiving it live
        self._index: dict[str, dict[Encoder, Group]] = {}
        # groups holding frames for solo sessions, to be written at the end of this tick
        self._tick: list[Group] = []
        # channel -> the last publication delivered here (where the live feed stands)
        self._last: dict[str, Publication] = {}
        # channel -> session -> (epoch, offset) it was sent up to, for sessions whose
        # subscribe replay ran ahead of the live feed: they join their group once it passes
        self._ahead: dict[str, dict[Session, tuple[str, int]]] = {}
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
        if channel in self._on_broker:
            self._last[channel] = pub
        ahead = self._ahead.get(channel)
        if ahead:
            self._catch_up(channel, pub, ahead)
        by_encoder = self._index.get(channel)
        if not by_encoder:
            return
        stats = self.stats
        for encoder, group in by_encoder.items():
            try:
                frame = encoder.frame_publication(pub)
            except Exception:  # one dialect's bug must not cost the other dialects the message
                log.exception("encoder %s failed on %s", encoder.name, channel)
                continue
            if frame is None:
                continue
            n = len(group.solo) + len(group.shared)
            size = len(frame)
            stats.messages_out += n
            stats.bytes_out += n * size
            if group.solo:  # once for all of them, written at the end of the tick
                if not group.frames:
                    self._tick.append(group)
                    if not self._flush_scheduled:
                        self._schedule_flush()
                group.frames.append(frame)
                group.size += size
            if not group.shared:
                continue
            # Session.send inlined: this loop runs once per delivery, so it does only list
            # appends and one integer compare per session (no call, no await, no task).
            limit = self.outbound_limit
            dirty = self._dirty
            was_dirty = bool(dirty)
            for session in group.shared:
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
                self._schedule_flush()

    def _schedule_flush(self) -> None:
        self._flush_scheduled = True
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        loop.call_soon(self._flush)

    def _mark_dirty(self, session: Session) -> None:
        self._dirty.append(session)
        if not self._flush_scheduled:
            self._schedule_flush()

    def _spill(self) -> None:
        """Move this tick's group frames into each solo member's own pending list (before a
        membership change or a close, so that nothing overtakes them)."""
        tick, self._tick = self._tick, []
        limit = self.outbound_limit
        for group in tick:
            frames, size = group.frames, group.size
            group.frames, group.size = [], 0
            for session in group.solo:
                if session.closed:
                    continue
                if not session.pending:
                    self._mark_dirty(session)
                session.pending.extend(frames)
                session.pending_bytes += size
                if session.pending_bytes > limit:
                    self._slow(session)

    def _flush(self) -> None:
        self._flush_scheduled = False
        tick, self._tick = self._tick, []
        stats = self.stats
        limit = self.outbound_limit
        for group in tick:
            frames = group.frames
            group.frames, group.size = [], 0
            blob = frames[0] if len(frames) == 1 else b"".join(frames)
            stats.writes += len(group.solo)
            for session in group.solo:
                if session.closed:
                    continue
                try:
                    transport = session.transport
                    if session.pending:  # its replies first, in the same write
                        data = b"".join(session.pending) + blob
                        session.pending.clear()
                        session.pending_bytes = 0
                    else:
                        data = blob
                    if transport.is_closing():
                        continue
                    if transport.get_write_buffer_size() + len(data) > limit:
                        stats.dropped += len(frames)
                        self._slow(session)
                        continue
                    transport.write(data)
                except Exception:  # a broken transport closes its own session, never the tick
                    self._broken(session)
        dirty, self._dirty = self._dirty, []
        for session in dirty:
            if not session.pending:  # written with its group above, or closed
                continue
            stats.writes += 1
            try:
                session.flush()
            except Exception:  # a broken transport closes its own session, never the tick
                self._broken(session)

    def _broken(self, session: Session) -> None:
        log.exception("writing to session %s failed: closing it", session.id)
        session.pending.clear()
        session.pending_bytes = 0
        if not session.closed:
            session.closed = True
            try:
                session._close(session, CLOSE_INTERNAL_ERROR, "Internal error")
            except Exception:
                log.exception("closing session %s failed", session.id)

    def _catch_up(self, channel: str, pub: Publication,
                  ahead: dict[Session, tuple[str, int]]) -> None:
        """Sessions whose replay ran ahead skip ``pub`` if they already have it; the first
        publication past what they were sent (or of a new epoch) makes them live."""
        for session, (epoch, sent) in list(ahead.items()):
            if session.closed or channel not in session.channels:
                del ahead[session]
            elif pub.epoch != epoch or pub.offset > sent:
                del ahead[session]
                self._join(session, channel)
        if not ahead:
            del self._ahead[channel]

    def _join(self, session: Session, channel: str) -> None:
        """Make ``session`` a live member of its dialect's group of ``channel``."""
        if self._tick:
            self._spill()
        group = self._index.setdefault(channel, {}).get(session.encoder)
        if group is None:
            group = self._index[channel][session.encoder] = Group()
        if session in group:
            return
        if session.groups == 0:
            group.solo.add(session)
            session.solo_in = group
        else:
            other = session.solo_in
            if other is not None:  # live in two groups from now on: per-session frames
                other.solo.discard(session)
                other.shared.add(session)
                session.solo_in = None
            group.shared.add(session)
        session.groups += 1

    def _leave(self, session: Session, channel: str) -> None:
        """Remove ``session`` from its group of ``channel`` (if it is live there)."""
        by_encoder = self._index.get(channel)
        group = by_encoder.get(session.encoder) if by_encoder is not None else None
        if group is None or session not in group:
            return
        if self._tick:
            self._spill()
        group.solo.discard(session)
        group.shared.discard(session)
        session.groups -= 1
        if session.solo_in is group:
            session.solo_in = None
        if session.groups == 1:  # back to one group: solo there
            for name in session.channels:
                remaining = self._index.get(name, {}).get(session.encoder)
                if remaining is not None and session in remaining.shared:
                    remaining.shared.discard(session)
                    remaining.solo.add(session)
                    session.solo_in = remaining
                    break
        if not group:
            assert by_encoder is not None
            del by_encoder[session.encoder]
            if not by_encoder:
                del self._index[channel]

    def _slow(self, session: Session) -> None:
        if session.closed:
            return
        self.stats.slow_consumer_closes += 1
        self.stats.dropped += len(session.pending)
        session.pending.clear()
        session.pending_bytes = 0
        log.warning("session %s is a slow consumer: closing with 4008", session.id)
        session.closed = True
        session._close(session, CLOSE_SLOW_CONSUMER, "Slow consumer: outbound buffer full")

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
            self._last.pop(channel, None)
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
        return (live + len(self._buffering.get(channel, ()))
                + len(self._ahead.get(channel, ())))

    def channel_counts(self) -> dict[str, int]:
        return {ch: self.subscribers(ch) for ch in self._index.keys() | self._ahead.keys()}

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
            self._go_live(session, channel.name, result.positions[channel.name][0],
                          starts[channel.name],
                          backlog.get(channel.name, []))

    def _go_live(self, session: Session, channel: str, epoch: str, start: int,
                 backlog: list[Publication]) -> None:
        held = self._buffering.get(channel, {}).pop(session, [])
        if not self._buffering.get(channel, True):
            del self._buffering[channel]
        if session.closed or channel not in session.channels:
            return
        if self._tick:  # what its other channels got this tick stays ahead of these
            self._spill()
        last = start
        encoder = session.encoder
        for pub in itertools.chain(backlog, held):
            if pub.offset > last:
                last = pub.offset
                frame = encoder.frame_publication(pub)
                if frame is not None:
                    session.send(frame)
        seen = self._last.get(channel)
        if seen is not None and seen.epoch == epoch and seen.offset >= last:
            self._join(session, channel)
        else:
            # The history read may be ahead of this node's live feed (a bus delivers with
            # some lag after the stream has the entry): until the feed passes ``last`` the
            # session skips what it was already sent (see _catch_up).
            self._ahead.setdefault(channel, {})[session] = (epoch, last)

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
            self._leave(session, name)
            ahead = self._ahead.get(name)
            if ahead is not None:
                ahead.pop(session, None)
                if not ahead:
                    del self._ahead[name]
            session.channels.discard(name)
            removed.append(name)
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
