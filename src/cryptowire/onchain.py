"""The records of the on-chain source: a tracked token and one decoded on-chain event.

Pure data, shared by the watcher, the store (``cryptowire.store.evm``), the dialects and the
Telegram notifier. Addresses are kept lower-case (channels use them that way); amounts are
exact decimal strings, never floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

EventKind = Literal["swap", "burn"]


@dataclass(frozen=True, slots=True)
class TrackedToken:
    """One watchlist entry: a token on a chain, and the Uniswap-V2 pair its swaps go through.

    ``is_token0`` says whether the token is ``token0`` of ``pair`` (PROTOCOLS.md 2.3): then a
    buy is ``amount0Out > 0``. ``pair`` may be ``None`` (burns only).
    """

    chain: int
    address: str
    symbol: str
    decimals: int
    name: str = ""
    pair: str | None = None
    paired: str | None = None
    paired_symbol: str | None = None
    paired_decimals: int | None = None
    is_token0: bool = True
    group: str | None = None
    added_at: int = 0

    def public(self) -> dict[str, Any]:
        """The JSON shape of the admin API (native op, REST, CLI)."""
        return {
            "chain": self.chain, "address": self.address, "symbol": self.symbol,
            "name": self.name, "decimals": self.decimals, "pair": self.pair,
            "paired": self.paired, "paired_symbol": self.paired_symbol,
            "paired_decimals": self.paired_decimals, "isToken0": self.is_token0,
            "group": self.group, "added_at": self.added_at,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class OnchainEvent:
    """A decoded swap or burn, unique by ``(chain, tx_hash, log_index)``.

    ``payload`` is the channel data exactly as published (``SwapData`` or the burn shape).
    """

    kind: EventKind
    chain: int
    token: str
    tx_hash: str
    log_index: int
    block: int
    block_hash: str
    time: int
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.chain, self.tx_hash, self.log_index)
