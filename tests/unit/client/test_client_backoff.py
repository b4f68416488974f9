"""Reconnect delays: doubling, jittered within [d/2, d], never above the cap."""

from __future__ import annotations

import pytest

from cryptowire.client import Backoff


def test_doubles_then_caps_with_extremes_of_jitter() -> None:
    low = Backoff(0.5, 30.0, rand=lambda: 0.0)
    high = Backoff(0.5, 30.0, rand=lambda: 1.0)
    assert [low.next() for _ in range(8)] == [0.25, 0.5, 1, 2, 4, 8, 15, 15]
    assert [high.next() for _ in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_never_above_cap_even_after_many_attempts() -> None:
    b = Backoff(0.1, 2.0)
    delays = [b.next() for _ in range(5000)]
    assert max(delays) <= 2.0
    assert min(delays[10:]) >= 1.0  # capped delays stay in [cap/2, cap]: jittered, not zero


def test_jitter_spreads_clients() -> None:
    delays = {round(Backoff(1.0, 30.0).next(), 6) for _ in range(50)}
    assert len(delays) > 40 and all(0.5 <= d <= 1.0 for d in delays)


def test_reset() -> None:
    b = Backoff(0.5, 30.0, rand=lambda: 1.0)
    for _ in range(5):
        b.next()
    b.reset()
    assert b.attempts == 0 and b.next() == 0.5


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (2.0, 1.0), (-1.0, 5.0)])
def test_rejects_nonsense(base: float, cap: float) -> None:
    with pytest.raises(ValueError):
        Backoff(base, cap)
