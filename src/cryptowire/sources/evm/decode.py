"""Logs to events, sans I/O: Uniswap V2 ``Swap`` and ERC-20 ``Transfer`` to a burn address.

Input is what ``eth_getLogs`` returns (through web3.py: ``HexBytes`` and ints; raw JSON hex
strings work too); ABI decoding is eth-abi's. Output is :class:`OnchainEvent` with the
payloads of PROTOCOLS.md 2.3:

- swap ``{chain, pair, token, symbol, side, token_amount, paired_amount, price_in_paired,
  taker, tx_hash, log_index, block, time}``. With ``isToken0`` a buy is ``amount0Out > 0``
  (token_amount = amount0Out, paired_amount = amount1In), a sell the mirror
  (token_amount = amount0In, paired_amount = amount1Out); with the token as token1 the
  indices swap. ``taker`` is the Swap's indexed ``to``.
- burn ``{chain, token, symbol, amount, from, to, tx_hash, log_index, block, time}``.

Amounts are exact decimal strings: the raw integer scaled by the token's decimals with
integer arithmetic (:func:`scaled`); ``price_in_paired`` is a 30-digit ``Decimal`` quotient.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal, localcontext
from typing import Any

from eth_abi.abi import decode as abi_decode

from cryptowire.jsonnum import decimal_str
from cryptowire.onchain import OnchainEvent, TrackedToken
from cryptowire.sources.evm.abi import (
    SWAP_DATA_TYPES,
    SWAP_TOPIC,
    TRANSFER_DATA_TYPES,
    TRANSFER_TOPIC,
)

PRICE_DIGITS = 30


def hexstr(value: Any) -> str:
    """``0x``-prefixed lower-case hex of bytes or a hex string."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    text = str(value).lower()
    return text if text.startswith("0x") else "0x" + text


def raw_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    text = str(value)
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)


def as_int(value: Any) -> int:
    if isinstance(value, int):
        return value
    return int(str(value), 16)


def topic_address(topic: Any) -> str:
    """The address in an indexed ``address`` topic (eth-abi decoding), lower-case."""
    (address,) = abi_decode(["address"], raw_bytes(topic))
    return str(address).lower()


def scaled(raw: int, decimals: int) -> str:
    """``raw / 10**decimals`` as an exact decimal string without trailing zeros."""
    if decimals <= 0:
        return str(raw * 10 ** (-decimals))
    sign = "-" if raw < 0 else ""
    whole, frac = divmod(abs(raw), 10**decimals)
    digits = str(frac).rjust(decimals, "0").rstrip("0")
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def price(paired_raw: int, paired_decimals: int, token_raw: int, token_decimals: int) -> str:
    """Paired tokens per token, to :data:`PRICE_DIGITS` significant digits (``"0"`` if none)."""
    if token_raw == 0:
        return "0"
    with localcontext() as ctx:
        ctx.prec = PRICE_DIGITS
        value = (Decimal(paired_raw) * Decimal(10) ** token_decimals) / (
            Decimal(token_raw) * Decimal(10) ** paired_decimals)
        return decimal_str(value.normalize())


class Watchlist:
    """The tracked tokens of one chain, indexed by token and by pair address."""

    def __init__(self, chain: int, tokens: Iterable[TrackedToken] = ()) -> None:
        self.chain = chain
        self.by_token: dict[str, TrackedToken] = {}
        self.by_pair: dict[str, TrackedToken] = {}
        for token in tokens:
            self.by_token[token.address] = token
            if token.pair:
                self.by_pair[token.pair] = token

    def __len__(self) -> int:
        return len(self.by_token)

    @property
    def pairs(self) -> list[str]:
        return sorted(self.by_pair)

    @property
    def tokens(self) -> list[str]:
        return sorted(self.by_token)


def _common(log: Mapping[str, Any], block_time_ms: int) -> dict[str, Any]:
    return {
        "tx_hash": hexstr(log["transactionHash"]),
        "log_index": as_int(log["logIndex"]),
        "block": as_int(log["blockNumber"]),
        "time": block_time_ms,
    }


def decode_swap(log: Mapping[str, Any], token: TrackedToken, block_time_ms: int
                ) -> OnchainEvent:
    """One Uniswap V2 ``Swap`` log of ``token``'s pair."""
    a0in, a1in, a0out, a1out = abi_decode(list(SWAP_DATA_TYPES), raw_bytes(log["data"]))
    taker = topic_address(log["topics"][2])
    if token.is_token0:
        buy = a0out > 0
        token_raw, paired_raw = (a0out, a1in) if buy else (a0in, a1out)
    else:
        buy = a1out > 0
        token_raw, paired_raw = (a1out, a0in) if buy else (a1in, a0out)
    paired_decimals = token.paired_decimals if token.paired_decimals is not None else 18
    common = _common(log, block_time_ms)
    payload: dict[str, Any] = {
        "chain": token.chain,
        "pair": hexstr(log["address"]),
        "token": token.address,
        "symbol": token.symbol,
        "side": "buy" if buy else "sell",
        "token_amount": scaled(token_raw, token.decimals),
        "paired_amount": scaled(paired_raw, paired_decimals),
        "price_in_paired": price(paired_raw, paired_decimals, token_raw, token.decimals),
        "taker": taker,
        **common,
    }
    return OnchainEvent(kind="swap", chain=token.chain, token=token.address,
                        tx_hash=common["tx_hash"], log_index=common["log_index"],
                        block=common["block"], block_hash=hexstr(log["blockHash"]),
                        time=block_time_ms, payload=payload)


def decode_burn(log: Mapping[str, Any], token: TrackedToken, block_time_ms: int
                ) -> OnchainEvent:
    """One ERC-20 ``Transfer`` log of ``token`` to a burn address."""
    (value,) = abi_decode(list(TRANSFER_DATA_TYPES), raw_bytes(log["data"]))
    common = _common(log, block_time_ms)
    payload: dict[str, Any] = {
        "chain": token.chain,
        "token": token.address,
        "symbol": token.symbol,
        "amount": scaled(value, token.decimals),
        "from": topic_address(log["topics"][1]),
        "to": topic_address(log["topics"][2]),
        **common,
    }
    return OnchainEvent(kind="burn", chain=token.chain, token=token.address,
                        tx_hash=common["tx_hash"], log_index=common["log_index"],
                        block=common["block"], block_hash=hexstr(log["blockHash"]),
                        time=block_time_ms, payload=payload)


def decode_logs(logs: Iterable[Mapping[str, Any]], watchlist: Watchlist,
                burn_addresses: Iterable[str], times_ms: Mapping[int, int]) -> list[OnchainEvent]:
    """Every swap and burn among ``logs`` for ``watchlist``, sorted by (block, log index).

    Logs of untracked contracts, other topics, non-burn transfers and removed logs are
    skipped. ``times_ms`` maps block numbers to block timestamps in milliseconds.
    """
    burns = {a.lower() for a in burn_addresses}
    out: list[OnchainEvent] = []
    for log in logs:
        if log.get("removed"):
            continue
        topics = log.get("topics") or []
        if not topics:
            continue
        topic0 = hexstr(topics[0])
        address = hexstr(log["address"])
        when = times_ms.get(as_int(log["blockNumber"]), 0)
        if topic0 == SWAP_TOPIC and len(topics) == 3:
            token = watchlist.by_pair.get(address)
            if token is not None:
                out.append(decode_swap(log, token, when))
        elif topic0 == TRANSFER_TOPIC and len(topics) == 3:
            token = watchlist.by_token.get(address)
            if token is not None and topic_address(topics[2]) in burns:
                out.append(decode_burn(log, token, when))
    out.sort(key=lambda e: (e.block, e.log_index))
    return out


def burn_topic(address: str) -> str:
    """An address as a 32-byte indexed topic, for ``eth_getLogs`` filters."""
    return "0x" + "0" * 24 + address.lower().removeprefix("0x")
