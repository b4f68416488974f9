"""Node-wide bounds on history memory: a byte budget, per-kind shares, and the TTL sweep.

:class:`~cryptowire.core.history.HistoryStore` keeps every channel's history; this module
decides what it may keep. Counted bytes (``history.max_bytes``) are, for each kept
publication, its encoded data plus its channel name plus :data:`ENTRY_OVERHEAD` (the
``Publication`` object and its small fields), and for each channel :data:`CHANNEL_OVERHEAD`
(its ``ChannelHistory``, deque block and dict entries); both constants were measured with
``bench/history_memory.py``, so the total follows what the process really holds.

Channel kinds are grouped (:data:`GROUP_OF_KIND`: market, onchain, service, pg, app). Each
group is guaranteed ``share * max_bytes`` bytes and ``share * max_channels`` channels
(``history.kind_shares``) and may use free space beyond that. When the node is over a total,
room is made by the publishing group if it is above its share, else by the group furthest
above its share: a group within its share never loses history to another group, so a flood of
fresh ``app:`` channels cannot evict ``pg:``, market or on-chain history, nor their epochs.

One channel keeps at most ``max_channel_bytes`` of entries (its oldest go first). Within the
group that makes room, bytes go oldest entry first (by the ``ts_received`` of each
channel's oldest entry); a channel left with nothing and no local subscribers is dropped; a
group with no entries left drops its least recently published channel. Channel count goes
least recently published first. A dropped channel forgets its epoch, so its next publication
starts a new one and an old ``(epoch, offset)`` is a gap (``recovered: false``), never a
silent skip. Entries older than ``ttl_s`` are freed by :meth:`HistoryBudget.sweep`, which the
history's owner calls periodically (the memory broker's sweeper task), without any read.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

from cryptowire.events import Publication


class ChannelHistory(Protocol):
    """What the budget needs of one channel's history
    (:class:`cryptowire.core.history.ChannelHistory` provides it)."""

    def oldest(self) -> Publication | None: ...

    def drop_oldest(self) -> Publication: ...

    def entries(self) -> Iterator[Publication]: ...

    def clear(self) -> None: ...

    def __len__(self) -> int: ...

#: Bytes counted per kept publication beyond its data and channel name (measured, see above).
ENTRY_OVERHEAD = 200
#: Bytes counted per channel with history (measured with tracemalloc: ~1.3 KB of objects for
#: a channel and its bookkeeping here, beyond its entries).
CHANNEL_OVERHEAD = 1_300

#: Which budget group a channel kind (the part of the name before ``:``) belongs to; kinds
#: not listed count as market data.
GROUP_OF_KIND: dict[str, str] = {
    "ticker": "market", "trade": "market", "kline": "market", "book": "market",
    "bbo": "market", "swap": "onchain", "burn": "onchain", "service": "service",
    "pg": "pg", "app": "app",
}  # fmt: skip
GROUPS: tuple[str, ...] = ("market", "onchain", "service", "pg", "app")


def group_of(channel: str) -> str:
    return GROUP_OF_KIND.get(channel.partition(":")[0], "market")


def entry_cost(pub: Publication) -> int:
    """Bytes one kept publication counts for."""
    return len(pub.data_json) + len(pub.channel) + ENTRY_OVERHEAD


class _Tracked:
    """What the budget knows of one channel with history."""

    __slots__ = ("name", "hist", "group", "nbytes", "queued")

    def __init__(self, name: str, hist: ChannelHistory, group: _Group) -> None:
        self.name = name
        self.hist: ChannelHistory | None = hist  # None once dropped
        self.group = group
        self.nbytes = 0
        self.queued = False  # has an entry in its group's heap


class _Group:
    __slots__ = ("name", "max_bytes", "max_channels", "nbytes", "lru", "heap")

    def __init__(self, name: str, max_bytes: float, max_channels: float) -> None:
        self.name = name
        self.max_bytes = max_bytes  # guaranteed share, not a cap
        self.max_channels = max_channels
        self.nbytes = 0
        # channels by last publication, oldest first
        self.lru: OrderedDict[str, _Tracked] = OrderedDict()
        # (ts_received of the channel's oldest entry, tie-break, channel); a key may be
        # older than the channel's real oldest entry (it is fixed when popped), never newer
        self.heap: list[tuple[int, int, _Tracked]] = []

    def bytes_over(self) -> float:
        return self.nbytes - self.max_bytes

    def channels_over(self) -> float:
        return len(self.lru) - self.max_channels


class HistoryBudget:
    """Byte and channel accounting of a :class:`~cryptowire.core.history.HistoryStore`.

    The store tells it about every channel it creates (:meth:`track`) and every append
    (:meth:`appended`); the budget evicts through ``forget(channel)``, which must remove the
    channel from the store.
    """

    def __init__(self, *, max_bytes: int, max_channels: int, shares: Mapping[str, float],
                 ttl_ms: int, forget: Callable[[str], object],
                 max_channel_bytes: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_channel_bytes = max_bytes if max_channel_bytes is None else max_channel_bytes
        self.max_channels = max_channels
        self.ttl_ms = ttl_ms
        self._forget = forget
        self._groups = {g: _Group(g, shares.get(g, 0.0) * max_bytes,
                                  shares.get(g, 0.0) * max_channels) for g in GROUPS}
        self._tracked: dict[str, _Tracked] = {}
        self._subscribed: set[str] = set()
        self._seq = itertools.count()
        self.nbytes = 0
        self.evicted_entries = 0
        self.evicted_channels = 0
        self.expired_entries = 0

    # -- what the store reports -------------------------------------------------------

    def track(self, name: str, hist: ChannelHistory) -> None:
        group = self._groups[group_of(name)]
        rec = _Tracked(name, hist, group)
        self._tracked[name] = rec
        group.lru[name] = rec
        self._add(rec, CHANNEL_OVERHEAD + len(name))

    def appended(self, name: str, pub: Publication, dropped: Publication | None) -> None:
        """``pub`` was appended to ``name``'s history, pushing ``dropped`` out (count bound);
        then make room if the node is over a bound."""
        rec = self._tracked[name]
        group = rec.group
        group.lru.move_to_end(name)
        self._add(rec, entry_cost(pub) - (entry_cost(dropped) if dropped else 0))
        if not rec.queued:
            self._push(rec, pub.ts_received)
        if rec.nbytes - CHANNEL_OVERHEAD - len(name) > self.max_channel_bytes:
            self._trim_channel(rec)
        if self.nbytes > self.max_bytes or len(self._tracked) > self.max_channels:
            self._make_room(group)

    def resync(self, name: str) -> None:
        """Recount ``name`` after its history changed on its own (pruned on a read)."""
        rec = self._tracked.get(name)
        if rec is None or rec.hist is None:
            return
        fresh = CHANNEL_OVERHEAD + len(name) + sum(entry_cost(p) for p in rec.hist.entries())
        self._add(rec, fresh - rec.nbytes)

    def set_subscribed(self, name: str, subscribed: bool) -> None:
        """This node has (or no longer has) local subscribers of ``name``: a channel with
        subscribers is kept (empty) when its entries are evicted for bytes."""
        if subscribed:
            self._subscribed.add(name)
        else:
            self._subscribed.discard(name)

    # -- TTL ------------------------------------------------------------------------------

    def expire(self, name: str, now: int) -> None:
        """Free ``name``'s entries older than the TTL (before a read of it)."""
        rec = self._tracked.get(name)
        if rec is not None:
            self._expire(rec, now - self.ttl_ms)

    def sweep(self, now: int) -> int:
        """Free every entry older than the TTL; returns how many. Cost: the expired
        entries, not the channels (each group's heap is ordered by oldest entry)."""
        cutoff = now - self.ttl_ms
        freed = 0
        for group in self._groups.values():
            heap = group.heap
            while heap and heap[0][0] < cutoff:
                _, _, rec = heapq.heappop(heap)
                rec.queued = False
                if rec.hist is None:
                    continue
                freed += self._expire(rec, cutoff)
                oldest = rec.hist.oldest()
                if oldest is not None:
                    self._push(rec, oldest.ts_received)
        return freed

    def _expire(self, rec: _Tracked, cutoff: int) -> int:
        hist = rec.hist
        assert hist is not None
        freed = 0
        oldest = hist.oldest()
        while oldest is not None and oldest.ts_received < cutoff:
            self._add(rec, -entry_cost(hist.drop_oldest()))
            freed += 1
            oldest = hist.oldest()
        self.expired_entries += freed
        return freed

    # -- making room ------------------------------------------------------------------

    def _make_room(self, publisher: _Group) -> None:
        while self.nbytes > self.max_bytes:
            group = self._victim(publisher, _Group.bytes_over)
            if not group.lru:  # only when the shares add up to more than 1
                break
            if not self._evict_oldest_entry(group):
                self._drop(next(iter(group.lru.values())))
        while len(self._tracked) > self.max_channels:
            group = self._victim(publisher, _Group.channels_over)
            if not group.lru:
                break
            self._drop(next(iter(group.lru.values())))

    def _trim_channel(self, rec: _Tracked) -> None:
        """One channel over ``max_channel_bytes``: its own oldest entries go (all of them
        when the newest alone is bigger; it was delivered, it is not kept)."""
        hist = rec.hist
        assert hist is not None
        floor = CHANNEL_OVERHEAD + len(rec.name)
        while rec.nbytes - floor > self.max_channel_bytes and len(hist):
            self._add(rec, -entry_cost(hist.drop_oldest()))
            self.evicted_entries += 1

    def _victim(self, publisher: _Group, over: Callable[[_Group], float]) -> _Group:
        """The publishing group pays for its own growth beyond its share; a group within
        its share takes back room from the group furthest above its own."""
        if over(publisher) > 0:
            return publisher
        return max(self._groups.values(), key=over)

    def _evict_oldest_entry(self, group: _Group) -> bool:
        heap = group.heap
        while heap:
            key, _, rec = heap[0]
            hist = rec.hist
            oldest = hist.oldest() if hist is not None else None
            if hist is None or oldest is None:
                heapq.heappop(heap)
                rec.queued = False
                continue
            if oldest.ts_received != key:  # a stale key: put the channel back in its place
                heapq.heapreplace(heap, (oldest.ts_received, next(self._seq), rec))
                continue
            self._add(rec, -entry_cost(hist.drop_oldest()))
            self.evicted_entries += 1
            oldest = hist.oldest()
            if oldest is not None:
                heapq.heapreplace(heap, (oldest.ts_received, next(self._seq), rec))
            else:
                heapq.heappop(heap)
                rec.queued = False
                if rec.name not in self._subscribed:
                    self._drop(rec)
            return True
        return False

    def _drop(self, rec: _Tracked) -> None:
        """Forget a channel, its entries and its epoch."""
        group = rec.group
        self._add(rec, -rec.nbytes)
        del self._tracked[rec.name]
        del group.lru[rec.name]
        if rec.hist is not None:
            rec.hist.clear()  # a stale heap entry may still point here: hold nothing
            rec.hist = None
        self._forget(rec.name)
        self.evicted_channels += 1
        if len(group.heap) > 2 * len(group.lru) + 64:  # drop the stale heap entries
            group.heap = [e for e in group.heap if e[2].hist is not None]
            heapq.heapify(group.heap)

    # -- bookkeeping ------------------------------------------------------------------

    def _add(self, rec: _Tracked, delta: int) -> None:
        rec.nbytes += delta
        rec.group.nbytes += delta
        self.nbytes += delta

    def _push(self, rec: _Tracked, key: int) -> None:
        heapq.heappush(rec.group.heap, (key, next(self._seq), rec))
        rec.queued = True

    def stats(self) -> dict[str, object]:
        return {
            "bytes": self.nbytes, "max_bytes": self.max_bytes,
            "evicted_entries": self.evicted_entries,
            "evicted_channels": self.evicted_channels,
            "expired_entries": self.expired_entries,
            "groups": {g.name: {"bytes": g.nbytes, "channels": len(g.lru)}
                       for g in self._groups.values()},
        }


class Reservations:
    """Epochs promised by ``position()`` to channels with no history yet, at most
    ``max_channels``; over it, the same group rule as the histories picks whose oldest
    reservation goes, so asking about many ``app:`` channels never costs a ``pg:`` channel
    the epoch it was promised."""

    def __init__(self, max_channels: int, shares: Mapping[str, float]) -> None:
        self._max = max_channels
        self._shares = {g: shares.get(g, 0.0) * max_channels for g in GROUPS}
        self._by_group: dict[str, OrderedDict[str, str]] = {g: OrderedDict() for g in GROUPS}
        self._count = 0

    def get(self, channel: str) -> str | None:
        return self._by_group[group_of(channel)].get(channel)

    def pop(self, channel: str, default: str | None = None) -> str | None:
        held = self._by_group[group_of(channel)]
        if channel not in held:
            return default
        self._count -= 1
        return held.pop(channel)

    def reserve(self, channel: str, new: Callable[[], str]) -> str:
        """The channel's reserved epoch, made with ``new()`` the first time."""
        group = group_of(channel)
        held = self._by_group[group]
        epoch = held.get(channel)
        if epoch is not None:
            held.move_to_end(channel)
            return epoch
        epoch = held[channel] = new()
        self._count += 1
        if self._count > self._max:
            over = {g: len(d) - self._shares[g] for g, d in self._by_group.items()}
            victim = group if over[group] > 0 else max(over, key=over.__getitem__)
            self._by_group[victim].popitem(last=False)
            self._count -= 1
        return epoch

    def __len__(self) -> int:
        return self._count
