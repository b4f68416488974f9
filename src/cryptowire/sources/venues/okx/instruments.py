"""OKX instruments: the hub's ``BTCUSDT`` <-> OKX's ``instId``, and contracts -> base units.

From ``GET /api/v5/public/instruments?instType=SWAP|SPOT`` (docs: #public-data-rest-api-get-
instruments; fixtures ``tests/fixtures/okx/instruments-*.json``):

- ``@okx`` lists the **linear USDT swaps** only: ``instType`` ``SWAP``, ``ctType``
  ``linear``, ``settleCcy`` ``USDT``, ``uly`` ``BASE-USDT`` and ``ctValCcy`` the base
  currency (``BTC-USDT-SWAP`` -> ``BTCUSDT``). Inverse swaps (``BTC-USD-SWAP``, settled in
  BTC) are not listed: ``BTCUSD`` is not a USDT perpetual.
- ``@okx-spot`` lists every spot pair, ``baseCcy`` + ``quoteCcy`` (``BTC-USDT`` ->
  ``BTCUSDT``, ``BTC-USDC`` -> ``BTCUSDC``).

An instrument whose ``state`` is not ``live`` is known but not subscribable (``suspend``,
``preopen``...): the reason says so.

Sizes of SWAP instruments are **contracts** (trades ``sz``, book levels, ticker ``bidSz``/
``askSz``, liquidation ``sz``); one contract is ``ctVal`` base units (``0.01`` BTC for
BTC-USDT-SWAP). The hub's sizes are base units on every venue (Bybit's meaning), so
:meth:`Instrument.base_size` multiplies exactly (:class:`~decimal.Decimal`, no rounding, written
without exponent by :func:`~cryptowire.jsonnum.decimal_str`). Spot sizes are base units
already and pass unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Context, Decimal, Inexact, InvalidOperation
from typing import Any

from cryptowire.errors import SourceError
from cryptowire.jsonnum import decimal_str

#: The ``instType`` of each OKX venue.
INST_TYPES: dict[str, str] = {"okx": "SWAP", "okx-spot": "SPOT"}

# Exact products: a size has at most a few dozen digits; a result that would need rounding
# raises instead of being rounded.
_EXACT = Context(prec=200, traps=[Inexact, InvalidOperation])


class InstrumentError(SourceError, ValueError):
    """An instruments response that cannot be read."""


@dataclass(frozen=True, slots=True)
class Instrument:
    """One OKX instrument as the hub sees it."""

    symbol: str  # BTCUSDT
    inst_id: str  # BTC-USDT-SWAP | BTC-USDT
    venue: str  # okx | okx-spot
    state: str  # live | suspend | preopen | ...
    #: Base units per contract (SWAP), ``None`` for spot (sizes are base units already).
    ct_val: Decimal | None = None
    #: :func:`point_shift` of ``ct_val`` (derived).
    shift: int | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.ct_val is not None:
            object.__setattr__(self, "shift", point_shift(self.ct_val))

    @property
    def live(self) -> bool:
        return self.state == "live"

    def base_size(self, size: str) -> str:
        """An OKX size string in base units: contracts x ``ctVal`` on swaps, exactly;
        spot sizes unchanged. ``ValueError`` if ``size`` is not a plain decimal string."""
        if self.ct_val is None:
            return size
        return contracts_to_base(size, self.ct_val, self.shift)


def contracts_to_base(size: str, ct_val: Decimal, shift: int | None = None) -> str:
    """``size`` contracts of ``ct_val`` base units each, exactly (``"12.5"`` x ``0.01`` ->
    ``"0.125"``, ``"0"`` -> ``"0"``); ``ValueError`` for anything but a plain decimal string.
    ``shift`` is :func:`point_shift` of ``ct_val`` (the fast path), if the caller has it."""
    if size.__class__ is not str or not (size.isascii() and size.replace(".", "", 1).isdigit()):
        raise ValueError(f"size {size!r} is not a plain decimal string")
    if not size.strip("0."):
        return "0"
    if shift is not None:  # ctVal 1, 0.1, 0.01 ...: move the point, as the product would
        whole, _, frac = size.partition(".")
        digits, scale = whole + frac, len(frac) + shift
        if not scale:
            return digits.lstrip("0") or "0"
        digits = digits.rjust(scale + 1, "0")
        return f"{digits[:-scale].lstrip('0') or '0'}.{digits[-scale:]}"
    return decimal_str(_EXACT.multiply(Decimal(size), ct_val))


def point_shift(ct_val: Decimal) -> int | None:
    """The places a ``ctVal`` written ``1``, ``0.1``, ``0.01``... moves the decimal point
    (its product with a size is that size's digits at a larger scale); ``None`` for others
    (``0.010``, ``10``, ``0.5``: the general product)."""
    sign, digits, exponent = ct_val.as_tuple()
    if sign == 0 and digits == (1,) and isinstance(exponent, int) and -30 <= exponent <= 0:
        return -exponent
    return None


class Instruments:
    """The instruments of one OKX venue, by hub symbol and by ``instId``."""

    def __init__(self, venue: str, items: Iterable[Instrument] = ()) -> None:
        if venue not in INST_TYPES:
            raise ValueError(f"not an OKX venue: {venue!r}")
        self.venue = venue
        self.by_symbol: dict[str, Instrument] = {}
        self.by_inst_id: dict[str, Instrument] = {}
        for item in items:
            self.by_symbol.setdefault(item.symbol, item)
            self.by_inst_id[item.inst_id] = item

    def __len__(self) -> int:
        return len(self.by_symbol)

    def get(self, symbol: str) -> Instrument | None:
        return self.by_symbol.get(symbol)

    def refusal(self, symbol: str) -> str | None:
        """Why ``symbol`` cannot be subscribed on this venue; ``None`` if it can."""
        item = self.by_symbol.get(symbol)
        market = "USDT swap" if self.venue == "okx" else "spot pair"
        if item is None:
            return f"OKX lists no {market} {symbol} (@{self.venue})"
        if not item.live:
            return f"OKX {market} {item.inst_id} is not trading (state {item.state!r})"
        return None


def parse_instruments(venue: str, body: Mapping[str, Any]) -> Instruments:
    """The instruments of ``venue`` from an instruments response ``{"code":"0","data":[..]}``.

    Items of another ``instType``, inverse or non-USDT swaps are skipped; an item missing a
    field the mapping needs is skipped too (one odd instrument must not hide the others).
    """
    code = body.get("code")
    if code != "0":
        raise InstrumentError(f"OKX instruments: code {code!r} ({body.get('msg')!r})")
    data = body.get("data")
    if not isinstance(data, list):
        raise InstrumentError("OKX instruments: 'data' is not a list")
    inst_type = INST_TYPES[venue]
    out: list[Instrument] = []
    for item in data:
        if isinstance(item, dict) and item.get("instType") == inst_type:
            parsed = _swap(item) if inst_type == "SWAP" else _spot(item)
            if parsed is not None:
                out.append(parsed)
    return Instruments(venue, out)


def _swap(item: Mapping[str, Any]) -> Instrument | None:
    inst_id, uly = item.get("instId"), item.get("uly") or item.get("instFamily")
    if (item.get("ctType") != "linear" or item.get("settleCcy") != "USDT"
            or not isinstance(inst_id, str) or not isinstance(uly, str)):
        return None
    base, _, quote = uly.partition("-")
    if quote != "USDT" or not base or item.get("ctValCcy") != base:
        return None
    text = item.get("ctVal")
    try:
        ct_val = Decimal(text) if isinstance(text, str) else Decimal("NaN")
    except InvalidOperation:
        return None
    if not ct_val.is_finite() or ct_val <= 0:
        return None
    return Instrument(f"{base}{quote}".upper(), inst_id, "okx", str(item.get("state")), ct_val)


def _spot(item: Mapping[str, Any]) -> Instrument | None:
    inst_id, base, quote = item.get("instId"), item.get("baseCcy"), item.get("quoteCcy")
    if not (isinstance(inst_id, str) and isinstance(base, str) and isinstance(quote, str)
            and base and quote):
        return None
    return Instrument(f"{base}{quote}".upper(), inst_id, "okx-spot", str(item.get("state")))
