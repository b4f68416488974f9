"""History memory bounds: the node-wide byte budget, the TTL sweep (no read needed), and the
kind groups that keep one kind's churn from evicting another kind's history and epochs."""

from __future__ import annotations

import random
import tracemalloc

import pytest
from pydantic import ValidationError

from cryptowire.core.history import HistoryStore
from cryptowire.core.history_budget import (
    CHANNEL_OVERHEAD,
    GROUPS,
    entry_cost,
    group_of,
)
from cryptowire.events import Event
from cryptowire.settings import HISTORY_KIND_SHARES, HistorySettings

T0 = 1_700_000_000_000
MiB = 1024 * 1024
SHARES = dict(HISTORY_KIND_SHARES)


class Clock:
    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def ev(channel: str, n: int = 0, at: int = T0, size: int = 0) -> Event:
    return Event(channel=channel, data={"n": n, "pad": "x" * size}, ts_received=at)


def store(clock: Clock, *, size: int = 1000, ttl_s: float = 600, max_channels: int = 100_000,
          max_bytes: int = 256 * MiB) -> HistoryStore:
    return HistoryStore(size, ttl_s, max_channels, clock=clock, max_bytes=max_bytes,
                        shares=SHARES)


def counted(s: HistoryStore, names: set[str]) -> int:
    """What the budget should count, recomputed from what the store holds."""
    total = 0
    for name in names:
        hist = s.get(name)
        if hist is not None:
            total += CHANNEL_OVERHEAD + len(name) + sum(entry_cost(p) for p in hist.entries())
    return total


def test_the_byte_budget_bounds_big_messages_oldest_first() -> None:
    # The case scaled down: 150 messages of 100 KB into a 4 MiB budget.
    clock = Clock()
    s = store(clock, max_bytes=4 * MiB)
    pubs = []
    for i in range(150):
        clock.now = T0 + i
        pubs.append(s.append(ev("app:big", i, at=clock.now, size=100_000)))
    assert s.nbytes <= 4 * MiB
    assert s.nbytes == counted(s, {"app:big"})
    hist = s.get("app:big")
    assert hist is not None and 30 <= len(hist) < 42  # about 4 MiB / 100 KB, the newest ones
    kept = s.since("app:big", pubs[0].epoch, pubs[-1].offset - len(hist))
    assert kept is not None and [p.offset for p in kept] == [p.offset for p in pubs[-len(hist):]]
    # what was evicted is a gap, never a silent skip
    assert s.since("app:big", pubs[0].epoch, 0) is None
    assert s.since("app:big", pubs[0].epoch, pubs[-1].offset - len(hist) - 1) is None


def test_ttl_frees_entries_without_any_read() -> None:
    clock = Clock()
    s = store(clock, ttl_s=5)
    for i in range(150):
        s.append(ev("app:big", i, at=T0, size=10_000))
    s.append(ev("app:later", 1, at=T0 + 3_000))
    before = s.nbytes
    assert before > 150 * 10_000
    clock.now = T0 + 5_001
    assert s.sweep() == 150  # nobody read app:big
    hist, later = s.get("app:big"), s.get("app:later")
    assert hist is not None and len(hist) == 0
    assert later is not None and len(later) == 1  # not expired yet
    assert s.nbytes == counted(s, {"app:big", "app:later"}) < 20_000
    clock.now = T0 + 8_001
    assert s.sweep() == 1
    assert later is not None and len(later) == 0
    # The channel and its epoch stay (only the entries aged out): a client that had seen
    # everything is still up to date, one that had not gets a gap.
    epoch, top = s.position("app:big")
    assert top == 150
    assert s.since("app:big", epoch, 150) == []
    assert s.since("app:big", epoch, 149) is None


def test_ttl_sweep_of_a_busy_channel_keeps_the_fresh_entries() -> None:
    clock = Clock()
    s = store(clock, ttl_s=1)
    for i in range(10):
        s.append(ev("ticker:BTCUSDT", i, at=T0 + i * 200))
    clock.now = T0 + 1_500  # offsets 1..3 (ts 0, 200, 400) are older than the ttl
    assert s.sweep() == 3
    epoch, top = s.position("ticker:BTCUSDT")
    got = s.since("ticker:BTCUSDT", epoch, 3)
    assert got is not None and [p.offset for p in got] == list(range(4, 11))
    assert s.since("ticker:BTCUSDT", epoch, 2) is None
    assert s.nbytes == counted(s, {"ticker:BTCUSDT"})


def test_app_channel_churn_cannot_evict_pg_history_or_epoch() -> None:
    clock = Clock()
    s = store(clock, max_channels=1_000)
    pg = [s.append(ev("pg:fill_event", i)) for i in range(5)]
    tick = s.append(ev("ticker:BTCUSDT", 1))
    promised = s.position("pg:order_event")  # promised before its first publication
    for i in range(20_000):  # fresh app: channels, 20x the node's channel bound
        s.append(ev(f"app:churn{i}", i))
        s.position(f"app:asked{i}")
    assert len(s) <= 1_000
    got = s.since("pg:fill_event", pg[0].epoch, 0)
    assert got is not None and [p.offset for p in got] == [1, 2, 3, 4, 5]
    assert s.position("pg:fill_event") == (pg[0].epoch, 5)
    assert s.position("ticker:BTCUSDT") == (tick.epoch, 1)
    assert s.position("pg:order_event") == promised
    assert s.append(ev("pg:order_event")).epoch == promised[0]


def test_app_bytes_cannot_evict_pg_history() -> None:
    clock = Clock()
    s = store(clock, max_bytes=8 * MiB)
    pg = [s.append(ev("pg:fill_event", i, size=10_000)) for i in range(50)]
    for i in range(400):  # 40 MB of app: traffic over many channels
        clock.now += 1
        s.append(ev(f"app:c{i % 40}", i, at=clock.now, size=100_000))
    assert s.nbytes <= 8 * MiB
    got = s.since("pg:fill_event", pg[0].epoch, 0)
    assert got is not None and len(got) == 50


def test_a_group_within_its_share_takes_back_room_lent_to_another() -> None:
    clock = Clock()
    s = store(clock, max_bytes=4 * MiB)
    for i in range(38):  # app alone fills the whole budget (free space is lent)
        clock.now += 1
        s.append(ev("app:big", i, at=clock.now, size=100_000))
    app_before = s.get("app:big")
    assert app_before is not None and len(app_before) > 30
    for i in range(5):  # pg, within its 20% share, needs room: app gives it back
        clock.now += 1
        s.append(ev("pg:fill_event", i, at=clock.now, size=100_000))
    pg = s.get("pg:fill_event")
    assert pg is not None and len(pg) == 5
    assert s.nbytes <= 4 * MiB
    assert len(app_before) < 38


def test_one_channel_keeps_at_most_max_channel_bytes() -> None:
    clock = Clock()
    s = HistoryStore(1000, 600, 100, clock=clock, max_bytes=64 * MiB,
                     max_channel_bytes=1_000_000, shares=SHARES)
    pubs = [s.append(ev("app:big", i, size=300_000)) for i in range(10)]
    other = s.append(ev("app:small", 0))
    hist = s.get("app:big")
    assert hist is not None and len(hist) == 3
    assert s.since("app:big", pubs[0].epoch, 7) == pubs[7:]
    assert s.since("app:big", pubs[0].epoch, 6) is None
    assert s.since("app:small", other.epoch, 0) == [other]
    huge = s.append(ev("app:big", 10, size=2_000_000))  # delivered, not kept
    assert len(hist) == 0 and s.since("app:big", huge.epoch, huge.offset) == []
    assert s.since("app:big", huge.epoch, huge.offset - 1) is None
    assert s.nbytes == counted(s, {"app:big", "app:small"})


def test_evicting_a_whole_channel_changes_its_epoch() -> None:
    clock = Clock()
    s = store(clock, max_channels=10)
    first = s.append(ev("app:victim", 1))
    for i in range(20):
        s.append(ev(f"app:other{i}", i))
    assert s.get("app:victim") is None
    assert s.since("app:victim", first.epoch, 1) is None  # recovered: false, never []
    again = s.append(ev("app:victim", 2))
    assert again.epoch != first.epoch and again.offset == 1


def test_a_channel_emptied_for_bytes_is_kept_while_subscribed() -> None:
    clock = Clock()
    s = store(clock, max_bytes=2 * MiB)
    s.set_subscribed("app:watched", True)
    watched = s.append(ev("app:watched", 1, size=100_000))
    lone = s.append(ev("app:lonely", 1, size=100_000))
    for i in range(40):
        clock.now += 1
        s.append(ev("app:flood", i, at=clock.now, size=100_000))
    kept = s.get("app:watched")
    assert kept is not None and len(kept) == 0  # its entry went, its position stayed
    assert s.position("app:watched") == (watched.epoch, 1)
    assert s.get("app:lonely") is None  # nothing left, nobody subscribed: dropped
    assert s.since("app:lonely", lone.epoch, 1) is None


def test_accounting_matches_what_is_held_under_random_churn() -> None:
    rnd = random.Random(7)
    clock = Clock()
    s = HistoryStore(20, 2, 40, clock=clock, max_bytes=400_000, max_channel_bytes=30_000,
                     shares=SHARES)
    names = [f"{kind}:{i}" for kind in ("app", "pg", "ticker", "swap") for i in range(25)]
    for step in range(5_000):
        clock.now += rnd.randrange(0, 20)
        name = rnd.choice(names)
        roll = rnd.random()
        if roll < 0.7:
            s.append(ev(name, step, at=clock.now, size=rnd.randrange(0, 5_000)))
        elif roll < 0.8:
            s.sweep()
        elif roll < 0.9:
            epoch, top = s.position(name)
            s.since(name, epoch, max(0, top - rnd.randrange(0, 25)))
        else:
            s.set_subscribed(name, rnd.random() < 0.5)
        assert s.nbytes == counted(s, set(names)), step
        assert s.nbytes <= 400_000 and len(s) <= 40


def test_kept_publications_hold_no_encoder_buffer() -> None:
    # orjson hands back bytes with its whole working buffer behind them (4 KiB for a tiny
    # document); history must keep only the document.
    s = store(Clock())
    s.append(ev("app:warm"))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1_000):  # all kept (size 1000)
            s.append(ev("app:x", i))
        per_entry = (tracemalloc.get_traced_memory()[0] - before) / 1_000
    finally:
        tracemalloc.stop()
    assert per_entry < 600


def test_groups_of_kinds() -> None:
    assert set(GROUPS) == set(HISTORY_KIND_SHARES)
    assert group_of("app:x") == "app" and group_of("pg:fill_event") == "pg"
    assert group_of("kline:1h:BTCUSDT") == "market" and group_of("burn:bsc") == "onchain"
    assert group_of("service:news") == "service"


@pytest.mark.parametrize("shares", [{"app": 0.8, "pg": 0.3}, {"nosuch": 0.1}, {"app": -0.1}])
def test_kind_shares_are_validated(shares: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        HistorySettings(kind_shares=shares)
