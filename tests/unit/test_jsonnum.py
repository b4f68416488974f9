"""Exact JSON numbers and the checked encoding (``cryptowire.jsonnum``)."""

from __future__ import annotations

import sys
from typing import Any

import orjson
import pytest

from cryptowire.jsonnum import MAX_DEPTH, dumps_checked, loads_exact


def test_numbers_keep_their_digits() -> None:
    text = ('{"big": 123456789012345678901234567890, "neg": -98765432109876543210987, '
            '"u64": 18446744073709551615, "small": 42, "px": 1.50, "e": 1e-400, "z": -0}')
    value = loads_exact(text)
    assert value["small"] == 42 and isinstance(value["small"], int)
    assert orjson.dumps(value) == (
        b'{"big":123456789012345678901234567890,"neg":-98765432109876543210987,'
        b'"u64":18446744073709551615,"small":42,"px":1.50,"e":1e-400,"z":0}')
    assert loads_exact(text.encode()).keys() == value.keys()  # bytes as well as str


def test_no_number_becomes_a_float() -> None:
    def floats(v: Any) -> int:
        if isinstance(v, dict):
            return sum(floats(x) for x in v.values())
        if isinstance(v, list):
            return sum(floats(x) for x in v)
        return isinstance(v, float)

    assert floats(loads_exact('[0.1, {"a": 2.5e-3, "b": [123456789012345678901234567890]}]')) == 0


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", "{nope", "", "[1,]", '"\\ud800"'])
def test_what_is_not_json_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        loads_exact(text)


def test_nesting_beyond_1024_levels_is_a_value_error_whatever_the_recursion_limit() -> None:
    # With the recursion limit py_ecc sets (100,000), the standard library's parser would
    # overflow the C stack here (a segfault): orjson refuses the text first.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 100_000))
    try:
        with pytest.raises(ValueError, match="depth"):
            loads_exact("[" * 200_000 + "]" * 200_000)
    finally:
        sys.setrecursionlimit(limit)


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_dumps_checked_encodes_what_orjson_encodes() -> None:
    assert dumps_checked(nested(MAX_DEPTH)) == b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert dumps_checked(loads_exact('{"n": 123456789012345678901234567890}')) == \
        b'{"n":123456789012345678901234567890}'


@pytest.mark.parametrize(("value", "reason"), [
    (nested(MAX_DEPTH + 1), "nested deeper than 254 levels"),
    ({"s": "ok \ud800 SECRET"}, "not valid Unicode (a lone surrogate)"),
    ({"n": 2**64}, "integer beyond 64 bits"),
    ({"x": object()}, "is not JSON-encodable"),
])
def test_dumps_checked_says_why_and_never_echoes_the_data(value: Any, reason: str) -> None:
    with pytest.raises(ValueError, match="^") as err:
        dumps_checked(value)
    assert reason in str(err.value)
    assert "SECRET" not in str(err.value)
