"""The hot path: encode once per dialect, group fan-out, one write per session per tick.

:class:`Fanout` holds the live index (channel -> dialect -> :class:`Group`) and writes
publications to sessions; :class:`~cryptowire.core.hub.Hub` holds one and adds subscribing
(buffering, recovery, demand, the broker) around it. A :class:`Session` is the fan-out's
record of a connection, with no link back: a reply or a close is handed to
:meth:`Fanout.send`/:meth:`Fanout.flush`/:meth:`Fanout.close` with the session.

A publication is framed once per dialect present among its subscribers, and at the end of the
event-loop tick each session gets its frames of that tick in one ``transport.write``. No
per-session encoding, task or await. The subscribers of a channel in one dialect form a
*group*:

- a session live in that group only (*solo*, the common case: a client of one stream) costs
  nothing per publication: the frame is appended once to the group's list for the tick, and
  at the end of the tick the group's frames are joined once and the same bytes are written to
  each of its solo sessions (behind the session's own queued replies, in the same write);
- a session live in several groups (*shared*) gets each frame appended to its own pending
  list, so its single write keeps the publications of all its channels in publication order.

When a group's membership changes mid-tick, only that group's frames so far are *spilled*
into its members' own pending lists (a newcomer must not get them); a session that stops
being a solo member (it leaves, closes, or joins a second group) first *takes* its share.
So a reply (unsubscribed, a close frame) never overtakes a publication delivered before it,
and the other groups keep their shared write. Order is guaranteed per channel (as in
PROTOCOLS.md); across channels, the frames of one tick may come grouped by channel.

Each session's outbound bytes (pending + the transport's own buffer) are bounded; a session
over the bound is closed with 4008 and counted, and the others never wait for it.

So are all sessions' together (``max_outbound``): a write to a session with a backlog notes
what its transport holds with it (the buffer size it reads anyway for its own bound, plus
the write) and adjusts a running total; a write to a session without one (the common case,
the kernel takes it) costs one test more and no loop. A noted size is not lowered when the
buffer drains unseen, so the total only overstates: at the end of a tick whose total passes
the bound, it is recounted from the transports and, while it is still over, the sessions
with the largest buffers are closed with 4008 and counted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from cryptowire.closecodes import CLOSE_INTERNAL_ERROR, CLOSE_SLOW_CONSUMER
from cryptowire.core.session import Encoder, Group, Session
from cryptowire.events import Publication

log = logging.getLogger("cryptowire.core.hub")


@dataclass(slots=True)
class HubStats:
    """Plain counters; ``/metrics`` reads them at scrape time (no work on the hot path)."""

    publications: int = 0
    messages_out: int = 0
    bytes_out: int = 0
    slow_consumer_closes: int = 0
    #: Of those, closed because all sessions together held more than ``max_outbound``.
    outbound_budget_closes: int = 0
    dropped: int = 0
    writes: int = 0
    recovered: int = 0
    recovery_failed: int = 0
    per_dialect_encodes: dict[str, int] = field(default_factory=dict)


class Fanout:
    """The live index and the writes to sessions (see the module docstring)."""

    def __init__(self, *, outbound_limit: int, max_outbound: int | None = None) -> None:
        self.outbound_limit = outbound_limit
        #: The bound on all sessions' transport buffers together, and their noted total.
        self.max_outbound = max_outbound
        self.outbound_bytes = 0
        self.stats = HubStats()
        self.sessions: dict[int, Session] = {}
        # channel -> encoder -> the sessions receiving it live
        self._index: dict[str, dict[Encoder, Group]] = {}
        # groups holding frames for solo sessions, to be written at the end of this tick
        self._tick: list[Group] = []
        self._dirty: list[Session] = []
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- fan-out ------------------------------------------------------------------------

    def publish(self, pub: Publication) -> None:
        """Write ``pub`` to the live subscribers of its channel (the hot path)."""
        channel = pub.channel
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
                if not group.queued:
                    group.queued = True
                    self._tick.append(group)
                    if not self._flush_scheduled:
                        self._schedule_flush()
                group.frames.append(frame)
                group.size += size
            if not group.shared:
                continue
            # Fanout.send inlined: this loop runs once per delivery, so it does only list
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

    # -- one session's writes (send/flush/close) -------------------------------------------

    def send(self, session: Session, frame: bytes) -> None:
        """Queue a whole wire frame to ``session``; written at the end of this loop tick."""
        if session.closed:
            return
        if not session.pending:
            self._mark_dirty(session)
        session.pending.append(frame)
        session.pending_bytes += len(frame)
        if session.pending_bytes > self.outbound_limit:
            self._slow(session)

    def flush(self, session: Session) -> None:
        """Write ``session``'s pending frames now, in one write."""
        pending = session.pending
        if not pending or session.closed:
            return
        data = b"".join(pending) if len(pending) > 1 else pending[0]
        pending.clear()
        session.pending_bytes = 0
        transport = session.transport
        if transport.is_closing():
            return
        held = transport.get_write_buffer_size()
        queued = held + len(data)
        if queued > self.outbound_limit:
            self._slow(session)
            return
        if held:  # a backlog: noted node-wide (see the module docstring)
            self.outbound_bytes += queued - session.buffered
            session.buffered = queued
        transport.write(data)

    def close(self, session: Session, code: int, reason: str) -> None:
        """Close ``session`` with ``code`` (pending frames are flushed first)."""
        if session.closed:
            return
        if session.solo_in is not None:  # this tick's publications go out before the close
            self._take(session, session.solo_in)
        self.flush(session)
        session.closed = True
        session.pending.clear()
        session.pending_bytes = 0
        session.on_close(session, code, reason)

    def _schedule_flush(self) -> None:
        self._flush_scheduled = True
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        loop.call_soon(self._flush)

    def _mark_dirty(self, session: Session) -> None:
        self._dirty.append(session)
        if not self._flush_scheduled:
            self._schedule_flush()

    def _spill(self, group: Group) -> None:
        """Move ``group``'s frames of this tick into each solo member's own pending list:
        before the group's membership changes, so that a newcomer does not get frames from
        before it joined and a member moving to per-session frames gets none twice."""
        frames, size = group.frames, group.size
        if not frames:
            return
        group.frames, group.size = [], 0
        for session in group.solo:
            self._queue(session, frames, size)

    def _take(self, session: Session, group: Group) -> None:
        """Give ``session`` its share of ``group``'s frames of this tick now, as it stops
        being a solo member there (it leaves, closes, or moves to per-session frames)."""
        if group.frames:
            self._queue(session, group.frames, group.size)

    def _queue(self, session: Session, frames: list[bytes], size: int) -> None:
        if session.closed:
            return
        if not session.pending:
            self._mark_dirty(session)
        session.pending.extend(frames)
        session.pending_bytes += size
        if session.pending_bytes > self.outbound_limit:
            self._slow(session)

    def _flush(self) -> None:
        self._flush_scheduled = False
        tick, self._tick = self._tick, []
        stats = self.stats
        limit = self.outbound_limit
        grown = 0  # what the writes below add to the node's outbound total
        for group in tick:
            group.queued = False
            frames = group.frames
            if not frames:  # spilled since it was queued
                continue
            group.frames, group.size = [], 0
            blob = frames[0] if len(frames) == 1 else b"".join(frames)
            stats.writes += len(group.solo)
            for session in group.solo:
                if session.closed:
                    continue
                try:
                    transport = session.transport
                    if session.pending:  # its replies first, in the same write
                        session.pending.append(blob)
                        data = b"".join(session.pending)
                        session.pending.clear()
                        session.pending_bytes = 0
                    else:
                        data = blob
                    if transport.is_closing():
                        continue
                    held = transport.get_write_buffer_size()
                    if held:  # a backlog: note it node-wide (the common case skips this)
                        queued = held + len(data)
                        if queued > limit:
                            stats.dropped += len(frames)
                            self._slow(session)
                            continue
                        grown += queued - session.buffered
                        session.buffered = queued
                    elif len(data) > limit:
                        stats.dropped += len(frames)
                        self._slow(session)
                        continue
                    transport.write(data)
                except Exception:  # a broken transport closes its own session, never the tick
                    self._broken(session)
        self.outbound_bytes += grown  # (a release meanwhile subtracted on its own: both add up)
        dirty, self._dirty = self._dirty, []
        for session in dirty:
            if not session.pending:  # written with its group above, or closed
                continue
            stats.writes += 1
            try:
                self.flush(session)
            except Exception:  # a broken transport closes its own session, never the tick
                self._broken(session)
        if self.max_outbound is not None and self.outbound_bytes > self.max_outbound:
            self._over_budget(self.max_outbound)

    def _over_budget(self, budget: int) -> None:
        """Recount every session's transport buffer; while the total is over ``budget``,
        close the session holding the most (4008)."""
        sizes: list[tuple[int, Session]] = []
        total = 0
        for session in self.sessions.values():
            if session.closed:
                session.buffered = 0  # out of the total from now on
                continue
            try:
                size = session.transport.get_write_buffer_size()
            except Exception:  # a broken transport is its read loop's to notice
                size = 0
            session.buffered = size
            total += size
            sizes.append((size, session))
        self.outbound_bytes = total
        if total <= budget:
            return
        sizes.sort(key=lambda item: item[0], reverse=True)
        for size, session in sizes:
            if total <= budget or size == 0:
                break
            total -= size
            self.stats.outbound_budget_closes += 1
            log.warning("session %s holds %d of the node's %d outbound bytes (over "
                        "server.max_outbound_bytes): closing with 4008", session.id, size,
                        total + size)
            self._slow(session)

    def release(self, session: Session) -> None:
        """Take a closing session's noted buffer out of the node's total."""
        self.outbound_bytes -= session.buffered
        session.buffered = 0

    def _broken(self, session: Session) -> None:
        log.exception("writing to session %s failed: closing it", session.id)
        session.pending.clear()
        session.pending_bytes = 0
        self.release(session)
        if not session.closed:
            session.closed = True
            try:
                session.on_close(session, CLOSE_INTERNAL_ERROR, "Internal error")
            except Exception:
                log.exception("closing session %s failed", session.id)

    # -- the live index ------------------------------------------------------------------

    def live(self, channel: str) -> int:
        """How many sessions receive ``channel`` live."""
        by_encoder = self._index.get(channel)
        return sum(len(g) for g in by_encoder.values()) if by_encoder else 0

    def live_channels(self) -> set[str]:
        return set(self._index)

    def group(self, channel: str, encoder: Encoder) -> Group | None:
        """The group of ``channel``'s live subscribers in ``encoder``'s dialect."""
        by_encoder = self._index.get(channel)
        return by_encoder.get(encoder) if by_encoder is not None else None

    def join(self, session: Session, channel: str) -> None:
        """Make ``session`` a live member of its dialect's group of ``channel``."""
        group = self._index.setdefault(channel, {}).get(session.encoder)
        if group is None:
            group = self._index[channel][session.encoder] = Group()
        if session in group:
            return
        self._spill(group)  # what the group got before the newcomer is not the newcomer's
        if session.groups == 0:
            group.solo.add(session)
            session.solo_in = group
        else:
            other = session.solo_in
            if other is not None:  # live in two groups from now on: per-session frames
                self._take(session, other)
                other.solo.discard(session)
                other.shared.add(session)
                session.solo_in = None
            group.shared.add(session)
        session.groups += 1

    def leave(self, session: Session, channel: str) -> None:
        """Remove ``session`` from its group of ``channel`` (if it is live there)."""
        by_encoder = self._index.get(channel)
        group = by_encoder.get(session.encoder) if by_encoder is not None else None
        if group is None or session not in group:
            return
        if session in group.solo:  # what it got this tick goes out before its next reply
            self._take(session, group)
        group.solo.discard(session)
        group.shared.discard(session)
        session.groups -= 1
        if session.solo_in is group:
            session.solo_in = None
        if session.groups == 1:  # back to one group: solo there
            for name in session.channels:
                remaining = self._index.get(name, {}).get(session.encoder)
                if remaining is not None and session in remaining.shared:
                    self._spill(remaining)  # its frames so far are in its own list already
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
        self.release(session)
        log.warning("session %s is a slow consumer: closing with 4008", session.id)
        session.closed = True
        session.on_close(session, CLOSE_SLOW_CONSUMER, "Slow consumer: outbound buffer full")
