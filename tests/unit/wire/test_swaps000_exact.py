"""The seed 000 dialect's JSON numbers are exact: written from the decimal strings, never
through a float, in the event lines and in the batched messages."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson
import pytest

from cryptowire.events import Event, Publication
from cryptowire.wire import swaps000
from cryptowire.wire.frames import text_frame

TOKEN = "0x" + "33" * 20
SWAP: dict[str, Any] = {"chain": 1, "pair": "0xp", "token": TOKEN, "symbol": "BIG", "side": "buy",
        "token_amount": "123456789012345678.123456789012345678",
        "paired_amount": "98765432109876543210",
        "price_in_paired": "0.000000000000000001234567890123",
        "taker": "0xtaker", "tx_hash": "0xaa", "log_index": 1, "block": 5, "time": 1}
UINT256_MAX_18 = ("115792089237316195423570985008687907853269984665640564039457."
                  "584007913129639935")
BURN: dict[str, Any] = {"chain": 56, "token": TOKEN, "symbol": "BIG", "amount": UINT256_MAX_18,
        "from": "0xf", "to": "0xdead", "tx_hash": "0xcc", "log_index": 0, "block": 1,
        "time": 1}


def _pub(channel: str, data: dict[str, Any]) -> Publication:
    return Publication.from_event(Event(channel=channel, data=data), "e", 1)


def _line(channel: str, data: dict[str, Any]) -> bytes:
    line = swaps000.event_line(_pub(channel, data))
    assert line is not None
    return line


def _no_constant(text: str) -> None:
    raise ValueError(text)


def _strict(raw: bytes) -> Any:
    """``raw`` decoded as strict JSON with exact numbers (no NaN, no Infinity, no float)."""
    return json.loads(raw, parse_float=Decimal, parse_constant=_no_constant)


def test_swap_amounts_keep_every_digit_in_the_line_and_the_batch() -> None:
    line = _line("swap:eth", SWAP)
    (msg,) = swaps000.batch_messages([line])
    for raw in (line, msg):
        assert b'"purchased":123456789012345678.123456789012345678,' in raw
        assert b'"token_price":0.000000000000000001234567890123,' in raw
        assert b'"swapped":98765432109876543210,' in raw
    (tx,) = _strict(msg)["data"]["events"][TOKEN]["txs"]
    assert tx == {"txHash": "0xaa", "purchased": Decimal(SWAP["token_amount"]),
                  "token_price": Decimal(SWAP["price_in_paired"]),
                  "swapped": 98765432109876543210, "taker": "0xtaker"}
    # What the socket gets: the same bytes, framed.
    assert swaps000.Swaps000Encoder().batch(line) == text_frame(msg)


def test_burn_amount_keeps_every_digit() -> None:
    (msg,) = swaps000.batch_messages([_line("burn:bsc", BURN)])
    assert f'"amount":{UINT256_MAX_18},'.encode() in msg
    (tx,) = _strict(msg)["data"]["events"][TOKEN]["txs"]
    assert tx["amount"] == Decimal(UINT256_MAX_18)


@pytest.mark.parametrize(("text", "token"), [
    ("1.2E-7", b"0.00000012"),
    ("1.234567890123E-18", b"0.000000000000000001234567890123"),
    ("1E+3", b"1000"),
    ("+2", b"2"),
    (".5", b"0.5"),
    (" 7 ", b"7"),
    ("-0.000001", b"-0.000001"),
    ("1E-100", b"1E-100"),  # past 64 characters plain: the exponent form, still exact
    ("NaN", b"null"),
    ("-Infinity", b"null"),
    ("not a number", b"null"),
])
def test_other_spellings_become_valid_json_number_tokens(text: str, token: bytes) -> None:
    (msg,) = swaps000.batch_messages([_line("burn:bsc", {**BURN, "amount": text})])
    assert b'"amount":' + token + b"," in msg
    _strict(msg)  # valid strict JSON


def test_plain_values_are_byte_compatible_with_the_seeds_numbers() -> None:
    # Values a float holds exactly come out as orjson wrote them from floats before.
    data = {**SWAP, "token_amount": "1234.567", "paired_amount": "0.5",
            "price_in_paired": "0.25"}
    lines = [_line("swap:eth", data), _line("swap:eth", {**data, "tx_hash": "0xbb"}),
             _line("burn:bsc", {**BURN, "amount": "2"})]
    assert swaps000.batch_messages(lines) == [
        orjson.dumps({"data": {"chain": 1, "events": {TOKEN: {
            "symbol": "BIG", "address": TOKEN, "txs": [
                {"txHash": h, "purchased": 1234.567, "token_price": 0.25, "swapped": 0.5,
                 "taker": "0xtaker"} for h in ("0xaa", "0xbb")]}}}}),
        orjson.dumps({"data": {"chain": 56, "events": {TOKEN: {
            "symbol": "BIG", "address": TOKEN, "txs": [
                {"txHash": "0xcc", "amount": 2, "from": "0xf", "to": "0xdead"}]}}}}),
    ]


def test_the_batch_splices_the_lines_tx_bytes_without_decoding_them() -> None:
    # A hand-written line whose numbers a float would round: they pass byte for byte.
    tx = b'{"txHash":"0x1","amount":0.1000000000000000000000000000001,"from":"a","to":"b"}'
    line = b'{"chain":1,"token":"0xt","symbol":"S","tx":' + tx + b"}\n"
    (msg,) = swaps000.batch_messages([line])
    assert msg == (b'{"data":{"chain":1,"events":{"0xt":{"symbol":"S","address":"0xt",'
                   b'"txs":[' + tx + b"]}}}}")


def test_a_symbol_that_looks_like_the_tx_key_is_still_a_symbol() -> None:
    odd = '",\\"tx\\":{},"tx":'
    (msg,) = swaps000.batch_messages([_line("swap:eth", {**SWAP, "symbol": odd})])
    entry = _strict(msg)["data"]["events"][TOKEN]
    assert entry["symbol"] == odd and len(entry["txs"]) == 1


@pytest.mark.parametrize("line", [
    b'{"chain":1,"token":"0xt","symbol":"S","tx":{"amount":NaN}}',
    b'{"chain":1,"token":"0xt","symbol":"S","tx":{"amount":Infinity}}',
    b'{"chain":1,"token":"0xt","symbol":"S","tx":{"amount":1},"x":2}',
    b'{"chain":1,"token":"0xt","symbol":"S","tx":[1]}',
    b'{"chain":1,"token":"0xt","symbol":"S","tx":{"amount":1.}}',
    b'{"chain":true,"token":"0xt","symbol":"S","tx":{}}',
    b'{"chain":1,"token":"0xt","tx":{}}',
    b'{"chain":1,"token":"0xt","symbol":"S","tx":{"a":"\xff"}}',
])
def test_lines_the_batch_cannot_splice_safely_are_left_out(line: bytes) -> None:
    assert swaps000.batch_messages([line]) == []


def test_the_encoder_merges_its_own_lines_from_the_parts_it_kept(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(swaps000, "KNOWN_LINES", 2)
    enc = swaps000.Swaps000Encoder()
    lines = [enc.frame_publication(_pub("swap:eth", {**SWAP, "tx_hash": f"0x{i}"}))
             for i in range(3)]
    assert all(lines) and lines[0] == _line("swap:eth", {**SWAP, "tx_hash": "0x0"})
    assert len(enc._known) == 2  # bounded: the oldest line was forgotten...
    data = b"".join(ln for ln in lines if ln)
    (msg,) = swaps000.batch_messages([ln for ln in lines if ln])
    assert enc.batch(data) == text_frame(msg)  # ...and is parsed instead: same bytes
    assert msg.count(b'"purchased":123456789012345678.123456789012345678,') == 3
