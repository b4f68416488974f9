"""Conflated delivery (PROTOCOLS.md 4.3): at most one frame per channel per ``interval_ms``.

A session that subscribed with ``interval_ms`` is not a member of the channel's live group
(:mod:`cryptowire.core.fanout`) but of the channel's *conflation group* for that interval.
Each group has one timer, armed when something arrives for it and firing at the next
multiple of the interval (aligned on the event loop's clock), cancelled when the group
empties; at each firing:

- a stateful channel (ticker, kline, book) sends the channel's state as one ``snapshot``
  frame, at the offset of the last publication it includes, to each member it is news to
  (nothing when nothing changed); a book whose state became unknown sends the ``gap`` that
  says so instead, once;
- an event channel sends one ``batch`` frame with every publication of the interval in
  offset order (nothing is dropped).

Frames are encoded once per dialect per group and firing, and the bytes are shared by the
members (a member that joined mid-interval, whose subscribe already sent it part of the
batch, gets its own frame of the rest). They go out through the fan-out's ``send``, so each
session's outbound bound (4008) and the node's budget apply; the publications a group holds
for its next firing are bounded by that same per-session bound (past it, the batch goes
out at once, and the members it does not fit are closed by the fan-out as slow consumers).
There are at most as many groups as subscriptions, which sessions hold a bounded number of.

The channel's state is kept here, one :class:`~cryptowire.core.state.ChannelState` per
stateful channel with conflated members, fed the same publications in the same order as a
live subscriber (seeded with what the first member's subscribe sent it).
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable

from cryptowire.core.fanout import Fanout
from cryptowire.core.session import Encoder, Session
from cryptowire.core.state import ChannelState, is_stateful
from cryptowire.events import Publication

log = logging.getLogger("cryptowire.core.conflation")


def frame_events(encoder: Encoder, pubs: list[Publication]) -> bytes | None:
    """``pubs`` as the dialect frames them conflated: each run of ``update`` publications of
    one epoch as one batch (``frame_batch``, or one frame each where the dialect has no
    batch), any other type (a gap, a ``removed`` correction) as its own frame."""
    batch: Callable[[list[Publication]], bytes | None] | None = getattr(
        encoder, "frame_batch", None)
    out: list[bytes] = []
    run: list[Publication] = []

    def close_run() -> None:
        if run:
            frames = [batch(run)] if batch is not None else [
                encoder.frame_publication(p) for p in run]
            out.extend(f for f in frames if f is not None)
            run.clear()

    for pub in pubs:
        if pub.type == "update" and (not run or run[0].epoch == pub.epoch):
            run.append(pub)
            continue
        close_run()
        if pub.type == "update":
            run.append(pub)
        else:
            frame = encoder.frame_publication(pub)
            if frame is not None:
                out.append(frame)
    close_run()
    return b"".join(out) if out else None


class Group:
    """The conflated members of one channel at one interval, by dialect, each with the
    ``(epoch, offset)`` it was sent up to; the events held for the next firing."""

    __slots__ = ("channel", "interval_ms", "members", "events", "size", "timer")

    def __init__(self, channel: str, interval_ms: int) -> None:
        self.channel = channel
        self.interval_ms = interval_ms
        self.members: dict[Encoder, dict[Session, tuple[str, int]]] = {}
        self.events: list[Publication] = []
        self.size = 0
        self.timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return sum(len(m) for m in self.members.values())


class Conflator:
    """Every conflation group of a node; the hub feeds it the channels it holds."""

    def __init__(self, fanout: Fanout) -> None:
        self.fanout = fanout
        #: channel -> its groups (the hub's deliver() looks a publication's channel up here)
        self.channels: dict[str, list[Group]] = {}
        self._groups: dict[tuple[str, int], Group] = {}
        self._states: dict[str, ChannelState] = {}
        self._of: dict[Session, dict[str, Group]] = {}
        #: Frames encoded (once per dialect per group firing, plus partial ones) and sent.
        self.encodes = 0
        self.frames = 0

    def count(self, channel: str) -> int:
        return sum(len(g) for g in self.channels.get(channel, ()))

    def sessions(self) -> int:
        """Sessions with at least one conflated subscription."""
        return len(self._of)

    def groups(self) -> int:
        return len(self._groups)

    def join(self, session: Session, channel: str, interval_ms: int, epoch: str, last: int,
             seed: list[Publication]) -> None:
        """Make ``session`` a member of ``(channel, interval_ms)``; it was sent everything up
        to ``(epoch, last)``, ``seed`` being the publications that made that (its snapshot,
        the ones after it) for a channel whose state is not known here yet."""
        group = self._groups.get((channel, interval_ms))
        if group is None:
            group = self._groups[(channel, interval_ms)] = Group(channel, interval_ms)
            self.channels.setdefault(channel, []).append(group)
        group.members.setdefault(session.encoder, {})[session] = (epoch, last)
        self._of.setdefault(session, {})[channel] = group
        if is_stateful(channel):
            state = self._states.get(channel)
            if state is None:
                state = self._states[channel] = ChannelState(channel)
            if not state.known:
                for pub in seed:
                    state.apply(pub)
            if (state.epoch, state.offset) != (epoch, last) and group.timer is None:
                self._arm(group)  # the state is past what the member was sent

    def leave(self, session: Session, channel: str) -> None:
        groups = self._of.get(session)
        group = groups.pop(channel, None) if groups is not None else None
        if group is None:
            return
        assert groups is not None
        if not groups:
            del self._of[session]
        members = group.members.get(session.encoder)
        if members is not None:
            members.pop(session, None)
            if not members:
                del group.members[session.encoder]
        if group.members:
            return
        if group.timer is not None:
            group.timer.cancel()
        del self._groups[(channel, group.interval_ms)]
        listed = self.channels[channel]
        listed.remove(group)
        if not listed:
            del self.channels[channel]
            self._states.pop(channel, None)

    def publish(self, pub: Publication) -> None:
        """Take ``pub`` into its channel's groups (the hub calls this for channels here)."""
        groups = self.channels.get(pub.channel)
        if not groups:
            return
        state = self._states.get(pub.channel)
        if state is not None:
            state.apply(pub)
        for group in groups:
            if state is None:
                group.events.append(pub)
                group.size += len(pub.data_json)
                if group.size > self.fanout.outbound_limit:  # more than a member may hold
                    self._fire(group)
                    continue
            if group.timer is None:
                self._arm(group)

    def _arm(self, group: Group) -> None:
        loop = asyncio.get_running_loop()
        every = group.interval_ms / 1000
        group.timer = loop.call_at((math.floor(loop.time() / every) + 1) * every,
                                   self._fire, group)

    def _fire(self, group: Group) -> None:
        if group.timer is not None:
            group.timer.cancel()
            group.timer = None
        try:
            state = self._states.get(group.channel)
            if state is not None:
                self._send_state(group, state)
            else:
                self._send_events(group)
        except Exception:  # a dialect's bug must not stop the other groups' timers
            log.exception("conflated delivery of %s failed", group.channel)

    def _send_state(self, group: Group, state: ChannelState) -> None:
        pub = state.snapshot() or state.marker()
        if pub is None:
            return
        for encoder, members in group.members.items():
            frame: bytes | None = None
            for session, (epoch, last) in members.items():
                if session.closed or (epoch == pub.epoch and last >= pub.offset):
                    continue
                if frame is None:
                    self.encodes += 1
                    frame = encoder.frame_publication(pub)
                    if frame is None:
                        break
                members[session] = (pub.epoch, pub.offset)
                self.frames += 1
                self.fanout.send(session, frame)

    def _send_events(self, group: Group) -> None:
        events, group.events, group.size = group.events, [], 0
        if not events:
            return
        first, top = events[0], events[-1]
        for encoder, members in group.members.items():
            shared: bytes | None = None
            for session, (epoch, last) in members.items():
                if session.closed:
                    continue
                if epoch == first.epoch and last >= first.offset:
                    # It joined mid-interval: its subscribe sent it part of these already.
                    mine = [p for p in events if p.epoch != epoch or p.offset > last]
                    if not mine:
                        continue
                    self.encodes += 1
                    frame = frame_events(encoder, mine)
                else:
                    if shared is None:
                        self.encodes += 1
                        shared = frame_events(encoder, events) or b""
                    frame = shared
                members[session] = (top.epoch, top.offset)
                if frame:
                    self.frames += 1
                    self.fanout.send(session, frame)
