"""OKX order book checks: the CRC32 checksum and the ``seqId``/``prevSeqId`` rule (sans-I/O).

Both follow the OKX v5 API documentation, "WS / Order book channel"
(https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel):

*Checksum*: "Use the first 25 bids and asks in the full load to form a string (where a
colon connects the price and size in an ask or a bid), and then calculate the CRC32 value
(32-bit signed integer)." Bids and asks alternate (``bid1:ask1:bid2:ask2...``); when one
side has fewer than 25 levels, "the missing depth data will be ignored", so the longer side
simply continues. The prices and sizes are the strings OKX sent, unchanged (``"3366"``
stays ``"3366"``, ``"0.5000"`` is not shortened).

OKX deprecated the field on 23 June 2026 (announcement "OKX Order Book Channels Checksum
Field Deprecation", 21 May 2026): ``books``, ``books-l2-tbt`` and ``books50-l2-tbt`` still
carry ``checksum`` but it is always ``0`` and "must no longer be used for integrity
verification". :func:`check` therefore reads a ``0`` as "not sent" (``None``); the
checksum stays useful for recordings made before that date and for replay peers.

*Sequence*: "The ``prevSeqId`` in the new message matches with ``seqId`` of the previous
message"; a snapshot has ``prevSeqId`` ``-1``; a keep-alive update after about 60 s without
changes has empty ``asks``/``bids`` and ``prevSeqId == seqId``; after maintenance the
sequence may reset (``seqId`` smaller than ``prevSeqId``), still chained by ``prevSeqId``.
So one rule covers them all: an update continues the book if and only if its ``prevSeqId``
is the ``seqId`` last applied (:func:`sequence_gap`).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping, Sequence
from itertools import zip_longest

from cryptowire.books import BookError

#: Levels per side that enter the checksum.
CHECKSUM_DEPTH = 25

_SIGN_BIT = 1 << 31
_WORD = 1 << 32


def checksum_string(bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> str:
    """The string OKX hashes: ``bid1px:bid1sz:ask1px:ask1sz:bid2px:...`` over the top 25.

    ``bids`` and ``asks`` are best first, each level ``[price, size, ...]`` (OKX levels have
    four fields, :class:`~cryptowire.books.OrderBook` levels two; only the first two count).
    """
    parts: list[str] = []
    for bid, ask in zip_longest(bids[:CHECKSUM_DEPTH], asks[:CHECKSUM_DEPTH]):
        for level in (bid, ask):
            if level is not None:
                parts.extend(_price_size(level))
    return ":".join(parts)


def checksum(bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]]) -> int:
    """OKX's book checksum: CRC32 of :func:`checksum_string`, as a signed 32-bit integer."""
    value = zlib.crc32(checksum_string(bids, asks).encode("ascii"))
    return value - _WORD if value >= _SIGN_BIT else value


def check(bids: Sequence[Sequence[str]], asks: Sequence[Sequence[str]], sent: int) -> bool | None:
    """Whether the book matches the ``checksum`` OKX sent; ``None`` when OKX sent ``0``.

    ``0`` is what the deprecated field carries since 23 June 2026 (see the module doc); a
    real CRC of ``0`` is possible but one in 2**32, and treating it as "not sent" can only
    skip a check, never fail a good book.
    """
    if sent == 0:
        return None
    return checksum(bids, asks) == sent


def sequence_gap(last_seq_id: int | None, data: Mapping[str, object]) -> str | None:
    """Why the order book message ``data`` (one item of ``"data"``) does not continue a book
    whose last applied message had ``seqId`` ``last_seq_id``; ``None`` when it does.

    A snapshot (``prevSeqId`` ``-1``) always starts a new chain.
    """
    prev_seq_id, seq_id = data.get("prevSeqId"), data.get("seqId")
    if not _is_int(prev_seq_id) or not _is_int(seq_id):
        return f"prevSeqId {prev_seq_id!r} / seqId {seq_id!r} are not integers"
    if prev_seq_id == -1:
        return None
    if last_seq_id is None:
        return f"update prevSeqId={prev_seq_id} before any snapshot"
    if prev_seq_id != last_seq_id:
        return f"prevSeqId={prev_seq_id} does not follow seqId={last_seq_id}"
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _price_size(level: Iterable[object]) -> tuple[str, str]:
    fields = list(level)
    if len(fields) < 2 or not isinstance(fields[0], str) or not isinstance(fields[1], str):
        raise BookError(f"level {fields!r} is not [price, size, ...] strings")
    return fields[0], fields[1]
