"""The local subscription index: who is subscribed to what, and how a subscribe starts.

Subscribing goes through a short *buffering* phase: the session is indexed at once but live
publications are held while the broker is asked for the position (or the history to
recover); then the reply, the recovered publications and the held ones are sent in offset
order, exactly once, and the session switches to live delivery. If that replay ran ahead of
this node's live feed (a bus delivers with some lag), the session skips what it already has
until the feed passes it. Where each channel starts (a recovery, the latest state of a
stateful channel, the stream's position) is :mod:`cryptowire.core.subscribing`. The hub
holds a :class:`~cryptowire.core.fanout.Fanout` for the live index and the writes, and a
:class:`~cryptowire.core.conflation.Conflator` for the sessions that asked for at most one
frame per interval; the broker it pulls channels from is the
:class:`~cryptowire.core.subscribing.Broker` protocol (``bus/`` implements it; core imports
nothing from there).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Iterable

from cryptowire.core.channels import Channel
from cryptowire.core.conflation import Conflator, frame_events
from cryptowire.core.demand import Demand
from cryptowire.core.fanout import Fanout
from cryptowire.core.session import Principal, Session
from cryptowire.core.subscribing import Broker, Start, SubscribeResult, plan_start
from cryptowire.errors import CryptowireError
from cryptowire.events import Publication

log = logging.getLogger("cryptowire.core.hub")

__all__ = ["Broker", "Hub", "SubscribeResult"]


class Hub:
    """The local index of who is subscribed to what; its :class:`Fanout` does the writes."""

    def __init__(self, broker: Broker, demand: Demand, *, outbound_limit: int,
                 max_outbound: int | None = None) -> None:
        self.fanout = fanout = Fanout(outbound_limit=outbound_limit, max_outbound=max_outbound)
        self.stats = fanout.stats
        self.sessions = fanout.sessions
        self._publish = fanout.publish  # bound once: deliver() is the hot path
        self.conflation = Conflator(fanout)
        self._conflated = self.conflation.channels  # channel -> groups (the hot path reads it)
        self.broker = broker
        self.demand = demand
        #: Who may read what: ``access(principal, channel)`` returns a refusal reason or None.
        self.access: Callable[[Principal, Channel], str | None] | None = None
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
        # channels whose broker subscribe is in flight -> done when it is (see _need_broker)
        self._subscribing: dict[str, asyncio.Future[None]] = {}

    @property
    def outbound_limit(self) -> int:
        return self.fanout.outbound_limit

    @outbound_limit.setter
    def outbound_limit(self, value: int) -> None:
        self.fanout.outbound_limit = value

    @property
    def max_outbound(self) -> int | None:
        return self.fanout.max_outbound

    @max_outbound.setter
    def max_outbound(self, value: int | None) -> None:
        self.fanout.max_outbound = value

    @property
    def outbound_bytes(self) -> int:
        return self.fanout.outbound_bytes

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
        if self._conflated and channel in self._conflated:
            self.conflation.publish(pub)
        self._publish(pub)

    def _catch_up(self, channel: str, pub: Publication,
                  ahead: dict[Session, tuple[str, int]]) -> None:
        """Sessions whose replay ran ahead skip ``pub`` if they already have it; the first
        publication past what they were sent (or of a new epoch) makes them live."""
        for session, (epoch, sent) in list(ahead.items()):
            if session.closed or channel not in session.channels:
                del ahead[session]
            elif pub.epoch != epoch or pub.offset > sent:
                del ahead[session]
                self.fanout.join(session, channel)
        if not ahead:
            del self._ahead[channel]

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
        """Return once this node receives ``channel`` from the broker. A second caller while
        the first one's broker subscribe is unconfirmed waits for it: a subscriber that went
        on meanwhile would read the stream's position, miss what is published before the
        confirmation, and get a hole (Redis pub/sub delivers only after SUBSCRIBE is acked)."""
        while (pending := self._subscribing.get(channel)) is not None:
            await asyncio.shield(pending)
        if channel not in self._on_broker:
            self._on_broker.add(channel)
            done = self._subscribing[channel] = asyncio.get_running_loop().create_future()
            try:
                await self.broker.subscribe(channel)
            except BaseException:
                self._on_broker.discard(channel)
                raise
            finally:
                del self._subscribing[channel]
                done.set_result(None)

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
        self.fanout.release(session)
        await self.unsubscribe(session, list(session.channels))

    def subscribers(self, channel: str) -> int:
        return (self.fanout.live(channel) + len(self._buffering.get(channel, ()))
                + len(self._ahead.get(channel, ())) + self.conflation.count(channel))

    def catching_up(self, session: Session, channel: str) -> bool:
        """Whether ``session``'s subscribe replay of ``channel`` is ahead of the live feed."""
        return session in self._ahead.get(channel, ())

    def channel_counts(self) -> dict[str, int]:
        return {ch: self.subscribers(ch) for ch in
                self.fanout.live_channels() | self._ahead.keys() | self._conflated.keys()}

    # -- subscribe / unsubscribe --------------------------------------------------------

    async def subscribe(
        self, session: Session, channels: Iterable[Channel],
        recover: dict[str, tuple[str, int]] | None = None,
        on_accepted: Callable[[SubscribeResult], None] | None = None,
        interval_ms: int | None = None,
    ) -> SubscribeResult:
        """Subscribe ``session``; rejections carry the source's reason.

        ``on_accepted`` is called with the result once positions are known and before any
        publication of the new channels is sent to the session: the dialect queues its
        reply there, so the reply always precedes the data (and a stateful channel's
        snapshot follows it). With ``interval_ms`` the channels are conflated
        (:mod:`cryptowire.core.conflation`).
        """
        result = SubscribeResult()
        wanted = self._admit(session, channels, result)
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
            await self._start(session, fresh, recover or {}, origin, result, on_accepted,
                              interval_ms)
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

    def _admit(self, session: Session, channels: Iterable[Channel],
               result: SubscribeResult) -> dict[str, Channel]:
        """The channels ``session`` may read and does not have yet, each asked of the access
        check once (a repeated name is acquired and sent once); the others are rejected."""
        wanted: dict[str, Channel] = {}
        access = self.access
        for channel in channels:
            if channel.name in session.channels or channel.name in wanted:
                continue
            refusal = access(session.principal, channel) if access else None
            if refusal is not None:
                result.rejected.append((channel.name, refusal))
            else:
                wanted[channel.name] = channel
        return wanted

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
                     on_accepted: Callable[[SubscribeResult], None] | None,
                     interval_ms: int | None) -> None:
        for channel in fresh:
            session.channels.add(channel.name)
            await self._need_broker(channel.name)
        starts: dict[str, Start] = {}
        for channel in fresh:
            name = channel.name
            start = starts[name] = await plan_start(self.broker, channel, recover.get(name),
                                                    origin[name],
                                                    conflated=interval_ms is not None)
            if start.recovered is not None:
                result.recovered[name] = start.recovered
                if start.recovered:
                    self.stats.recovered += 1
                else:
                    self.stats.recovery_failed += 1
            result.positions[name] = (start.epoch, start.offset)
            result.accepted.append(name)
        if on_accepted is not None:
            on_accepted(result)
        for channel in fresh:
            self._go_live(session, channel, starts[channel.name], interval_ms)

    def _go_live(self, session: Session, chan: Channel, start: Start,
                 interval_ms: int | None) -> None:
        """Send the snapshot, the backlog and the held publications after ``start``, each
        once and in offset order; then make the session live (or conflated)."""
        channel = chan.name
        held = self._buffering.get(channel, {}).pop(session, [])
        if not self._buffering.get(channel, True):
            del self._buffering[channel]
        if session.closed or channel not in session.channels:
            return
        epoch, last = start.epoch, start.offset
        encoder = session.encoder
        sent = [start.snapshot] if start.snapshot is not None else []
        for pub in itertools.chain(start.backlog, held):
            if pub.offset > last:
                last = pub.offset
                sent.append(pub)
        batched = interval_ms is not None and not chan.stateful
        frames = [frame_events(encoder, sent)] if batched and sent else [
            encoder.frame_publication(pub) for pub in sent]
        for frame in frames:
            if frame is not None:
                self.fanout.send(session, frame)
        if interval_ms is not None:
            self.conflation.join(session, channel, interval_ms, epoch, last, sent)
            return
        seen = self._last.get(channel)
        if seen is not None and seen.epoch == epoch and seen.offset >= last:
            self.fanout.join(session, channel)
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
            self.fanout.leave(session, name)
            self.conflation.leave(session, name)
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
            self.fanout.close(session, code, reason)
