"""Demand-driven topics end to end: a thousand clients, one upstream subscription."""

from __future__ import annotations

import pytest
from tests.integration.bybit_hub.support import (
    TIMEOUT,
    HubFactory,
    call,
    light_clients,
    subscribe,
    wait_for,
)
from tests.peers.bybit_peer import BybitPeer

pytestmark = pytest.mark.integration

CLIENTS = 1000
LINGER_S = 1.0


async def test_a_thousand_clients_make_one_upstream_subscription(
    hub_factory: HubFactory, peer: BybitPeer
) -> None:
    hub = await hub_factory(demand={"linger_s": LINGER_S})
    # Default config subscribes to nothing until asked: no socket to Bybit yet.
    assert peer.connections_total["linear"] == 0

    clients = await light_clients(hub.port, CLIENTS,
                                  {"op": "subscribe", "args": ["ticker:BTCUSDT"]})
    try:
        await wait_for(lambda: all(c.replies for c in clients), "every subscribe reply",
                       TIMEOUT * 3)
        for client in clients:
            reply = client.replies[0]
            assert reply["success"] is True and reply["args"] == ["ticker:BTCUSDT"], reply
            assert reply["rejected"] is None
        await wait_for(lambda: all(c.data > 0 for c in clients), "data on every client",
                       TIMEOUT * 3)
        assert peer.subscribe_count("tickers.BTCUSDT") == 1
        assert peer.connections_total["linear"] == 1
        assert hub.node.demand.count("ticker:BTCUSDT") == CLIENTS
        stats = await hub.stats()
        assert stats["connections"] == CLIENTS
        assert stats["sources"]["bybit"]["topics"] == 1
        assert not any(c.closed for c in clients)
    finally:
        for client in clients:
            client.close()

    # The last one leaving unsubscribes upstream, after the linger and not before.
    await wait_for(lambda: not hub.node.hub.sessions, "every session to end", TIMEOUT * 2)
    assert peer.unsubscribe_count("tickers.BTCUSDT") == 0  # lingering
    took = await wait_for(lambda: peer.unsubscribe_count("tickers.BTCUSDT") == 1,
                          "the upstream unsubscribe", LINGER_S + TIMEOUT)
    assert took >= LINGER_S * 0.5  # the linger ran (part of it may have passed before)
    await wait_for(lambda: peer.subscribed("linear") == [set()], "the peer to stop streaming")
    assert peer.subscribe_count("tickers.BTCUSDT") == 1
    stats = await hub.stats()
    assert stats["sources"]["bybit"]["topics"] == 0
    assert "ticker:BTCUSDT" not in stats["upstream_topics"]


async def test_resubscribing_within_the_linger_keeps_the_upstream_topic(
    hub_factory: HubFactory, peer: BybitPeer
) -> None:
    hub = await hub_factory(demand={"linger_s": LINGER_S})
    ws = await hub.connect()
    await subscribe(ws, "ticker:BTCUSDT")
    await ws.close()
    await wait_for(lambda: not hub.node.hub.sessions, "the session to end")
    again = await hub.connect()
    reply = await subscribe(again, "ticker:BTCUSDT")
    assert reply["args"] == ["ticker:BTCUSDT"]
    # A barrier: a topic released after BTC's resubscribe lingers as long and goes upstream
    # on the same socket, so once its unsubscribe is in, BTC's linger has long run out.
    await subscribe(again, "ticker:ETHUSDT")
    unsub = await call(again, {"op": "unsubscribe", "args": ["ticker:ETHUSDT"]})
    assert unsub["success"] is True, unsub
    await wait_for(lambda: peer.unsubscribe_count("tickers.ETHUSDT") == 1,
                   "the later topic's upstream unsubscribe", LINGER_S + TIMEOUT)
    assert peer.subscribe_count("tickers.BTCUSDT") == 1
    assert peer.unsubscribe_count("tickers.BTCUSDT") == 0
