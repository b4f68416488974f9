"""Per-channel history: an epoch and a monotonically increasing offset, bounded by count and age.

A client that saw ``(epoch, offset)`` and comes back gets every later publication, in order,
exactly once, when they are all still held here; otherwise :meth:`ChannelHistory.since`
returns ``None`` and the client is told it has a gap. The epoch changes whenever history is
lost (process restart, channel evicted), so an offset from another epoch never matches.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping

from cryptowire.clock import now_ms
from cryptowire.core.history_budget import HistoryBudget, Reservations
from cryptowire.events import Event, Publication


def new_epoch() -> str:
    """A short random epoch label; a new one means "history before this point is gone"."""
    return secrets.token_hex(4)


class ChannelHistory:
    """The last ``size`` publications of one channel, none older than ``ttl_ms``."""

    __slots__ = ("epoch", "top", "_items", "_ttl_ms", "_clock")

    def __init__(
        self, size: int, ttl_ms: int, *, epoch: str | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.epoch = epoch or new_epoch()
        self.top = 0
        self._items: deque[Publication] = deque(maxlen=max(size, 0) or None)
        if size <= 0:
            self._items = deque(maxlen=1)
        self._ttl_ms = ttl_ms
        self._clock = clock

    def append(self, event: Event) -> Publication:
        """Stamp ``event`` with the next offset, keep it, and return the publication.

        The data is encoded before the offset is taken: an event that cannot be encoded
        raises here and leaves no hole in the offsets."""
        pub = Publication.from_event(event, self.epoch, self.top + 1)
        self.top += 1
        self._items.append(pub)
        return pub

    def _prune(self) -> None:
        cutoff = self._clock() - self._ttl_ms
        items = self._items
        while items and items[0].ts_received < cutoff:
            items.popleft()

    def since(self, epoch: str, offset: int) -> list[Publication] | None:
        """Publications after ``offset`` if history still covers them, else ``None``."""
        if epoch != self.epoch or offset < 0 or offset > self.top:
            return None
        if offset == self.top:
            return []
        self._prune()
        items = self._items
        if not items or items[0].offset > offset + 1:
            return None
        first = offset + 1 - items[0].offset
        # Exactly offset+1..top, or nothing: recovery never claims to be complete across
        # an offset that is not held (offsets only increase, so the ends and the count
        # prove the run is contiguous).
        if (first >= len(items) or items[first].offset != offset + 1
                or items[-1].offset != self.top or len(items) - first != self.top - offset):
            return None
        return [items[i] for i in range(first, len(items))]

    def __len__(self) -> int:
        return len(self._items)

    # -- for the byte budget (core/history_budget.py) ----------------------------------

    @property
    def full(self) -> bool:
        """The next append pushes the oldest entry out."""
        return len(self._items) == self._items.maxlen

    def oldest(self) -> Publication | None:
        return self._items[0] if self._items else None

    def drop_oldest(self) -> Publication:
        return self._items.popleft()

    def entries(self) -> Iterator[Publication]:
        return iter(self._items)

    def clear(self) -> None:
        self._items.clear()


class HistoryStore:
    """Histories of many channels, at most ``max_channels`` and ``max_bytes`` node-wide, each
    kind group guaranteed its ``shares`` of both (:mod:`cryptowire.core.history_budget`)."""

    def __init__(self, size: int, ttl_s: float, max_channels: int,
                 clock: Callable[[], int] = now_ms, *, max_bytes: int = 256 * 1024 * 1024,
                 max_channel_bytes: int | None = None,
                 shares: Mapping[str, float] | None = None) -> None:
        self._size = size
        self._ttl_ms = int(ttl_s * 1000)
        self._clock = clock
        self._channels: OrderedDict[str, ChannelHistory] = OrderedDict()
        # Epochs reported by position() for channels with no history yet: the first append
        # uses it, so a position read before any publication stays valid. Bounded apart from
        # the histories, so asking about channels never evicts a real history.
        self._reserved = Reservations(max_channels, shares or {})
        self.budget = HistoryBudget(max_bytes=max_bytes, max_channels=max_channels,
                                    shares=shares or {}, ttl_ms=self._ttl_ms,
                                    forget=self._channels.pop,
                                    max_channel_bytes=max_channel_bytes)

    def get(self, channel: str, create: bool = False) -> ChannelHistory | None:
        hist = self._channels.get(channel)
        if hist is None and create:
            hist = ChannelHistory(self._size, self._ttl_ms, clock=self._clock,
                                  epoch=self._reserved.pop(channel, None))
            self._channels[channel] = hist
            self.budget.track(channel, hist)
        return hist

    def append(self, event: Event) -> Publication:
        hist = self.get(event.channel, create=True)
        assert hist is not None
        self._channels.move_to_end(event.channel)
        dropped = hist.oldest() if hist.full else None
        pub = hist.append(event)
        self.budget.appended(event.channel, pub, dropped)
        return pub

    def position(self, channel: str) -> tuple[str, int]:
        """``(epoch, top)``; for a channel with no history, ``(epoch, 0)`` where ``epoch`` is
        the one its first publication will get. Nothing is stored or evicted here."""
        hist = self._channels.get(channel)
        if hist is not None:
            return hist.epoch, hist.top
        return self._reserved.reserve(channel, new_epoch), 0

    def since(self, channel: str, epoch: str, offset: int) -> list[Publication] | None:
        hist = self._channels.get(channel)
        if hist is None:
            # Nothing published yet: up to date only from the position position() reported.
            return [] if offset == 0 and self._reserved.get(channel) == epoch else None
        self.budget.expire(channel, self._clock())
        held = len(hist)
        got = hist.since(epoch, offset)
        if len(hist) != held:  # the read pruned what the clock aged since: recount
            self.budget.resync(channel)
        return got

    def sweep(self) -> int:
        """Free every entry older than the TTL without waiting for a read; how many."""
        return self.budget.sweep(self._clock())

    def set_subscribed(self, channel: str, subscribed: bool) -> None:
        self.budget.set_subscribed(channel, subscribed)

    @property
    def nbytes(self) -> int:
        """Bytes of history held, as counted against ``max_bytes``."""
        return self.budget.nbytes

    def __len__(self) -> int:
        return len(self._channels)
