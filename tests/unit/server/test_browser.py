"""The Origin and Host rules of :mod:`cryptowire.server.browser`, on literal header values."""

from __future__ import annotations

import pytest

from cryptowire.server.browser import host_allowed, is_loopback, origin_allowed, same_origin


@pytest.mark.parametrize(("origin", "host", "scheme", "same"), [
    ("http://127.0.0.1:8000", "127.0.0.1:8000", "http", True),
    ("http://LOCALHOST:8000", "localhost:8000", "http", True),
    ("https://hub.example", "hub.example", "http", True),  # TLS ended by a proxy
    ("https://hub.example", "hub.example:443", "http", True),
    ("http://hub.example", "hub.example:80", "http", True),
    ("http://[::1]:8000", "[::1]:8000", "http", True),
    ("http://127.0.0.1:8001", "127.0.0.1:8000", "http", False),
    ("https://hub.example", "hub.example:8443", "https", False),
    ("https://evil.example", "hub.example", "https", False),
    ("null", "127.0.0.1:8000", "http", False),
    ("file://", "127.0.0.1:8000", "http", False),
    ("http://127.0.0.1:99999", "127.0.0.1:8000", "http", False),
    ("http://hub.example", "", "http", False),
])
def test_same_origin(origin: str, host: str, scheme: str, same: bool) -> None:
    assert same_origin(origin, host, scheme) is same


def test_listed_origins_and_star() -> None:
    assert origin_allowed("https://app.example", "hub.example", "https",
                          ["https://app.example"])
    assert not origin_allowed("https://evil.example", "hub.example", "https",
                              ["https://app.example"])
    assert origin_allowed("https://evil.example", "hub.example", "https", ["*"])
    # The hub's own pages stay allowed when others are listed.
    assert origin_allowed("https://hub.example", "hub.example", "https",
                          ["https://app.example"])


@pytest.mark.parametrize(("host", "allowed", "bound", "ok"), [
    ("127.0.0.1:8000", [], "127.0.0.1", True),
    ("localhost:8000", [], "127.0.0.1", True),
    ("app.localhost", [], "127.0.0.1", True),
    ("[::1]:8000", [], "::1", True),
    ("127.9.9.9", [], "localhost", True),
    ("rebind.example:8000", [], "127.0.0.1", False),
    ("rebind.example:8000", [], "localhost", False),
    ("", [], "127.0.0.1", False),
    ("rebind.example:8000", ["rebind.example"], "127.0.0.1", True),
    ("REBIND.example", ["rebind.example"], "127.0.0.1", True),
    ("other.example", ["rebind.example"], "127.0.0.1", False),
    ("anything.example", ["*"], "127.0.0.1", True),
    ("hub.example", [], "0.0.0.0", True),  # not bound to loopback: any Host
    ("", [], "0.0.0.0", True),
    ("other.example", ["hub.example"], "0.0.0.0", False),
    ("127.0.0.1:8000", ["hub.example"], "0.0.0.0", True),
    ("bad:port:x", [], "127.0.0.1", False),
])
def test_host_allowed(host: str, allowed: list[str], bound: str, ok: bool) -> None:
    assert host_allowed(host, allowed, bound_to=bound) is ok


def test_is_loopback() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]")
    assert is_loopback("Localhost") and is_loopback("x.localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("localhost.example")
