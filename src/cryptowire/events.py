"""Normalized events: what every source emits and every dialect encodes.

An :class:`Event` is ``(channel, type, data, ts_source, ts_received, source)``. ``data`` is a
JSON-ready value whose money fields are decimal *strings*, exactly as the source gave them;
a float never appears in it. A :class:`Publication` is an event after the broker stamped
its ``epoch`` and ``offset`` and encoded ``data`` once (``data_json``).

The payload shapes (``TickerData``...) follow PROTOCOLS.md section 1, which follows the Mudrex
seed's normalized shapes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

import orjson

from cryptowire.clock import now_ms


class BookLevel(TypedDict):
    price: str | None
    size: str | None


class TickerData(TypedDict, total=False):
    symbol: str
    price: str | None
    markPrice: str | None
    indexPrice: str | None
    high24h: str | None
    low24h: str | None
    prevPrice24h: str | None
    volume24h: str | None
    turnover24h: str | None
    change24hPercent: str | None
    tickDirection: str | None
    bid: BookLevel
    ask: BookLevel
    openInterest: str | None
    openInterestValue: str | None
    fundingRate: str | None
    nextFundingTime: str | None


class KlineData(TypedDict):
    symbol: str
    interval: str
    openTime: int
    closeTime: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    turnover: str
    confirmed: bool


class TradeData(TypedDict):
    id: str
    symbol: str
    price: str
    quantity: str
    side: str
    time: int
    isBlockTrade: bool


class BookData(TypedDict, total=False):
    """A ``book:`` snapshot or delta (PROTOCOLS.md 4.1): ``[price, size]`` decimal strings,
    bids best (highest) first, asks best (lowest) first; in a delta size ``"0"`` removes."""

    symbol: str
    bids: list[list[str]]
    asks: list[list[str]]
    venueSeq: int


class LiquidationData(TypedDict):
    """A ``liquidation:`` event (PROTOCOLS.md 4.4); ``side`` is the liquidated position's
    order side as the venue gives it (``Buy``/``Sell``)."""

    symbol: str
    side: str
    price: str
    size: str
    time: int


class SwapData(TypedDict):
    chain: int
    pair: str
    token: str
    symbol: str
    side: str
    token_amount: str
    paired_amount: str
    price_in_paired: str
    taker: str
    tx_hash: str
    log_index: int
    block: int
    time: int


# ``from`` is a Python keyword, hence the functional form.
BurnData = TypedDict("BurnData", {
    "chain": int, "token": str, "symbol": str, "amount": str, "from": str, "to": str,
    "tx_hash": str, "log_index": int, "block": int, "time": int,
})


def exact_bytes(encoded: bytes) -> bytes:
    """``encoded`` in an allocation of its own size, for bytes that are kept (history).

    orjson returns its whole working buffer behind the bytes it produces: 4 KiB for a
    7-byte document, 8 MiB for a 1 MB string (orjson 3.13, measured with tracemalloc and
    RSS in ``bench/history_memory.py``); a kept publication would hold that for as long as
    it is kept. The copy costs one memcpy of the document.
    """
    return memoryview(encoded).tobytes()


@dataclass(frozen=True, slots=True)
class Event:
    """One normalized message on one channel, before the broker stamps it.

    ``type`` is ``snapshot`` | ``update`` | ``delta`` (a book change) | ``gap`` | ``removed``
    (a correction of an earlier on-chain event) or another word a source documents.
    """

    channel: str
    data: Any
    type: str = "update"
    ts_source: int | None = None
    ts_received: int = field(default_factory=now_ms)
    source: str = ""


@dataclass(frozen=True, slots=True)
class Publication:
    """An event with its place in the channel's history and its data encoded once."""

    channel: str
    type: str
    epoch: str
    offset: int
    ts: int
    ts_received: int
    source: str
    data_json: bytes

    @property
    def data(self) -> Any:
        return orjson.loads(self.data_json)

    @classmethod
    def from_event(cls, event: Event, epoch: str, offset: int) -> Publication:
        return cls(
            channel=event.channel,
            type=event.type,
            epoch=epoch,
            offset=offset,
            ts=event.ts_source if event.ts_source is not None else event.ts_received,
            ts_received=event.ts_received,
            source=event.source,
            data_json=exact_bytes(orjson.dumps(event.data)),
        )
