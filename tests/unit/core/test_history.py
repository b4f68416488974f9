"""Per-channel history: offsets, epochs, eviction by size and by age, and the channel bound."""

from __future__ import annotations

import orjson
import pytest

from cryptowire.core.history import ChannelHistory, HistoryStore, new_epoch
from cryptowire.events import Event

T0 = 1_700_000_000_000


class Clock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def ev(n: int, channel: str = "app:x", at: int = T0) -> Event:
    return Event(channel=channel, data={"n": n}, ts_received=at)


def test_offsets_start_at_one_and_increase() -> None:
    h = ChannelHistory(10, 60_000, clock=Clock())
    pubs = [h.append(ev(i)) for i in range(5)]
    assert [p.offset for p in pubs] == [1, 2, 3, 4, 5]
    assert {p.epoch for p in pubs} == {h.epoch}
    assert h.top == 5 and len(h) == 5
    assert orjson.loads(pubs[2].data_json) == {"n": 2}
    assert pubs[0].ts == T0 and pubs[0].channel == "app:x"


def test_since_returns_the_later_ones_in_order() -> None:
    h = ChannelHistory(10, 60_000, clock=Clock())
    for i in range(5):
        h.append(ev(i))
    got = h.since(h.epoch, 2)
    assert got is not None
    assert [p.offset for p in got] == [3, 4, 5]
    assert [p.data for p in got] == [{"n": 2}, {"n": 3}, {"n": 4}]
    all_ = h.since(h.epoch, 0)
    assert all_ is not None and [p.offset for p in all_] == [1, 2, 3, 4, 5]


def test_since_the_top_is_empty_not_a_gap() -> None:
    h = ChannelHistory(10, 60_000, clock=Clock())
    assert h.since(h.epoch, 0) == []
    h.append(ev(1))
    assert h.since(h.epoch, 1) == []


@pytest.mark.parametrize("offset", [-1, 6, 100])
def test_offsets_outside_the_epoch_are_a_gap(offset: int) -> None:
    h = ChannelHistory(10, 60_000, clock=Clock())
    for i in range(5):
        h.append(ev(i))
    assert h.since(h.epoch, offset) is None


def test_epoch_mismatch_is_a_gap() -> None:
    h = ChannelHistory(10, 60_000, clock=Clock())
    h.append(ev(1))
    assert h.since("other", 0) is None
    assert h.since(new_epoch(), 1) is None
    # A fresh history (a restart) has a new epoch: an old position never matches it.
    h2 = ChannelHistory(10, 60_000, clock=Clock())
    h2.append(ev(1))
    assert h2.epoch != h.epoch
    assert h2.since(h.epoch, 0) is None


def test_explicit_epoch() -> None:
    h = ChannelHistory(10, 60_000, epoch="k2f9")
    assert h.append(ev(1)).epoch == "k2f9"


def test_new_epochs_differ() -> None:
    assert len({new_epoch() for _ in range(100)}) == 100


def test_eviction_by_size() -> None:
    h = ChannelHistory(3, 60_000, clock=Clock())
    for i in range(10):
        h.append(ev(i))
    assert len(h) == 3
    got = h.since(h.epoch, 7)
    assert got is not None and [p.offset for p in got] == [8, 9, 10]
    # Offset 7 itself is gone, so a client that saw only up to 6 has a gap.
    assert h.since(h.epoch, 6) is None
    assert h.since(h.epoch, 0) is None


def test_eviction_by_age() -> None:
    clock = Clock(T0)
    h = ChannelHistory(100, 1_000, clock=clock)
    h.append(ev(1, at=T0))
    h.append(ev(2, at=T0 + 500))
    h.append(ev(3, at=T0 + 900))
    clock.now = T0 + 999
    got = h.since(h.epoch, 0)
    assert got is not None and [p.offset for p in got] == [1, 2, 3]
    clock.now = T0 + 1_200  # offset 1 is now older than the ttl
    assert h.since(h.epoch, 0) is None
    got = h.since(h.epoch, 1)
    assert got is not None and [p.offset for p in got] == [2, 3]
    clock.now = T0 + 10_000  # everything aged out
    assert h.since(h.epoch, 1) is None
    assert h.since(h.epoch, 3) == []  # up to date: nothing missed, not a gap
    assert h.top == 3


def test_store_keeps_a_history_per_channel() -> None:
    s = HistoryStore(10, 60, 100, clock=Clock())
    a1 = s.append(ev(1, "app:a"))
    b1 = s.append(ev(1, "app:b"))
    a2 = s.append(ev(2, "app:a"))
    assert (a1.offset, a2.offset, b1.offset) == (1, 2, 1)
    assert a1.epoch != b1.epoch
    assert s.position("app:a") == (a1.epoch, 2)
    got = s.since("app:a", a1.epoch, 1)
    assert got is not None and [p.offset for p in got] == [2]
    assert len(s) == 2


def test_store_position_of_an_unknown_channel_starts_it() -> None:
    s = HistoryStore(10, 60, 100, clock=Clock())
    epoch, top = s.position("app:new")
    assert top == 0
    assert s.since("app:new", epoch, 0) == []
    assert s.append(ev(1, "app:new")).epoch == epoch


def test_store_since_unknown_channel_is_a_gap() -> None:
    s = HistoryStore(10, 60, 100, clock=Clock())
    assert s.since("app:never", "e", 0) is None


def test_store_ttl_is_in_seconds() -> None:
    clock = Clock(T0)
    s = HistoryStore(10, 2.5, 100, clock=clock)
    first = s.append(ev(1, at=T0))
    s.append(ev(2, at=T0 + 2_000))
    clock.now = T0 + 2_400
    assert s.since("app:x", first.epoch, 0) is not None
    clock.now = T0 + 2_600
    assert s.since("app:x", first.epoch, 0) is None


def test_store_max_channels_evicts_least_recently_published() -> None:
    s = HistoryStore(10, 60, 2, clock=Clock())
    a = s.append(ev(1, "app:a"))
    s.append(ev(1, "app:b"))
    s.append(ev(2, "app:a"))  # a is now more recent than b
    s.append(ev(1, "app:c"))  # evicts b
    assert len(s) == 2
    assert s.since("app:a", a.epoch, 0) is not None
    assert s.since("app:b", "any", 0) is None
    # The evicted channel starts over in a new epoch: old positions are a gap.
    b_again = s.append(ev(2, "app:b"))
    assert b_again.offset == 1
    assert len(s) == 2
    assert s.since("app:a", a.epoch, 0) is None  # a was the oldest now


def test_store_position_never_evicts_a_real_history() -> None:
    s = HistoryStore(10, 60, 2, clock=Clock())
    a = s.append(ev(1, "app:a"))
    b = s.append(ev(1, "app:b"))
    # Asking about many channels nobody publishes to stores nothing.
    positions = {f"app:q{i}": s.position(f"app:q{i}") for i in range(10)}
    assert len(s) == 2
    assert {top for _, top in positions.values()} == {0}
    got_a, got_b = s.since("app:a", a.epoch, 0), s.since("app:b", b.epoch, 0)
    assert got_a is not None and [p.offset for p in got_a] == [1]
    assert got_b is not None and [p.offset for p in got_b] == [1]
    assert s.position("app:a") == (a.epoch, 1)


def test_store_position_of_an_unknown_channel_is_stable_until_the_first_append() -> None:
    s = HistoryStore(10, 60, 2, clock=Clock())
    epoch, top = s.position("app:new")
    assert top == 0
    assert s.position("app:new") == (epoch, 0)  # the same epoch every time
    assert len(s) == 0
    assert s.since("app:new", epoch, 0) == []
    assert s.since("app:new", "other", 0) is None
    first = s.append(ev(1, "app:new"))
    assert (first.epoch, first.offset) == (epoch, 1)
    got = s.since("app:new", epoch, 0)
    assert got is not None and [p.offset for p in got] == [1]
