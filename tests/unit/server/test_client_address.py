"""Who a request counts as: trusted X-Forwarded-For, and the REST rate per caller (pure)."""

from __future__ import annotations

import pytest

from cryptowire.server.proxied import forwarded_client
from cryptowire.server.rest_limits import RestRateLimiter

TRUSTED = ["10.0.0.0/8", "127.0.0.1"]


@pytest.mark.parametrize(("peer", "xff", "client"), [
    ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),  # an untrusted peer's claim: ignored
    ("10.1.2.3", [], "10.1.2.3"),
    ("10.1.2.3", ["198.51.100.1"], "198.51.100.1"),
    ("10.1.2.3", ["1.1.1.1, 198.51.100.1"], "198.51.100.1"),  # the right-most untrusted hop
    ("10.1.2.3", ["198.51.100.1, 10.9.9.9", "127.0.0.1"], "198.51.100.1"),  # trusted hops
    ("10.1.2.3", ["10.9.9.9"], "10.9.9.9"),  # only trusted hops: the left-most
    ("10.1.2.3", ["198.51.100.1, junk"], "10.1.2.3"),  # not an address: stop at the peer
    ("127.0.0.1", ["2001:db8::1"], "2001:db8::1"),
])
def test_forwarded_client(peer: str, xff: list[str], client: str) -> None:
    assert forwarded_client(peer, xff, TRUSTED) == client


def test_no_trusted_proxies_means_the_peer() -> None:
    assert forwarded_client("10.1.2.3", ["198.51.100.1"], []) == "10.1.2.3"


def test_rest_rate_buckets_per_caller() -> None:
    limiter = RestRateLimiter(2)
    assert limiter.take("a", 0.0) is None and limiter.take("a", 0.0) is None
    assert limiter.take("a", 0.0) == pytest.approx(0.5)  # a token back in half a second
    assert limiter.take("b", 0.0) is None  # another caller: its own bucket
    assert limiter.take("a", 0.5) is None


def test_rest_rate_table_stays_bounded() -> None:
    limiter = RestRateLimiter(1, max_callers=10)
    for i in range(25):
        assert limiter.take(f"c{i}", 0.0) is None  # a burst of distinct callers
    assert len(limiter) <= 10
    for i in range(25):
        limiter.take(f"d{i}", 5.0)  # the idle ones are forgotten first
    assert len(limiter) <= 10
