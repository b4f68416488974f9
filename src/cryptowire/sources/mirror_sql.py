"""The REST mirror's filters as SQL (``GET /<channel>s?key=value``), per dialect.

A filter ``key=value`` (``key=eq.value`` too, PostgREST's spelling) keeps the rows whose
payload has ``key`` at top level with that value, compared by the JSON type found there:

========  ===========================  ================================================
type      matches when                 Postgres (``json``)  /  SQLite (JSON1)
========  ===========================  ================================================
string    the text is ``value``        ``->>`` = value      /  ``json_extract`` = value
number    numerically equal            ``->>``::numeric     /  integer or REAL equality
boolean   ``true`` / ``false``         ``->>`` = 'true'     /  ``json_type`` = 'true'
null      ``value`` is ``null``        ``->>`` IS NULL, key /  ``json_type`` = 'null'
object,   the same JSON value          ``jsonb`` equality   /  minified text equality
array
========  ===========================  ================================================

On Postgres each filtered field is read once per row (``payload::json ->> key``, in a
subquery fenced with ``OFFSET 0`` so it is not re-read per use) and compared by ``CASE``
branches that cast only text of the cast's shape. A row whose text holds an escape ``json``
cannot read (``\\u0000``, a UTF-16 surrogate) matches no filter instead of failing the query.
Some branches may let through a row that only looks like a match (the string ``"1.50"`` for
``1.5``; on SQLite, numbers past 2**53 compared as doubles): the caller re-checks the rows it
gets with the exact rule (:func:`cryptowire.sources.pgnotify.row_matches`), so those never
reach a client.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from sqlalchemy import (
    Numeric,
    Select,
    Table,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    or_,
    select,
    true,
)
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
#: RFC 8259's number: what may be cast to numeric.
_JSON_NUMBER = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$"


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


def mirror_select(dialect: str, table: Table, channel: str, filters: dict[str, str],
                  *, max_scan: int, limit: int, before: int | None = None) -> Select[Any]:
    """``SELECT id, payload`` of the newest ``limit`` rows of ``channel`` below id ``before``
    among its newest ``max_scan``, matching the checked ``filters``, newest first."""
    c = table.c
    # The scan window: ids from the max_scan-th newest row of the channel on (index only).
    floor = (select(c.id).where(c.channel == channel).order_by(c.id.desc())
             .offset(max_scan - 1).limit(1).scalar_subquery())
    where = [c.channel == channel, c.id >= func.coalesce(floor, literal(0))]
    if before is not None:
        where.append(c.id < before)
    if dialect == "postgresql" and filters:
        return _postgres(table, where, filters, limit)
    if dialect != "sqlite" and filters:
        raise ProtocolError("INVALID_ARGS", f"Mirror filters are not supported on {dialect}.")
    where += [_sqlite(c.payload, key, value) for key, value in filters.items()]
    return select(c.id, c.payload).where(*where).order_by(c.id.desc()).limit(limit)


def _postgres(table: Table, where: list[Any], filters: dict[str, str],
              limit: int) -> Select[Any]:
    """Each filter's field is read once per row (``->>`` parses the row's JSON) in a fenced
    subquery (``OFFSET 0``: not flattened, so not re-read per use), then compared by CASE
    branches that cast only what has the shape of the cast's input."""
    c = table.c
    # A row with an escape json cannot read gives NULL fields (strpos first: it is cheap).
    readable = case((func.strpos(c.payload, "\\u") == 0, true()),
                    else_=~c.payload.regexp_match(_PG_UNREADABLE))
    fields = [case((readable, cast(c.payload, JSON)[key].astext)).label(f"f{i}")
              for i, key in enumerate(filters)]
    inner = (select(c.id, c.payload, readable.label("readable"), *fields).where(*where)
             .order_by(c.id.desc()).offset(0).subquery("window"))
    conditions: list[ColumnElement[bool]] = [inner.c.readable]
    for i, (key, value) in enumerate(filters.items()):
        conditions.append(_postgres_match(inner.c.payload, inner.c[f"f{i}"], key, value))
    return (select(inner.c.id, inner.c.payload)
            .where(case((inner.c.readable, and_(*conditions)), else_=false()))
            .order_by(inner.c.id.desc()).limit(limit))


def _postgres_match(payload: Any, text: Any, key: str, value: str) -> ColumnElement[bool]:
    """``text`` is the field's ``->>``: a string's characters, a number's spelling,
    ``true``/``false``, an object's JSON, or NULL (JSON null, or no such key). Equal text
    is a match of every type; the other branches may let a string through that looks like
    the value (``"1.50"`` for ``1.5``), which the exact re-check then drops."""
    whens: list[tuple[Any, Any]] = [(text == value, true())]
    number = _number(value)
    if number is not None:
        whens.append((text.regexp_match(_JSON_NUMBER), cast(text, Numeric) == number))
    if value.lower() in ("true", "false") and value != value.lower():
        whens.append((text == value.lower(), true()))
    container = _container(value)
    if container is not None:
        kind = func.json_typeof(cast(payload, JSON)[key])
        whens.append((func.left(text, 1).in_(("{", "[")),
                      case((kind.in_(("object", "array")),
                            cast(text, JSONB) == cast(literal(container.decode()), JSONB)),
                           else_=false())))
    if value == "null":  # JSON null, not a missing key
        whens.append((text.is_(None), cast(payload, JSON)[key].is_not(None)))
    return case(*whens, else_=false())


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
        # SQLite's json_extract reads a JSON fraction as a double, so the index-side test
        # can only be a double one; rows it passes are re-checked exactly (row_matches),
        # and equal decimals round to the same double, so no exact match is lost here.
        wanted: int | float = int(number) if exact else float(number)
        branches.append(and_(kind.in_(("integer", "real")), field == wanted))
    container = _container(value)
    if container is not None:
        branches.append(and_(kind.in_(("object", "array")),
                             field == func.json(container.decode())))
    return or_(*branches)
