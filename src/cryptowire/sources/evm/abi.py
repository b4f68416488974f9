"""ABI fragments of the contracts the watcher reads (Uniswap V2 and ERC-20), as data.

Event topics are computed from the signatures with ``eth_utils.keccak`` (and checked against
the values PROTOCOLS.md 2.3 quotes in the unit tests).
"""

from __future__ import annotations

from typing import Any

from eth_utils.crypto import keccak

SWAP_SIGNATURE = "Swap(address,uint256,uint256,uint256,uint256,address)"
TRANSFER_SIGNATURE = "Transfer(address,address,uint256)"
SWAP_TOPIC = "0x" + keccak(text=SWAP_SIGNATURE).hex()
TRANSFER_TOPIC = "0x" + keccak(text=TRANSFER_SIGNATURE).hex()

#: Non-indexed fields of Uniswap V2 ``Swap`` (the log's ``data``).
SWAP_DATA_TYPES = ("uint256", "uint256", "uint256", "uint256")
#: Non-indexed field of ERC-20 ``Transfer``.
TRANSFER_DATA_TYPES = ("uint256",)


def _fn(name: str, inputs: list[tuple[str, str]], outputs: list[str]) -> dict[str, Any]:
    return {
        "type": "function", "name": name, "stateMutability": "view",
        "inputs": [{"name": n, "type": t} for n, t in inputs],
        "outputs": [{"name": "", "type": t} for t in outputs],
    }  # fmt: skip


ERC20_ABI: list[dict[str, Any]] = [
    _fn("decimals", [], ["uint8"]),
    _fn("symbol", [], ["string"]),
    _fn("name", [], ["string"]),
]
FACTORY_ABI: list[dict[str, Any]] = [
    _fn("getPair", [("tokenA", "address"), ("tokenB", "address")], ["address"]),
]
PAIR_ABI: list[dict[str, Any]] = [
    _fn("token0", [], ["address"]),
    _fn("token1", [], ["address"]),
]
