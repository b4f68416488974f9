"""A naive reference order book for the property tests of ``cryptowire.books``.

Written to be obviously right, not fast: a dict per side keyed by the exact ``Decimal`` of the
price, sorted again on every read, validation by regular expression. It shares no code with
the book under test.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal

_PLAIN = re.compile(r"[0-9]+\.?[0-9]*|\.[0-9]+")
_EXPONENT = re.compile(r"([0-9]+\.?[0-9]*|\.[0-9]+)[eE][+-]?[0-9]{1,4}")


class RefError(ValueError):
    pass


def text(value: object) -> str:
    """The plain decimal string the book keeps for ``value``, or :class:`RefError`."""
    if isinstance(value, str) and value.isascii():
        if _PLAIN.fullmatch(value):
            return value
        if _EXPONENT.fullmatch(value):
            number = Decimal(value)
            exponent = number.as_tuple().exponent
            assert isinstance(exponent, int)
            if abs(exponent) <= 100:
                return format(number, "f")
    raise RefError(repr(value))


def _checked(levels: Sequence[object]) -> list[tuple[Decimal, str, str, bool]]:
    out = []
    for level in levels:
        if not isinstance(level, (list, tuple)) or len(level) != 2:
            raise RefError(repr(level))
        price, size = text(level[0]), text(level[1])
        out.append((Decimal(price), price, size, Decimal(size) == 0))
    return out


class RefBook:
    def __init__(self, depth: int | None) -> None:
        self.depth = depth
        self.sides: dict[str, dict[Decimal, tuple[str, str]]] = {"bids": {}, "asks": {}}

    def sorted_keys(self, side: str) -> list[Decimal]:
        return sorted(self.sides[side], reverse=side == "bids")

    def levels(self, side: str, n: int | None = None) -> list[list[str]]:
        keys = self.sorted_keys(side)
        if n is not None:
            keys = keys[:max(n, 0)]
        return [list(self.sides[side][k]) for k in keys]

    def _cut(self, side: str) -> list[list[str]]:
        if self.depth is None:
            return []
        gone = self.sorted_keys(side)[self.depth:]
        return [[self.sides[side].pop(k)[0], "0"] for k in gone]

    def _change(self, side: str, levels: list[tuple[Decimal, str, str, bool]]) -> None:
        book = self.sides[side]
        for key, price, size, zero in levels:
            if zero:
                book.pop(key, None)
            else:
                book[key] = (price, size)

    def snapshot(self, bids: Sequence[object], asks: Sequence[object]) -> None:
        checked = _checked(bids), _checked(asks)
        self.sides = {"bids": {}, "asks": {}}
        self._change("bids", checked[0])
        self._change("asks", checked[1])
        self._cut("bids")
        self._cut("asks")

    def apply(self, bids: Sequence[object], asks: Sequence[object]
              ) -> tuple[list[list[str]], list[list[str]]]:
        checked = _checked(bids), _checked(asks)
        self._change("bids", checked[0])
        self._change("asks", checked[1])
        return self._cut("bids"), self._cut("asks")

    def crossed(self) -> bool:
        bids, asks = self.sorted_keys("bids"), self.sorted_keys("asks")
        return bool(bids and asks and bids[0] >= asks[0])

    def __len__(self) -> int:
        return len(self.sides["bids"]) + len(self.sides["asks"])
