"""Quote arithmetic, exact: ``amountTo = amountFrom x (1 - commission) x rate``.

Display amounts are rounded to ``display_decimals`` (2, as the seed's widget shows them:
``"148.50"``) half-up, like JavaScript's ``toFixed``; the quote record keeps full precision,
and an order fills the full-precision amount. The displayed ``exchangeRate`` has at least
``display_decimals`` decimals and up to :data:`RATE_SIGNIFICANT_DIGITS` significant digits
(:func:`fmt_rate`), so a small rate (ETH->BTC ``"0.048499912"``) is not shown as ``"0.05"``
and ``amountFrom x (1 - commission) x exchangeRate`` gives the displayed ``amountTo``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext

from cryptowire.errors import CryptowireError
from cryptowire.jsonnum import decimal_str

_CCY_MAX = 12
#: Significant digits of a displayed exchange rate (never fewer decimals than amounts get).
RATE_SIGNIFICANT_DIGITS = 8


class QuoteError(CryptowireError, ValueError):
    """A quote request that cannot be priced (bad amount or currency)."""


@dataclass(frozen=True, slots=True)
class Quote:
    """One priced offer; ``amount_to`` and ``rate`` at full precision."""

    quote_id: str
    key: str
    curr_from: str
    curr_to: str
    amount_from: Decimal
    amount_to: Decimal
    rate: Decimal
    commission: Decimal
    rate_path: str
    created_ms: int
    expires_ms: int

    def display(self, decimals: int) -> dict[str, object]:
        """The seed 001 offer fields (strings rounded for display)."""
        return {
            "amountTo": fmt(self.amount_to, decimals),
            "amountFrom": decimal_str(self.amount_from),
            "exchangeRate": fmt_rate(self.rate, decimals),
            "comissionFee": percent(self.commission),
            "quoteId": self.quote_id,
            "expiresAt": self.expires_ms,
        }


def fmt(value: Decimal, decimals: int) -> str:
    """Round half-up to ``decimals`` places, as a plain (non-scientific) string.

    The precision is raised to hold every integer digit plus ``decimals`` (the default 28
    digits raise ``InvalidOperation`` for large amounts, e.g. 1e15 x a rate of 1e20).
    """
    with localcontext() as ctx:
        ctx.prec = max(ctx.prec, value.adjusted() + decimals + 2)
        return decimal_str(value.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP))


def fmt_rate(value: Decimal, min_decimals: int,
             significant: int = RATE_SIGNIFICANT_DIGITS) -> str:
    """A rate for display: half-up to ``significant`` significant digits, but with at least
    ``min_decimals`` decimals (integer digits are never rounded away) and no trailing zeros
    beyond them: ``15`` -> ``"15.00"``, ``0.0484999123`` -> ``"0.048499912"``,
    ``20.1234567891`` -> ``"20.123457"``."""
    if not value:
        return fmt(value, min_decimals)
    decimals = max(min_decimals, significant - value.adjusted() - 1)
    shown = fmt(value, decimals)
    if decimals > min_decimals:
        whole, _, frac = shown.partition(".")
        frac = frac.rstrip("0").ljust(min_decimals, "0")
        shown = f"{whole}.{frac}" if frac else whole
    return shown


def percent(commission: Decimal) -> int | str:
    """The commission as the seed's ``comissionFee`` number of percent (``1`` for 1%)."""
    pct = (commission * 100).normalize()
    return int(pct) if pct == pct.to_integral_value() else decimal_str(pct)


def parse_amount(text: object) -> Decimal:
    """A non-negative decimal amount from a string or a JSON number; empty is 0.

    A JSON number arrives as ``int`` or ``float`` (the client chose a JSON number); a float
    is taken as the shortest text that round-trips (``str(10.5)`` is ``"10.5"``), so
    ``Decimal`` gets the digits the client wrote. No arithmetic is ever done in float.
    """
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise QuoteError("amountFrom must be a decimal string such as \"10\" or \"0.5\".")
    if isinstance(text, str) and not text.strip():
        return Decimal(0)
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation as exc:
        raise QuoteError(f"amountFrom '{text}' is not a number.") from exc
    if not value.is_finite() or value < 0:
        raise QuoteError("amountFrom must be a finite, non-negative number.")
    if value > Decimal("1e15"):
        raise QuoteError("amountFrom is too large.")
    return value


def parse_currency(text: object, field: str) -> str:
    # ASCII only: str.isalnum() also takes any Unicode letter or digit ('ÄÖ', '١٢').
    if not isinstance(text, str) or not text.isascii() or not text.isalnum() \
            or not 1 <= len(text) <= _CCY_MAX:
        raise QuoteError(f"{field} must be a currency code such as BTC.")
    return text.upper()


def make_quote(
    *, key: str, curr_from: str, curr_to: str, amount_from: Decimal, rate: Decimal,
    commission: Decimal, rate_path: str, now_ms: int, ttl_ms: int,
) -> Quote:
    amount_to = amount_from * (Decimal(1) - commission) * rate
    return Quote(
        quote_id=secrets.token_hex(12), key=key, curr_from=curr_from, curr_to=curr_to,
        amount_from=amount_from, amount_to=amount_to, rate=rate, commission=commission,
        rate_path=rate_path, created_ms=now_ms, expires_ms=now_ms + ttl_ms,
    )
