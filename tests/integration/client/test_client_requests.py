"""The SDK's requests and refusals against a real hub: auth, subscribe (with rejections),
unsubscribe, publish, revoked keys, wrong URLs."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from tests.integration.client.clienthub import FAST, Collector, RestartableHub

from cryptowire.client import (
    AuthRejected,
    ConnectError,
    Message,
    RequestError,
    SubscribeError,
    connect,
)
from cryptowire.errors import AuthError, CryptowireError

pytestmark = pytest.mark.integration


async def test_subscribe_reports_rejections_and_refuses_all_rejected(
        hub: RestartableHub) -> None:
    async with connect(hub.ws_url, **FAST) as client:  # anonymous read
        reply = await client.subscribe("app:test", "tickers.*", "app:test")
        assert reply.channels == ("app:test",)
        assert [r.arg for r in reply.rejected] == ["tickers.*"]
        assert "wildcard" in reply.rejected[0].reason.lower()
        assert reply.positions["app:test"].offset == 0
        assert reply.raw["op"] == "subscribe"
        with pytest.raises(SubscribeError) as info:
            await client.subscribe("nope:1", "kline:7m:ETHUSDT")
        assert isinstance(info.value, ValueError) and isinstance(info.value, CryptowireError)
        assert [r.arg for r in info.value.rejected] == ["nope:1", "kline:7m:ETHUSDT"]
        assert "7m" in str(info.value)
        assert client.subscriptions == frozenset({"app:test"})


async def test_publish_unsubscribe_and_decimals(hub: RestartableHub) -> None:
    async with connect(hub.ws_url, hub.admin_key, **FAST) as client:
        assert "admin" in client.scopes
        await client.subscribe("app:a", "app:b")
        seen = Collector(client)
        try:
            pos = await client.publish("app:a", {"price": Decimal("0.10"), "qty": "1"})
            assert (pos.channel, pos.offset) == ("app:a", 1)
            await seen.wait_for(lambda c: len(c.messages()) == 1)
            assert seen.messages()[0].data == {"price": "0.10", "qty": "1"}
            assert client.position("app:a") == pos

            gone = await client.unsubscribe("app:a", "app:never")
            assert gone.channels == ("app:a",)
            assert [r.arg for r in gone.rejected] == ["app:never"]
            assert client.position("app:a") is None
            await client.publish("app:a", {"after": "unsubscribe"})
            await client.publish("app:b", {"still": "here"})
            await seen.wait_for(lambda c: len(c.messages()) == 2)
            assert [m.channel for m in seen.messages()] == ["app:a", "app:b"]

            with pytest.raises(RequestError) as info:
                await client.publish("ticker:BTCUSDT", {"x": 1})
            assert info.value.code == "INVALID_ARGS"
        finally:
            await seen.stop()


async def test_publish_needs_scope(hub: RestartableHub) -> None:
    key, _ = await hub.create_key("reader", ["read"])
    async with connect(hub.ws_url, key, **FAST) as client:
        with pytest.raises(AuthRejected) as info:
            await client.publish("app:test", {})
        assert info.value.code == "FORBIDDEN"
        assert client.connected  # a refused request does not end the client


async def test_wrong_key_is_not_retried(hub: RestartableHub) -> None:
    with pytest.raises(AuthRejected) as info:
        async with connect(hub.ws_url, "cw_00000000_wrong", **FAST):
            pass
    assert isinstance(info.value, AuthError) and isinstance(info.value, PermissionError)
    assert "Invalid or revoked" in str(info.value)


async def test_revoked_key_ends_iteration_with_auth_error(hub: RestartableHub) -> None:
    key, record = await hub.create_key("soon-revoked", ["read"])
    async with connect(hub.ws_url, key, **FAST) as client:
        await client.subscribe("app:test")
        seen = Collector(client)
        await hub.publish("app:test", {"n": 1})
        await seen.wait_for(lambda c: len(c.messages()) == 1)
        assert hub.node is not None and hub.node.store is not None
        await hub.node.store.revoke_key(record.id)
        assert hub.node.close_key_sessions(record.id) == 1  # what the revocation poll does
        await asyncio.wait_for(seen.task, 5)
    assert isinstance(seen.error, AuthRejected)
    assert seen.error.close_code == 4010
    assert "revoked" in str(seen.error)
    assert isinstance(seen.items[0], Message) and len(seen.items) == 1


async def test_unreachable_hub_and_wrong_path(hub: RestartableHub) -> None:
    with pytest.raises(ConnectError) as info:
        async with connect(f"http://127.0.0.1:{hub.port}/nope", **FAST):
            pass
    assert "404" in str(info.value)
    port = hub.port
    await hub.stop()
    with pytest.raises(ConnectError) as refused:
        async with connect(f"ws://127.0.0.1:{port}/ws", connect_timeout_s=0.5, **FAST):
            pass
    assert "within 0.5s" in str(refused.value)
