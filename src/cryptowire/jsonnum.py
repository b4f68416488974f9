"""Exact JSON: numbers kept as the digits that were sent, and data checked before it is kept.

orjson, the encoder of every frame, turns an integer past 64 bits into a float when it parses
(``123456789012345678901234567890`` would go out as ``1.2345678901234568e+29``) and cannot
encode one at all. :func:`loads_exact` parses with the standard library instead, keeping such
integers, and every number with a fraction or an exponent (``1.50`` stays ``1.50``), as
``orjson.Fragment`` objects: their text is written back verbatim by :func:`orjson.dumps`, so
no number passes through a float. Postgres NOTIFY payloads (seed 002) and published ``app:``
data both go through it.

:func:`dumps_checked` is the one encoding of a value that is about to take an offset: what
orjson cannot write (nested deeper than :data:`MAX_DEPTH`, a string with a lone surrogate, a
Python value that is not JSON) is refused with a :class:`ValueError` whose message says why,
and never contains the data.

:func:`decimal_str` is the one way the hub writes a ``Decimal`` as text: a plain decimal
string. ``str(Decimal)`` switches to exponent notation for small and large values
(``"5.6385E-9"``, ``"1E+3"``); a client must be able to read money with any decimal parser and
show it as it is, so the hub never writes that.

:func:`number` writes a decimal as a JSON *number* token, digit for digit (the seed dialects
that sent numbers where the native channels carry strings).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

#: The deepest nesting orjson encodes (arrays and objects inside one another).
MAX_DEPTH = 254
#: Integers with fewer digits always fit in 64 bits and stay ``int``; longer ones are kept as
#: their text, which orjson writes back unchanged whatever their size.
_INT_DIGITS = 19


def _int(text: str) -> int | orjson.Fragment:
    return int(text) if len(text.lstrip("-")) < _INT_DIGITS else orjson.Fragment(text)


def _no_constant(text: str) -> None:
    raise ValueError(f"{text} is not JSON")


def loads_exact(text: str | bytes) -> Any:
    """Parse JSON text; numbers that a float or a 64-bit integer would alter stay exact.

    Raises :class:`ValueError` for text that is not JSON (``NaN``, ``Infinity`` and lone
    surrogate escapes included) or is nested deeper than 1024 levels.

    orjson reads the text first, as the guard: it refuses more than 1024 levels without
    recursing, while the standard library's parser recurses in C once per level, bounded only
    by the interpreter's recursion limit, which a dependency of the EVM stack (py_ecc) raises
    to 100,000 on import: far past what the C stack holds (a segfault, not an exception)."""
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from exc
    try:
        return json.loads(text, parse_float=orjson.Fragment, parse_int=_int,
                          parse_constant=_no_constant)
    except RecursionError as exc:  # a recursion limit below orjson's 1024 levels
        raise ValueError("nested too deeply") from exc


def dumps_checked(value: Any) -> bytes:
    """``orjson.dumps(value)``, or a :class:`ValueError` saying why it cannot be encoded."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise ValueError(_reason(str(exc))) from exc


def _reason(error: str) -> str:
    if "Recursion limit" in error:
        return f"nested deeper than {MAX_DEPTH} levels"
    if "surrogates" in error or "UTF-8" in error:
        return "contains a string that is not valid Unicode (a lone surrogate)"
    if "64-bit" in error:
        return "contains an integer beyond 64 bits (send it as JSON text, it is kept exact)"
    return "is not JSON-encodable"


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


#: A JSON number token (RFC 8259): what :func:`number` may emit, nothing else.
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
#: The plain form (no exponent) :func:`number` prefers.
_PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
#: Longest plain rendering of a decimal given in exponent form (beyond it, exponent form).
_PLAIN_MAX_CHARS = 64


def number(value: object) -> orjson.Fragment | None:
    """A decimal string (or ``Decimal``/``int``) as a JSON *number*, digit for digit.

    The seed sent JSON numbers where the native channels carry decimal strings; this emits
    the same digits as a number token (``orjson.Fragment``: serialized verbatim by the one
    ``orjson.dumps`` the broker does), so no value ever goes through float. Plain decimals
    pass as they are (``"66000.180"`` stays ``66000.180``); other finite decimal spellings
    (``"1E+3"``, ``".5"``, ``"+2"``) are normalized through ``Decimal``; anything else
    (``None``, ``NaN``, ``Infinity``, garbage) is ``None``, i.e. JSON ``null``. Only text
    matching the JSON number grammar is ever put into a fragment.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, str | Decimal):
        text = value.strip() if isinstance(value, str) else str(value)
        if not _PLAIN_NUMBER.fullmatch(text):
            try:
                exact = Decimal(text)
            except InvalidOperation:
                return None
            if not exact.is_finite():
                return None
            plain = decimal_str(exact)
            text = plain if len(plain) <= _PLAIN_MAX_CHARS else str(exact)
    else:
        return None
    if not _JSON_NUMBER.fullmatch(text):
        return None
    return orjson.Fragment(text.encode())
