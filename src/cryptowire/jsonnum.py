"""The one way the hub writes a ``Decimal`` as text: a plain decimal string.

PROTOCOLS.md sends money and amounts as decimal strings, and a client must be able to read
them with any decimal parser and show them as they are: ``str(Decimal)`` is not that (it
switches to exponent notation for small and large values: ``"5.6385E-9"``, ``"1E+3"``).
:func:`decimal_str` never does: ``format(value, "f")``, exact, with every digit.
"""

from __future__ import annotations

from decimal import Decimal


def decimal_str(value: Decimal | int, *, normalize: bool = False) -> str:
    """``value`` as a plain decimal string, never exponent notation, exact.

    The scale is kept (``Decimal("66000.00")`` -> ``"66000.00"``) unless ``normalize``
    strips trailing zeros (``Decimal("1.500")`` -> ``"1.5"``, ``Decimal("1E+3")`` ->
    ``"1000"``; unlike ``Decimal.normalize()``, without rounding to the context
    precision). Zero has no sign. ``NaN`` and infinities are not numbers: ``ValueError``.
    """
    if isinstance(value, int):
        return str(value)
    if not value.is_finite():
        raise ValueError(f"{value} is not a finite decimal")
    if value.is_zero():
        value = value.copy_abs()
    text = format(value, "f")
    if normalize and "." in text:  # by text: Decimal.normalize() rounds to the context
        text = text.rstrip("0").rstrip(".")
    return text
