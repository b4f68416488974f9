"""The REST mirror's filters as SQL (``GET /<channel>s?key=value``), per dialect.

A filter ``key=value`` (``key=eq.value`` too, PostgREST's spelling) keeps the rows whose
payload has ``key`` at top level with that value, compared by the JSON type found there:

========  ===========================  ================================================
type      matches when                 Postgres (``json``)  /  SQLite (JSON1)
========  ===========================  ================================================
string    the text is ``value``        ``->>`` = value      /  ``json_extract`` = value
number    numerically equal            ``numeric`` equality /  integer or REAL equality
boolean   ``true`` / ``false``         ``->>`` = 'true'     /  ``json_type`` = 'true'
null      ``value`` is ``null``        ``json_typeof``      /  ``json_type`` = 'null'
object,   the same JSON value          ``jsonb`` equality   /  minified text equality
array
========  ===========================  ================================================

Postgres casts the payload text to ``json`` (not ``jsonb``: cheaper, and order-keeping) and
guards each typed comparison with ``CASE`` so that no cast runs on a value of another type; a
row whose text holds an escape ``json`` cannot read (``\\u0000``, a UTF-16 surrogate) matches
no filter instead of failing the query. SQLite compares numbers as 64-bit integers or doubles,
which can match a few extra rows past 2**53; the caller re-checks rows with the exact rule
(:func:`cryptowire.sources.pgnotify.row_matches`), so those never reach a client.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from sqlalchemy import Numeric, and_, case, cast, false, func, literal, or_
from sqlalchemy.dialects.postgresql import JSON, JSONB
from sqlalchemy.sql.elements import ColumnElement

from cryptowire.errors import ProtocolError

#: A filter key is a column name of the table that sent the row.
_KEY = re.compile(r"[A-Za-z0-9_]{1,63}")
MAX_FILTERS = 16
_INT64 = 2**63
#: Escapes Postgres' json type refuses to read (``\u0000``, surrogates): such rows never
#: match a filter rather than failing every filtered query of their channel.
_PG_UNREADABLE = r"\\u(0000|[dD][89a-fA-F])"


def check_filters(filters: dict[str, str]) -> dict[str, str]:
    """``filters`` with each value's ``eq.`` prefix removed, or :class:`ProtocolError`."""
    if len(filters) > MAX_FILTERS:
        raise ProtocolError("INVALID_ARGS", f"At most {MAX_FILTERS} filters per query.")
    for key in filters:
        if not _KEY.fullmatch(key):
            raise ProtocolError("INVALID_ARGS", "A filter key is a column name: 1 to 63 "
                                "letters, digits or '_'.")
        value = filters[key]
        if "\x00" in value or not _encodable(value):
            raise ProtocolError("INVALID_ARGS", "A filter value is UTF-8 text without NUL.")
    return {key: value.removeprefix("eq.") for key, value in filters.items()}


def _encodable(value: str) -> bool:
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def _number(value: str) -> Decimal | None:
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _container(value: str) -> bytes | None:
    """``value`` minified when it is a JSON object or array."""
    if not value.startswith(("{", "[")):
        return None
    try:
        return orjson.dumps(orjson.loads(value))
    except orjson.JSONDecodeError:
        return None


def filter_clause(dialect: str, payload: Any, key: str, value: str) -> ColumnElement[bool]:
    """The WHERE clause for one checked filter on the ``payload`` text column."""
    if dialect == "postgresql":
        return _postgres(payload, key, value)
    if dialect == "sqlite":
        return _sqlite(payload, key, value)
    raise ProtocolError("INVALID_ARGS", f"Mirror filters are not supported on {dialect}.")


def _postgres(payload: Any, key: str, value: str) -> ColumnElement[bool]:
    field = cast(payload, JSON)[key]
    kind = func.json_typeof(field)
    branches = [and_(kind == "string", field.astext == value)]
    if value == "null":
        branches.append(kind == "null")
    if value.lower() in ("true", "false"):
        branches.append(and_(kind == "boolean", field.astext == value.lower()))
    number = _number(value)
    if number is not None:
        branches.append(case((kind == "number", cast(field.astext, Numeric)))
                        == literal(number, Numeric))
    container = _container(value)
    if container is not None:
        branches.append(case((kind.in_(("object", "array")), cast(field, JSONB)))
                        == cast(literal(container.decode()), JSONB))
    # CASE, not AND: only CASE keeps Postgres from reading the JSON of an unreadable row.
    return case((payload.regexp_match(_PG_UNREADABLE), false()), else_=or_(*branches))


def _sqlite(payload: Any, key: str, value: str) -> ColumnElement[bool]:
    path = f'$."{key}"'
    kind = func.json_type(payload, path)
    field = func.json_extract(payload, path)
    branches = [and_(kind == "text", field == value)]
    if value == "null":
        branches.append(kind == "null")
    if value.lower() in ("true", "false"):
        branches.append(kind == value.lower())
    number = _number(value)
    if number is not None:
        exact = number == number.to_integral_value() and abs(number) < _INT64
        wanted: int | float = int(number) if exact else float(number)
        branches.append(and_(kind.in_(("integer", "real")), field == wanted))
    container = _container(value)
    if container is not None:
        branches.append(and_(kind.in_(("object", "array")),
                             field == func.json(container.decode())))
    return or_(*branches)
