"""Logs to swap and burn events, with literal logs (no node): sides, isToken0, scaling."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from eth_abi.abi import encode

from cryptowire.onchain import TrackedToken
from cryptowire.sources.evm.abi import SWAP_TOPIC, TRANSFER_TOPIC
from cryptowire.sources.evm.decode import (
    Watchlist,
    burn_topic,
    decode_logs,
    price,
    scaled,
)

PAIR = "0x" + "11" * 20
TOKEN = "0x" + "22" * 20
TAKER = "0x" + "33" * 20
DEAD = "0x000000000000000000000000000000000000dead"


def test_topics_are_the_ones_protocols_md_quotes() -> None:
    assert SWAP_TOPIC == "0xd78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822"
    assert TRANSFER_TOPIC == \
        "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


@pytest.mark.parametrize(("raw", "decimals", "text"), [
    (10**18, 18, "1"), (1, 18, "0.000000000000000001"), (1234567, 3, "1234.567"),
    (0, 9, "0"), (500, 0, "500"), (10**40 + 5, 18, "10000000000000000000000.000000000000000005"),
])
def test_scaled_is_exact(raw: int, decimals: int, text: str) -> None:
    assert scaled(raw, decimals) == text
    with localcontext() as ctx:  # the default 28 digits would round the last case
        ctx.prec = 100
        assert Decimal(text) == Decimal(raw).scaleb(-decimals)


def test_price_in_paired() -> None:
    assert price(5 * 10**17, 18, 1000 * 10**9, 9) == "0.0005"
    assert price(1, 18, 0, 18) == "0"


def _swap_log(a0in: int, a1in: int, a0out: int, a1out: int, *, index: int = 3) -> dict:
    return {
        "address": PAIR, "topics": [SWAP_TOPIC, "0x" + "00" * 12 + "44" * 20,
                                    burn_topic(TAKER)],
        "data": "0x" + encode(["uint256"] * 4, [a0in, a1in, a0out, a1out]).hex(),
        "transactionHash": "0x" + "ab" * 32, "logIndex": hex(index), "blockNumber": "0x10",
        "blockHash": "0x" + "cd" * 32,
    }


def _token(is_token0: bool) -> TrackedToken:
    return TrackedToken(chain=1, address=TOKEN, symbol="PEPE", decimals=9, pair=PAIR,
                        paired_decimals=18, is_token0=is_token0)


@pytest.mark.parametrize(("is_token0", "amounts", "side", "token_amount", "paired_amount"), [
    (True, (0, 5 * 10**17, 1000 * 10**9, 0), "buy", "1000", "0.5"),
    (True, (1000 * 10**9, 0, 0, 5 * 10**17), "sell", "1000", "0.5"),
    (False, (5 * 10**17, 0, 0, 1000 * 10**9), "buy", "1000", "0.5"),
    (False, (0, 1000 * 10**9, 5 * 10**17, 0), "sell", "1000", "0.5"),
])
def test_swap_sides_honour_is_token0(is_token0: bool, amounts: tuple[int, int, int, int],
                                     side: str, token_amount: str, paired_amount: str) -> None:
    (ev,) = decode_logs([_swap_log(*amounts)], Watchlist(1, [_token(is_token0)]), [DEAD],
                        {16: 1_700_000_000_000})
    assert ev.kind == "swap" and ev.key == (1, "0x" + "ab" * 32, 3)
    assert ev.payload == {
        "chain": 1, "pair": PAIR, "token": TOKEN, "symbol": "PEPE", "side": side,
        "token_amount": token_amount, "paired_amount": paired_amount,
        "price_in_paired": "0.0005", "taker": TAKER, "tx_hash": "0x" + "ab" * 32,
        "log_index": 3, "block": 16, "time": 1_700_000_000_000,
    }


def test_burns_only_to_burn_addresses_and_untracked_skipped() -> None:
    def transfer(to: str, index: int, address: str = TOKEN) -> dict:
        return {"address": address, "topics": [TRANSFER_TOPIC, burn_topic(TAKER), burn_topic(to)],
                "data": "0x" + encode(["uint256"], [25 * 10**8]).hex(),
                "transactionHash": bytes.fromhex("ef" * 32), "logIndex": index,
                "blockNumber": 17, "blockHash": bytes.fromhex("01" * 32)}

    logs = [transfer(DEAD, 2), transfer("0x" + "99" * 20, 1), transfer(DEAD, 0, "0x" + "77" * 20),
            {**transfer("0x" + "00" * 20, 5), "removed": True}]
    events = decode_logs(logs, Watchlist(1, [_token(True)]), [DEAD, "0x" + "00" * 20], {})
    assert [(e.kind, e.log_index) for e in events] == [("burn", 2)]
    assert events[0].payload["amount"] == "2.5"
    assert events[0].payload["from"] == TAKER and events[0].payload["to"] == DEAD
    assert events[0].block_hash == "0x" + "01" * 32
