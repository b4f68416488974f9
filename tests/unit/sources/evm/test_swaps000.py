"""The seed 000 dialect's frames from literal publications, and the mongoexport reader."""

from __future__ import annotations

import orjson

from cryptowire.cli.tokens import read_mongoexport
from cryptowire.events import Event, Publication
from cryptowire.wire import swaps000
from cryptowire.wire.frames import text_frame

SWAP = {"chain": 1, "pair": "0xp", "token": "0xt", "symbol": "PEPE", "side": "buy",
        "token_amount": "1234.567", "paired_amount": "0.5", "price_in_paired": "0.0000012",
        "taker": "0xtaker", "tx_hash": "0xaa", "log_index": 1, "block": 5, "time": 1}


def _pub(channel: str, data: dict, type_: str = "update") -> Publication:
    return Publication.from_event(Event(channel=channel, data=data, type=type_), "e", 1)


def test_buys_batched_per_chain_with_json_numbers() -> None:
    enc = swaps000.Swaps000Encoder()
    lines = [enc.frame_publication(_pub("swap:eth", SWAP)),
             enc.frame_publication(_pub("swap:eth", {**SWAP, "tx_hash": "0xbb"}))]
    assert enc.frame_publication(_pub("swap:eth", {**SWAP, "side": "sell"})) is None
    assert enc.frame_publication(_pub("swap:eth", SWAP, "removed")) is None
    (msg,) = swaps000.batch_messages([ln for ln in lines if ln])
    assert orjson.loads(msg) == {"data": {"chain": 1, "events": {"0xt": {
        "symbol": "PEPE", "address": "0xt", "txs": [
            {"txHash": "0xaa", "purchased": 1234.567, "token_price": 1.2e-06, "swapped": 0.5,
             "taker": "0xtaker"},
            {"txHash": "0xbb", "purchased": 1234.567, "token_price": 1.2e-06, "swapped": 0.5,
             "taker": "0xtaker"}]}}}}
    framed = enc.batch(b"".join(ln for ln in lines if ln))
    assert framed is enc.batch(b"".join(ln for ln in lines if ln))  # shared across sessions


def test_burn_line_and_replies() -> None:
    burn = {"chain": 56, "token": "0xt", "symbol": "X", "amount": "2", "from": "0xf",
            "to": "0xdead", "tx_hash": "0xcc", "log_index": 0, "block": 1, "time": 1}
    line = swaps000.event_line(_pub("burn:bsc", burn))
    assert line is not None
    (msg,) = swaps000.batch_messages([line])
    assert orjson.loads(msg)["data"]["events"]["0xt"]["txs"] == [
        {"txHash": "0xcc", "amount": 2, "from": "0xf", "to": "0xdead"}]
    assert orjson.loads(swaps000.removed(True)) == {"status": "removed"}
    assert orjson.loads(swaps000.add_failed("Pair not found")) == \
        {"status": 400, "message": "Pair not found"}


def test_mongoexport_lines_and_array() -> None:
    lines = ('{"_id":{"$oid":"1"},"chain":{"$numberInt":"1"},"decimals":{"$numberLong":"18"},'
             '"address":"0xa","isToken0":true}\n\n{"chain":56,"address":"0xb"}\n')
    assert read_mongoexport(lines) == [
        {"chain": 1, "decimals": 18, "address": "0xa", "isToken0": True},
        {"chain": 56, "address": "0xb"}]
    assert read_mongoexport('[{"chain": 1, "address": "0xc"}]') == [{"chain": 1, "address": "0xc"}]


def test_mongoexport_numbers_never_become_floats() -> None:
    from decimal import Decimal

    docs = read_mongoexport(
        '{"chain": {"$numberDouble": "56.0"}, "decimals": {"$numberDecimal": "18"}, '
        '"threshold": {"$numberDecimal": "0.000000000000000001234567890123"}, "w": 2.50}')
    assert docs == [{"chain": 56, "decimals": 18,
                     "threshold": Decimal("0.000000000000000001234567890123"),
                     "w": Decimal("2.50")}]
    assert type(docs[0]["chain"]) is int and type(docs[0]["decimals"]) is int


def test_batch_never_raises_on_bytes_that_are_not_event_lines() -> None:
    enc = swaps000.Swaps000Encoder()
    line = enc.frame_publication(_pub("swap:eth", SWAP))
    assert line is not None
    # A whole frame (header bytes + JSON), garbage, JSON of the wrong shape: all left out.
    frame = text_frame(swaps000.error(400, "Send text frames."))
    assert enc.batch(frame) == b""
    assert enc.batch(b"\x81\xff\x00garbage\n[1,2]\n{\"chain\":\"x\"}\n") == b""
    out = enc.batch(b"not json\n" + line + b"\x89\x00\n")
    (msg,) = swaps000.batch_messages([line])
    assert out == text_frame(msg)
