"""The watchlist admin surfaces (native ops, REST) and the seed 000 dialect on ``/swaps``,
against a real anvil node and a running hub."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import aiohttp
import orjson
from tests.integration.evm.evmhub import CHAIN, TIMEOUT, EvmHub, HubFactory
from tests.peers.anvil import Dex
from tests.waiting import subscribed


async def _key(hub: EvmHub, *scopes: str) -> str:
    assert hub.node.store is not None
    plaintext, _ = await hub.node.store.create_key("t", scopes)
    return plaintext


async def _op(ws: aiohttp.ClientWebSocketResponse, op: str, *args: Any) -> dict[str, Any]:
    await ws.send_str(orjson.dumps({"id": op, "op": op, "args": list(args)}).decode())
    while True:
        msg: dict[str, Any] = orjson.loads(await asyncio.wait_for(ws.receive_str(), TIMEOUT))
        if msg.get("id") == op:
            return msg


async def test_native_ops_and_rest_manage_the_watchlist(evm_hub_factory: HubFactory,
                                                        dex: Dex) -> None:
    hub = await evm_hub_factory()
    admin, reader = await _key(hub, "admin"), await _key(hub, "read")
    first, second = dex.tokens
    ws = await hub.ws()
    assert (await _op(ws, "auth", admin))["success"]
    added = await _op(ws, "add_token", {"chain": CHAIN, "address": first.address})
    assert added["success"] and added["message"] == "Successfully added token"
    token = added["data"]
    assert (token["symbol"], token["decimals"], token["pair"]) == \
        (first.symbol, first.decimals, first.pair.lower())
    assert token["isToken0"] == (first.address.lower() < dex.weth.lower())
    assert token["paired_symbol"] == "WETH"
    again = await _op(ws, "add_token", {"chain": 31337, "address": first.address})
    assert again["op"] == "error" and "already tracked" in again["message"]
    listed = await _op(ws, "list_tokens")
    assert [t["address"] for t in listed["data"]] == [first.address.lower()]

    ro = await hub.ws()
    assert (await _op(ro, "auth", reader))["success"]
    refused = await _op(ro, "add_token", {"chain": CHAIN, "address": second.address})
    assert refused["op"] == "error" and refused["code"] == "FORBIDDEN"

    # REST, the documented explicit shape: nothing is read on chain.
    headers = {"X-API-Key": admin}
    body = {"chain": 31337, "name": "EXPL", "decimals": second.decimals,
            "address": second.address, "pair": second.pair, "isToken0": False,
            "group": "beta"}
    async with hub.http.post(f"{hub.url}/api/v1/tokens", json=body, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
        assert (await resp.json())["token"]["symbol"] == "EXPL"
    async with hub.http.post(f"{hub.url}/api/v1/tokens", json=body, headers=headers) as resp:
        assert resp.status == 400 and "already tracked" in (await resp.json())["error"]["message"]
    async with hub.http.post(f"{hub.url}/api/v1/tokens", json=body,
                             headers={"X-API-Key": reader}) as resp:
        assert resp.status == 403
    async with hub.http.get(f"{hub.url}/api/v1/tokens", params={"chain": CHAIN}) as resp:
        assert len((await resp.json())["tokens"]) == 2
    async with hub.http.delete(f"{hub.url}/api/v1/tokens/{CHAIN}/{second.address}",
                               headers=headers) as resp:
        assert resp.status == 200
    removed = await _op(ws, "remove_token", {"chain": CHAIN, "address": first.address})
    assert removed["success"]
    assert (await _op(ws, "list_tokens"))["data"] == []


async def _swaps_client(hub: EvmHub, key: str, command: str
                        ) -> aiohttp.ClientWebSocketResponse:
    sock = await hub.ws("/swaps")
    await sock.send_str(key)
    await sock.send_str(command)
    return sock


async def _swaps_command(hub: EvmHub, key: str, command: str, payload: dict[str, Any]
                         ) -> dict[str, Any]:
    sock = await _swaps_client(hub, key, command)
    await sock.send_str(orjson.dumps(payload).decode())
    reply: dict[str, Any] = orjson.loads(await asyncio.wait_for(sock.receive_str(), TIMEOUT))
    return reply


async def test_seed_000_dialect(evm_hub_factory: HubFactory, dex: Dex) -> None:
    hub = await evm_hub_factory()
    admin, reader = await _key(hub, "admin"), await _key(hub, "read")
    first, second = dex.tokens

    # Wrong key: a clear error frame, then close 4001 (the seed closed silently).
    bad = await hub.ws("/swaps")
    await bad.send_str("not-a-key")
    err = orjson.loads(await asyncio.wait_for(bad.receive_str(), TIMEOUT))
    assert err["status"] == 401 and err["message"]
    closing = await asyncio.wait_for(bad.receive(), TIMEOUT)
    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4001

    # add_token, both shapes; twice is refused; an unpaired token is "Pair not found".
    reply = await _swaps_command(hub, admin, "add_token",
                                 {"chain": 31337, "address": first.address, "paired": None})
    assert reply == {"status": 200, "message": "Successfully added token",
                     "data": {"symbol": first.symbol, "address": first.address.lower()}}
    explicit = {"chain": 31337, "name": second.symbol, "decimals": second.decimals,
                "address": second.address, "pair": second.pair,
                "isToken0": second.address.lower() < dex.weth.lower(), "group": "alpha"}
    assert (await _swaps_command(hub, admin, "add_token", explicit))["status"] == 200
    twice = await _swaps_command(hub, admin, "add_token", explicit)
    assert twice["status"] == 400 and "already tracked" in twice["message"]
    lonely = await dex.deploy("TestToken", "Lonely", "LONE", 18, 10**24)
    assert await _swaps_command(hub, admin, "add_token", {"chain": 31337, "address": lonely}) \
        == {"status": 400, "message": "Pair not found"}
    assert await _swaps_command(hub, reader, "token_symbol",
                                {"chain": 31337, "address": lonely}) == \
        {"status": 200, "message": None, "data": {"symbol": "LONE"}}
    refused = await _swaps_command(hub, reader, "add_token", {"chain": 31337, "address": lonely})
    assert refused["status"] == 403

    # Two subscribers at once (the seed closed every subscriber but one).
    subs = [await _swaps_client(hub, reader, "swaps") for _ in range(2)]
    burns = await _swaps_client(hub, reader, "burns")
    await subscribed(hub.node.hub, f"swap:{CHAIN}", 2)
    await subscribed(hub.node.hub, f"burn:{CHAIN}", 1)
    # Three buys and a sell in one block: one batched message, buys only.
    await dex.automine(False)
    for token, buy in ((first, True), (second, True), (first, True), (second, False)):
        await dex.swap(token, buy=buy, amount_in=10**18 if buy else 10**second.decimals,
                       wait=False)
    await dex.burn(second, 10**second.decimals, wait=False)
    await dex.mine()
    await dex.automine(True)
    for sock in subs:
        ((msg, raw),) = await collect_texts(sock, 1)
        data = msg["data"]
        assert data["chain"] == 31337
        events = data["events"]
        assert set(events) == {first.address.lower(), second.address.lower()}
        assert len(events[first.address.lower()]["txs"]) == 2
        assert len(events[second.address.lower()]["txs"]) == 1
        tx = events[first.address.lower()]["txs"][0]
        assert set(tx) == {"txHash", "purchased", "token_price", "swapped", "taker"}
        assert isinstance(tx["purchased"], float | int) and tx["swapped"] == 1
        assert events[first.address.lower()]["symbol"] == first.symbol
        # The JSON numbers carry the native channel's exact decimal strings, digit for digit
        # (through float, an 18-decimal amount or a 30-digit price lost its last digits).
        native = await _native_events(hub, "swap")
        exact = json.loads(raw, parse_float=Decimal)["data"]["events"]
        longest = 0
        for token_txs in exact.values():
            for item in token_txs["txs"]:
                swap = native[item["txHash"]]
                for field, key in (("purchased", "token_amount"), ("swapped", "paired_amount"),
                                   ("token_price", "price_in_paired")):
                    assert f'"{field}":{swap[key]}'.encode() in raw, (field, swap[key], raw)
                    assert item[field] == Decimal(swap[key])
                    longest = max(longest, len(Decimal(swap[key]).as_tuple().digits))
        assert longest > 17, raw  # more significant digits than a float holds
    ((burn, burn_raw),) = await collect_texts(burns, 1)
    (btx,) = burn["data"]["events"][second.address.lower()]["txs"]
    assert btx["amount"] == 1 and btx["to"] == "0x000000000000000000000000000000000000dead"
    burned = (await _native_events(hub, "burn"))[btx["txHash"]]
    assert f'"amount":{burned["amount"]},'.encode() in burn_raw

    removed = await _swaps_command(hub, admin, "remove_token",
                                   {"chain": 31337, "address": first.address})
    assert removed == {"status": "removed"}
    assert await _swaps_command(hub, admin, "remove_token",
                                {"chain": 31337, "address": first.address}) == \
        {"status": "failed"}


async def _native_events(hub: EvmHub, kind: str) -> dict[str, dict[str, Any]]:
    """The event log's payloads of ``<kind>:anvil`` (exact decimal strings) by tx hash."""
    async with hub.http.get(f"{hub.url}/api/v1/events",
                            params={"channel": f"{kind}:{CHAIN}", "limit": "100"}) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    return {e["tx_hash"]: e for e in body["events"]}


async def collect_texts(sock: aiohttp.ClientWebSocketResponse, n: int,
                        settle: float = 0.4) -> list[tuple[dict[str, Any], bytes]]:
    """At least ``n`` messages, each decoded and as the bytes that came."""
    out: list[tuple[dict[str, Any], bytes]] = []
    while True:
        try:
            text = await asyncio.wait_for(sock.receive_str(), settle if len(out) >= n
                                          else TIMEOUT)
        except TimeoutError:
            assert len(out) >= n, out
            return out
        out.append((orjson.loads(text), text.encode()))
