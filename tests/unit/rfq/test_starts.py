"""Start budgets of /rfq (issue 10, item 4): per connection, per key or address, refilled
over a minute, and a bounded map of keys."""

from __future__ import annotations

from cryptowire.rfq.starts import StartLimits


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_connection_gets_its_count_per_minute_then_a_reason_with_the_wait() -> None:
    clock = Clock()
    limits = StartLimits(per_connection=3, per_key=100, clock=clock)
    conn = limits.connection()
    assert [limits.admit(conn, "ip:1", "this address") for _ in range(3)] == [None] * 3
    refused = limits.admit(conn, "ip:1", "this address")
    assert refused is not None
    assert refused.message == ("Too many quote sessions started: at most 3 per minute on one "
                               "connection; try again in 20 s.")
    assert refused.retry_after_ms == 20_000
    clock.now += 20  # one start refilled
    assert limits.admit(conn, "ip:1", "this address") is None
    assert limits.admit(conn, "ip:1", "this address") is not None


def test_a_key_is_shared_by_its_connections_and_refusals_spend_nothing() -> None:
    clock = Clock()
    limits = StartLimits(per_connection=2, per_key=3, clock=clock)
    a, b, c = limits.connection(), limits.connection(), limits.connection()
    assert limits.admit(a, "ip:1", "this address") is None
    assert limits.admit(a, "ip:1", "this address") is None
    assert limits.admit(a, "ip:1", "this address") is not None  # a's own budget: not ip:1's
    assert limits.admit(b, "ip:1", "this address") is None
    refused = limits.admit(c, "ip:1", "this address")
    assert refused is not None and "at most 3 per minute for this address" in refused.message
    assert limits.admit(c, "ip:2", "this address") is None  # c's token was not spent
    assert limits.admit(c, "key:k", "this API key") is None


def test_the_map_of_keys_is_bounded() -> None:
    limits = StartLimits(per_connection=10**6, per_key=1, clock=Clock(), max_keys=100)
    conn = limits.connection()
    for i in range(10_000):
        assert limits.admit(conn, f"ip:{i}", "this address") is None
        assert len(limits) <= 100
    assert len(limits) == 100
    assert limits.admit(conn, "ip:9999", "this address") is not None  # recent: remembered
