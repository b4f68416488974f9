"""RPC pool bookkeeping without a network: rotation, benching with capped backoff, error kinds."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest
from web3.exceptions import Web3RPCError

from cryptowire.redaction import redact_url
from cryptowire.sources.evm.rpc import (
    RangeTooLarge,
    RpcError,
    RpcPool,
    RpcUnavailable,
    rpc_label,
    scrub_url,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _pool(n: int, clock: Clock) -> RpcPool:
    pool = RpcPool([f"http://u{i}" for i in range(n)], backoff_s=1.0, backoff_cap_s=8.0,
                   clock=clock)
    pool._w3 = [f"w3-{i}" for i in range(n)]  # type: ignore[list-item]
    return pool


async def test_rotates_and_fails_over_on_429() -> None:
    clock = Clock()
    pool = _pool(3, clock)
    seen: list[Any] = []

    async def call(w3: Any) -> str:
        seen.append(w3)
        if w3 == "w3-0":
            raise aiohttp.ClientResponseError(None, (), status=429,  # type: ignore[arg-type]
                                              message="Too Many Requests")
        return str(w3)

    assert await pool.call("x", call) == "w3-1"
    assert seen == ["w3-0", "w3-1"]
    health = {h["label"]: h for h in pool.health()}
    assert health["#1 http://u0"]["rate_limited"] == 1 and not health["#1 http://u0"]["healthy"]
    assert health["#2 http://u1"]["failovers"] == 1
    assert await pool.call("x", call) == "w3-2"  # rotation goes on, u0 is benched
    assert await pool.call("x", call) == "w3-1"


async def test_backoff_is_capped() -> None:
    clock = Clock()
    pool = _pool(1, clock)
    state = pool.states[0]
    for _ in range(10):
        pool._bench(state, "boom")
    assert state.benched_until - clock.now <= 8.0


@pytest.mark.parametrize(("message", "code", "exc"), [
    ("query returned more than 10000 results", -32005, RangeTooLarge),
    ("block range is too large", -32600, RangeTooLarge),
    ("execution reverted", 3, RpcError),
])
async def test_rpc_error_kinds(message: str, code: int, exc: type[Exception]) -> None:
    pool = _pool(2, Clock())

    async def call(w3: Any) -> None:
        raise Web3RPCError(message, rpc_response={"jsonrpc": "2.0", "id": 1,  # type: ignore[typeddict-item]
                                                  "error": {"code": code, "message": message}})

    with pytest.raises(exc):
        await pool.call("eth_getLogs", call)
    assert all(h["healthy"] for h in pool.health())  # not the URL's fault


async def test_everything_down_raises_unavailable() -> None:
    clock = Clock()
    pool = _pool(2, clock)
    pool.backoff_cap_s = 0.0

    async def call(w3: Any) -> None:
        raise OSError("connection refused")

    with pytest.raises(RpcUnavailable):
        await pool.call("eth_blockNumber", call)


@pytest.mark.parametrize(("url", "shown"), [
    ("https://eth-mainnet.g.alchemy.com/v2/KEY0123456789", "https://eth-mainnet.g.alchemy.com/***"),
    ("https://rpc.example/?apikey=KEY0123456789", "https://rpc.example/***"),
    ("https://rpc.example?apikey=KEY0123456789", "https://rpc.example/***"),
    ("https://user:KEY0123456789@rpc.example:8545", "https://rpc.example:8545/***"),
    ("wss://x.quiknode.pro/KEY0123456789/", "wss://x.quiknode.pro/***"),
    ("https://rpc.example/#KEY0123456789", "https://rpc.example/***"),
    ("http://[::1]:8545/KEY0123456789", "http://[::1]:8545/***"),
    ("https://eth.llamarpc.com", "https://eth.llamarpc.com"),
    ("https://eth.llamarpc.com/", "https://eth.llamarpc.com"),
    ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
    ("https://rpc.example:KEY0123456789/x", "***"),  # a "port" that is not one
    ("rpc.example/v2/KEY0123456789", "***"),  # no scheme: nothing is shown
    ("https://KEY0123456789@", "***"),
])
def test_redact_url_keeps_only_scheme_host_and_port(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert redact_url(shown) == shown  # idempotent
    assert "KEY0123456789" not in rpc_label(3, url)
    assert rpc_label(3, url) == f"#3 {shown}"


def test_snapshots_errors_and_logs_never_carry_the_url(caplog: pytest.LogCaptureFixture) -> None:
    url = "https://ops:PASS0123456789@eth.example/v2/KEY0123456789?apikey=QKEY0123456789"
    pool = RpcPool(["https://eth.llamarpc.com", url], clock=Clock())
    state = pool.states[1]
    assert "KEY0123456789" not in repr(state)
    with caplog.at_level(logging.WARNING, logger="cryptowire.sources.evm.rpc"):
        pool._bench(state, f"InvalidURL: {url} (key KEY0123456789, user ops:PASS0123456789)")
    [one, two] = pool.health()
    assert (one["index"], one["url"], one["label"]) == (
        1, "https://eth.llamarpc.com", "#1 https://eth.llamarpc.com")
    assert (two["index"], two["url"], two["label"]) == (
        2, "https://eth.example/***", "#2 https://eth.example/***")
    assert two["last_error"].startswith("InvalidURL: #2 https://eth.example/***")
    for secret in ("KEY0123456789", "PASS0123456789"):
        assert secret not in str(pool.health())
        assert secret not in caplog.text
    assert "rpc #2 https://eth.example/*** benched" in caplog.text
    # web3 logs the endpoint at DEBUG: the records are scrubbed at their logger.
    with caplog.at_level(logging.DEBUG, logger="web3.providers.AsyncHTTPProvider"):
        logging.getLogger("web3.providers.AsyncHTTPProvider").debug(
            "Making request HTTP. URI: %s, Method: %s", url, "eth_chainId")
    assert caplog.records[-1].getMessage() == (
        "Making request HTTP. URI: #2 https://eth.example/***, Method: eth_chainId")
    assert scrub_url("no url here", url) == "no url here"
