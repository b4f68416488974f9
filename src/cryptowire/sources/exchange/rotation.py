"""Make-before-break socket rotation ahead of a venue's connection age limit.

A market that declares ``Limits.max_lifetime_s`` (Binance: 24 h) has each socket rotated when
it has lived ``Limits.rotate_after_s`` (the lifetime minus ``rotation_margin_s``): a
replacement socket to the same endpoint subscribes every stream of the old one (one batch,
chunked by ``args_per_request``) and waits for the acks; from then on both sockets' frames go
through a :class:`Handover`, which hands each stream over to the replacement at a point where
nothing is lost or repeated; when every stream is handed over (or after half the margin) the
replacement takes the old socket's place (shard, counters) and the old one is closed. The
topic states are not touched: they see one continuous stream per topic, so the publications
(and a client's book) continue exactly, with no ``gap``.

Per stream, by what the codec gives (:class:`~.codec.Data` ``seq``/``prev``):

- **with a sequence** (books, and any stream whose frames carry the venue's sequence): a
  frame is delivered only if it is the next after the last delivered one ``P`` of that
  stream (``prev <= P < seq``, ``prev`` = the venue's own predecessor field, else the previous
  frame of the stream on the same socket); the replacement's first frame (a snapshot) only
  anchors it. The old socket delivers until the replacement's next frame follows ``P``; from
  then on only the replacement does (frames at or before ``P`` dropped). Exact: no update is
  applied twice or skipped, whichever socket is ahead. A Binance diff stream continues
  without a new REST snapshot (``pu``), a Bybit/OKX book from its snapshot's sequence on.
- **without one** (tickers, klines, trades of a venue that gives no sequence): the stream
  switches at a frame boundary, at the replacement's first frame of it, after which the old
  socket's frames are dropped. Exact for frames that carry the whole state (tickers, klines);
  for events a frame both sockets carry around the switch may be repeated or missed, so a
  venue should give trades their id as ``seq`` (one ``Data`` per trade if sockets may group
  them differently).

A stream the replacement has not taken over when the handover ends (deadline, or the old
socket closed meanwhile) is re-synchronised on the replacement like a reconnect: ``gap``, the
state reset, a re-subscribe. If the replacement does not connect, the old socket is kept (the
error is in ``/stats``: ``rotation_error``) and the rotation is tried again every quarter of
the margin until the venue closes the old socket, which then reconnects as any loss (gap
markers). If the replacement drops during the handover, the old socket is kept and the
streams already handed over are re-synchronised on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from cryptowire.errors import SourceError
from cryptowire.sources.exchange.codec import Data
from cryptowire.sources.exchange.connection import Connection
from cryptowire.sources.exchange.subs import RECONNECTED
from cryptowire.sources.exchange.venue import Stream


@dataclass(slots=True)
class _Lane:
    covered: bool = False  # the replacement delivers this stream from now on
    last_new: int | None = None  # seq of the replacement's last frame of it


class Handover:
    """Which frames of a rotation's two sockets reach the topic states (pure bookkeeping).
    ``applied`` is the source's stream key -> ``seq`` of the last frame it delivered."""

    def __init__(self, keys: Iterable[str], applied: dict[str, int]) -> None:
        self.lanes = {key: _Lane() for key in keys}
        self.applied = applied

    def track(self, key: str) -> None:
        """A stream subscribed during the rotation (on both sockets)."""
        self.lanes.setdefault(key, _Lane())

    def forget(self, key: str) -> None:
        self.lanes.pop(key, None)

    def restart(self, key: str) -> None:
        """The stream's state broke mid-rotation and re-syncs on the replacement: only the
        replacement's frames count from now on (the state waits for its snapshot)."""
        self.lanes[key] = _Lane(covered=True)
        self.applied.pop(key, None)

    @property
    def complete(self) -> bool:
        return all(lane.covered for lane in self.lanes.values())

    def keys(self, covered: bool) -> list[str]:
        return [key for key, lane in self.lanes.items() if lane.covered is covered]

    def accept(self, item: Data, new: bool) -> bool:
        """Deliver this frame (from the replacement when ``new``, else the old socket)?"""
        lane = self.lanes.get(item.stream)
        last = self.applied.get(item.stream)
        if lane is None:
            return not new
        if lane.covered:
            return new and (item.seq is None or last is None or item.seq > last)
        if not new:
            return True  # the old socket is the authority until the replacement follows it
        if item.seq is None or last is None:
            lane.covered = True  # nothing to continue from: switch at this frame
            return True
        prev = item.prev if item.prev is not None else lane.last_new
        lane.last_new = item.seq
        if prev is not None and prev <= last < item.seq:
            lane.covered = True
            return True
        if item.seq == last:  # caught up exactly: the replacement's next frame follows
            lane.covered = True
        return False


class Host(Protocol):
    """What a rotation needs of the :class:`~.source.ExchangeSource`."""

    def replacement(self, old: Connection) -> Connection:
        """A new, unregistered connection to ``old``'s endpoint."""
        ...

    def streams_of(self, conn: Connection) -> list[Stream]: ...

    def applied(self, market: str) -> dict[str, int]: ...

    def promote(self, old: Connection, new: Connection) -> None:
        """``new`` takes ``old``'s place and streams."""
        ...

    async def resync(self, conn: Connection, keys: list[str], reason: str) -> None:
        """Gap, reset and re-subscribe ``keys`` on ``conn`` (reset before the first await)."""
        ...


@dataclass(eq=False)
class Rotation:
    old: Connection
    new: Connection
    handover: Handover
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    why: str = ""
    failed: str | None = None  # the replacement dropped during the handover
    due: bool = False  # the replacement reached its own rotation age meanwhile


class Rotations:
    """The rotations in progress of one source, by connection (old and new)."""

    def __init__(self, host: Host, log: logging.Logger) -> None:
        self.host = host
        self.log = log
        self.by_conn: dict[Connection, Rotation] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, old: Connection) -> None:
        if (rot := self.by_conn.get(old)) is not None or old.retired:
            if rot is not None and old is rot.new:
                rot.due = True  # rotate it once it has taken over
            return
        task = asyncio.create_task(self._run(old), name=f"{old.name}-rotate")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        news = {rot.new for rot in self.by_conn.values()}
        self.by_conn.clear()
        await asyncio.gather(*(new.stop() for new in news))

    def ended(self, conn: Connection, why: str) -> None:
        """The handover completed (``conn`` = the replacement, ``why`` = "handed over") or a
        socket of it dropped."""
        rot = self.by_conn.get(conn)
        if rot is None or rot.ended.is_set():
            return
        if conn is rot.new and why != "handed over":
            rot.failed = f"replacement lost: {why}"
        elif conn is rot.old and rot.new.state != "up":  # nothing to hand over to yet
            rot.failed = f"the old socket closed before the replacement was up: {why}"
        rot.why = why
        # The old socket's streams move on (no reconnect) unless the rotation failed: then
        # the replacement goes and the old one reconnects as after any loss.
        conn.retired = (conn is rot.old) is (rot.failed is None)
        rot.ended.set()

    async def _run(self, old: Connection) -> None:
        margin, since = old.market.limits.margin_s, old.connected_since_ms
        while not old.retired and old.state == "up" and old.connected_since_ms == since:
            if await self._attempt(old, margin / 2):
                return
            await asyncio.sleep(margin / 4)  # keep the old socket; try again while it lives

    async def _attempt(self, old: Connection, limit_s: float) -> bool:
        new = self.host.replacement(old)
        streams = self.host.streams_of(old)
        rot = Rotation(old, new, Handover([s.key for s in streams],
                                          self.host.applied(old.market.key)))
        self.by_conn[old] = self.by_conn[new] = rot
        self.log.info("%s: rotating (%d streams)", old.name, len(streams))
        try:
            async with asyncio.timeout(limit_s):
                await new.adopt(streams)
                if rot.handover.complete:
                    rot.why = "handed over"
                else:
                    await rot.ended.wait()
        except (SourceError, TimeoutError) as exc:
            if new.state != "up" or isinstance(exc, SourceError):
                return await self._abandon(rot, f"replacement did not connect: {exc}")
            rot.why = f"handover incomplete after {limit_s:g} s"
        if rot.failed is not None:
            return await self._abandon(rot, rot.failed)
        await self._finish(rot)
        return True

    async def _abandon(self, rot: Rotation, error: str) -> bool:
        """Keep the old socket; re-synchronise on it what the replacement had taken over."""
        rot.old.rotation_error = error
        self.log.warning("%s: rotation failed (%s); keeping the old socket", rot.old.name,
                         error)
        taken = [k for k in rot.handover.keys(covered=True) if k in rot.old.streams]
        rot.new.retired = True
        del self.by_conn[rot.old], self.by_conn[rot.new]
        if taken and rot.old.state == "up":
            await self.host.resync(rot.old, taken, f"{RECONNECTED}socket rotation failed: {error}")
        await rot.new.stop()
        return False

    async def _finish(self, rot: Rotation) -> None:
        old, new = rot.old, rot.new
        old.retired = True
        left = [k for k in rot.handover.keys(covered=False) if k in old.streams]
        self.host.promote(old, new)
        del self.by_conn[old], self.by_conn[new]
        self.log.info("%s: rotated (%s)", new.name, rot.why)
        try:
            if left:
                await self.host.resync(new, left, f"{RECONNECTED}socket rotation: {rot.why}")
        finally:
            await old.stop()
        if rot.due:
            self.start(new)


def take_over(new: Connection, old: Connection) -> None:
    """``new`` now serves ``old``'s slot: its shard, name and counters carry over."""
    new.shard, new.name = old.shard, old.name
    new.reconnects, new.messages = old.reconnects, old.messages + new.messages
    new.errors, new.rejections = old.errors + new.errors, old.rejections + new.rejections
    new.rotations, new.rotation_error = old.rotations + 1, None
