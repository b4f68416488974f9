"""Validation is a full match: ``$`` also matches before a trailing newline, so a pattern
ending in ``$`` used with ``match`` accepts ``"BTCUSDT\\n"`` (issue 10, item 19).

Two checks: every validator refuses its valid input with a newline appended, and no regular
expression literal in ``src/`` is anchored with ``$`` (validators use ``fullmatch``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from cryptowire.core import channels
from cryptowire.core.channels import ChannelGrammar
from cryptowire.errors import ChannelError, ProtocolError
from cryptowire.rfq.quote import QuoteError, parse_currency
from cryptowire.server.web import content_security_policy
from cryptowire.sources.evm.tokens import address_of
from cryptowire.store.keys import parse_prefix

SRC = Path(channels.__file__).resolve().parents[1]
PEPE = "0x6982508145454Ce325dDbE47a25d4ec3d2311933"


@pytest.mark.parametrize("arg", [
    "ticker:BTCUSDT\n@linear", "ticker:BTCUSDT\n@spot", "trade:ETHUSDT\n@spot",
    "kline:1h:BTCUSDT\n@linear", f"swap:eth:{PEPE}\n@x",
])
def test_a_channel_with_a_newline_inside_is_refused(arg: str) -> None:
    with pytest.raises(ChannelError):
        ChannelGrammar({"eth": 1}).parse(arg)


@pytest.mark.parametrize("arg", [
    "ticker:BTCUSDT\n", "tickers.BTCUSDT\n", f"swap:eth:{PEPE}\n", "pg:fill_event\n",
    "app:signals\n", "service:news\n",
])
def test_a_trailing_newline_never_reaches_the_canonical_name(arg: str) -> None:
    # Surrounding whitespace is trimmed (documented); the canonical name has none.
    name = ChannelGrammar({"eth": 1}).parse(arg).name
    assert "\n" not in name


@pytest.mark.parametrize(("pattern", "valid"), [
    (channels._SYMBOL, "BTCUSDT"), (channels._ADDRESS, PEPE),
    (channels._PG_NAME, "fill_event"), (channels._APP_NAME, "signals"),
])
def test_channel_patterns_refuse_a_trailing_newline(pattern: re.Pattern[str],
                                                    valid: str) -> None:
    assert pattern.fullmatch(valid)
    assert not pattern.fullmatch(valid + "\n")


def test_a_token_address_with_a_newline_is_refused() -> None:
    assert address_of(PEPE) == PEPE.lower()
    with pytest.raises(ProtocolError, match="40-hex-digit"):
        address_of(PEPE + "\n")


def test_a_currency_with_a_newline_or_non_ascii_is_refused() -> None:
    assert parse_currency("btc", "currFrom") == "BTC"
    for bad in ("BTC\n", "ÄÖ", "١٢"):
        with pytest.raises(QuoteError):
            parse_currency(bad, "currFrom")


def test_a_host_with_a_newline_is_not_echoed_into_the_csp() -> None:
    assert "ws://example.com:8000" in content_security_policy("example.com:8000")
    assert "ws://" not in content_security_policy("example.com:8000\n")
    assert "ws://" not in content_security_policy("example.com:٨٠٠٠")


def test_an_api_key_with_a_newline_is_not_parsed() -> None:
    key = "cw_abcdefgh_" + "A" * 43
    assert parse_prefix(key) == "abcdefgh"
    assert parse_prefix(key + "\n") is None


def _pattern_literals() -> list[tuple[str, int, str]]:
    found: list[tuple[str, int, str]] = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "re" \
                    and node.args and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                found.append((str(path.relative_to(SRC)), node.lineno, node.args[0].value))
    return found


def test_no_pattern_in_src_is_anchored_with_dollar() -> None:
    literals = _pattern_literals()
    assert len(literals) >= 8  # the scan sees the validators
    # An unescaped $ at the end of the pattern or of an alternative.
    anchored = [(f, n, p) for f, n, p in literals if re.search(r"(?<!\\)\$(\||\)|$)", p)]
    assert anchored == [], "use fullmatch (or \\Z), not $: " + repr(anchored)
