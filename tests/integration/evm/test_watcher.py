"""Swaps and burns mined on a real anvil node reach WebSocket clients exactly once, with the
fields web3.py's own contract event decoder gives for the same receipts."""

from __future__ import annotations

import random
from decimal import Decimal, localcontext
from typing import Any

from tests.integration.evm.evmhub import CHAIN, HubFactory, collect, subscribe
from tests.peers.anvil import DEAD, ZERO, Dex, DexToken
from web3.logs import DISCARD

N_SWAPS = 12
N_BURNS = 5


def _scaled(raw: int, decimals: int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 100
        return Decimal(raw) / Decimal(10) ** decimals


async def _expected_swap(dex: Dex, token: DexToken, tx_hash: str) -> dict[str, Any]:
    """The swap as web3.py's contract event decoder reads the receipt."""
    receipt = await dex.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    (ev,) = dex.contract("DexPair", token.pair).events.Swap().process_receipt(
        receipt, errors=DISCARD)
    args = ev["args"]
    token0 = token.address.lower() < dex.weth.lower()
    if token0:
        buy = args["amount0Out"] > 0
        t_raw, p_raw = (args["amount0Out"], args["amount1In"]) if buy else \
            (args["amount0In"], args["amount1Out"])
    else:
        buy = args["amount1Out"] > 0
        t_raw, p_raw = (args["amount1Out"], args["amount0In"]) if buy else \
            (args["amount1In"], args["amount0Out"])
    return {
        "side": "buy" if buy else "sell", "token_amount": _scaled(t_raw, token.decimals),
        "paired_amount": _scaled(p_raw, 18), "taker": args["to"].lower(),
        "pair": ev["address"].lower(), "log_index": ev["logIndex"],
        "block": ev["blockNumber"], "tx_hash": "0x" + ev["transactionHash"].hex(),
    }


async def _expected_burn(dex: Dex, token: DexToken, tx_hash: str) -> dict[str, Any]:
    receipt = await dex.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
    (ev,) = dex.contract("TestToken", token.address).events.Transfer().process_receipt(
        receipt, errors=DISCARD)
    return {
        "amount": _scaled(ev["args"]["value"], token.decimals),
        "from": ev["args"]["from"].lower(), "to": ev["args"]["to"].lower(),
        "log_index": ev["logIndex"], "block": ev["blockNumber"],
        "tx_hash": "0x" + ev["transactionHash"].hex(),
    }


async def test_n_swaps_and_burns_delivered_exactly_once(evm_hub_factory: HubFactory,
                                                        dex: Dex) -> None:
    hub = await evm_hub_factory()
    await hub.track(dex)
    swaps_ws = await hub.ws()
    burns_ws = await hub.ws()
    token_ws = await hub.ws()
    await subscribe(swaps_ws, f"swap:{CHAIN}")
    await subscribe(burns_ws, "burn:31337")  # by chain id: canonicalized to burn:anvil
    first = dex.tokens[0]
    await subscribe(token_ws, f"swap:{CHAIN}:{first.address}")

    rng = random.Random(4)
    swaps: dict[str, tuple[DexToken, dict[str, Any]]] = {}
    burns: dict[str, tuple[DexToken, dict[str, Any]]] = {}
    for i in range(N_SWAPS):
        token = dex.tokens[i % 2]
        buy = rng.random() < 0.6
        amount = rng.randint(1, 10**4) * 10**15 if buy else \
            rng.randint(1, 10**4) * 10 ** (token.decimals - 3)
        tx = await dex.swap(token, buy=buy, amount_in=amount)
        swaps[tx] = (token, await _expected_swap(dex, token, tx))
    for i in range(N_BURNS):
        token = dex.tokens[i % 2]
        tx = await dex.burn(token, rng.randint(1, 10**6) * 10 ** (token.decimals - 2),
                            to=ZERO if i % 2 else DEAD)
        burns[tx] = (token, await _expected_burn(dex, token, tx))
    # A plain transfer is neither a swap nor a burn.
    await dex.burn(dex.tokens[0], 10**18, to="0x00000000000000000000000000000000000000aa")

    swap_frames = await collect(swaps_ws, N_SWAPS)
    burn_frames = await collect(burns_ws, N_BURNS)
    token_frames = await collect(token_ws, sum(1 for t, _ in swaps.values() if t is first))

    assert len(swap_frames) == N_SWAPS
    assert len({(f["data"]["tx_hash"], f["data"]["log_index"]) for f in swap_frames}) == N_SWAPS
    for frame in swap_frames:
        assert frame["channel"] == f"swap:{CHAIN}" and frame["type"] == "update"
        data = frame["data"]
        token, want = swaps[data["tx_hash"]]
        assert data["chain"] == 31337 and data["token"] == token.address.lower()
        assert data["symbol"] == token.symbol
        for key in ("side", "taker", "pair", "log_index", "block", "tx_hash"):
            assert data[key] == want[key], key
        for key in ("token_amount", "paired_amount"):
            assert isinstance(data[key], str)
            assert Decimal(data[key]) == want[key], key
        with localcontext() as ctx:
            ctx.prec = 30
            assert Decimal(data["price_in_paired"]) == \
                +(want["paired_amount"] / want["token_amount"])
        assert data["time"] > 0
    assert len(burn_frames) == N_BURNS
    for frame in burn_frames:
        assert frame["channel"] == f"burn:{CHAIN}"
        data = frame["data"]
        token, want = burns[data["tx_hash"]]
        assert Decimal(data["amount"]) == want["amount"]
        for key in ("from", "to", "log_index", "block", "tx_hash"):
            assert data[key] == want[key], key
        assert data["symbol"] == token.symbol
    assert all(f["channel"] == f"swap:{CHAIN}:{first.address.lower()}" for f in token_frames)
    assert {f["data"]["tx_hash"] for f in token_frames} == \
        {tx for tx, (t, _) in swaps.items() if t is first}

    # The event log has them too, with the same payloads (REST history).
    async with hub.http.get(f"{hub.url}/api/v1/events",
                            params={"channel": f"swap:{CHAIN}", "limit": "100"}) as resp:
        assert resp.status == 200, await resp.text()
        body = await resp.json()
    assert body["events"] == [f["data"] for f in swap_frames]
    stats = await (await hub.http.get(f"{hub.url}/stats")).json()
    chain = stats["sources"]["evm"]["chains"][CHAIN]
    assert chain["events"] == N_SWAPS + N_BURNS and chain["errors"] == 0
