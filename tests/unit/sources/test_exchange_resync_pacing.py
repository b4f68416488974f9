"""A book that keeps breaking is re-synchronised at once the first time, then with a growing,
capped backoff (a venue sending broken snapshots must not be re-subscribed at its frame
rate), and at once again after a calm spell (sources/exchange/subs.py)."""

from __future__ import annotations

from typing import Any

from cryptowire.sources.exchange.subs import (
    RESYNC_BASE_S,
    RESYNC_CALM_S,
    RESYNC_MAX_S,
    TopicSub,
)


def sub() -> TopicSub:
    nothing: Any = None
    return TopicSub(market=nothing, topic=nothing, state=nothing, channels={})


def test_the_first_resync_is_immediate_then_they_back_off_up_to_the_cap() -> None:
    topic = sub()
    now = 100.0
    assert topic.resync_delay(now) == 0.0
    delays = []
    for _ in range(12):
        delay = topic.resync_delay(now)
        delays.append(delay)
        now += delay + 0.01  # it broke again right after the re-sync
    assert all(0 < d <= RESYNC_MAX_S for d in delays)
    assert delays[0] <= RESYNC_BASE_S
    assert max(delays[-4:]) > 4 * RESYNC_BASE_S  # grew (jitter keeps it above half its cap)


def test_a_calm_spell_resets_the_backoff() -> None:
    topic = sub()
    assert topic.resync_delay(0.0) == 0.0
    assert topic.resync_delay(1.0) > 0.0
    later = topic.resync_due + RESYNC_CALM_S + 0.1
    assert topic.resync_delay(later) == 0.0
    assert topic.resyncs == 1
