"""OKX book checks: the checksum against the documentation's examples and the ``books``
fixtures of ``tests/fixtures/okx``; the ``seqId``/``prevSeqId`` rule on the same fixtures."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import pytest

from cryptowire.books import BookError, OrderBook
from cryptowire.sources.venues.okx_book import check, checksum, checksum_string, sequence_gap

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "okx"
INSTS = ("swap", "spot")


def messages(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines()]


def two(levels: list[list[str]]) -> list[list[str]]:
    return [level[:2] for level in levels]  # OKX levels: [px, sz, "0", orders]


def replay(msgs: list[dict[str, Any]]) -> list[tuple[OrderBook, dict[str, Any]]]:
    """The book after each message, merged as the documentation says (size 0 deletes)."""
    book, out = OrderBook(), []
    for msg in msgs:
        data = msg["data"][0]
        if msg["action"] == "snapshot":
            book.snapshot(two(data["bids"]), two(data["asks"]))
        else:
            book.apply(two(data["bids"]), two(data["asks"]))
        out.append((book.copy(), data))
    return out


# The two "Check string" examples of the documentation (Calculate Checksum). The doc gives
# no CRC value for them; the signed values are zlib's CRC32 of those strings.
DOC_1 = ([["3366.1", "7", "0", "3"], ["3366", "6", "3", "4"]],
         [["3366.8", "9", "10", "3"], ["3368", "8", "3", "4"]])
DOC_2 = ([["3366.1", "7", "0", "3"]],
         [["3366.8", "9", "10", "3"], ["3368", "8", "3", "4"], ["3372", "8", "3", "4"]])


def test_the_documented_check_strings() -> None:
    assert checksum_string(*DOC_1) == "3366.1:7:3366.8:9:3366:6:3368:8"
    assert checksum_string(*DOC_2) == "3366.1:7:3366.8:9:3368:8:3372:8"
    assert checksum(*DOC_1) == -1881014294  # zlib.crc32 3_413_953_002 as signed 32-bit
    assert checksum(*DOC_2) == 831078360
    assert checksum(*DOC_1) == zlib.crc32(b"3366.1:7:3366.8:9:3366:6:3368:8") - (1 << 32)


def test_only_the_top_25_levels_count_and_strings_are_kept_as_sent() -> None:
    bids = [[str(1000 - i), "1"] for i in range(30)]
    asks = [[str(1001 + i), "2"] for i in range(30)]
    text = checksum_string(bids, asks)
    assert text.count(":") == 99 and text.startswith("1000:1:1001:2:999:1")
    assert "975:" not in text and "1026:" not in text
    deeper = [*bids[:25], ["1", "999"]]
    assert checksum(deeper, asks) == checksum(bids, asks)
    assert checksum([["3366.0", "7"]], []) != checksum([["3366", "7"]], [])
    assert checksum([], []) == 0 and checksum_string([], []) == ""


@pytest.mark.parametrize("inst", INSTS)
def test_every_fixture_checksum_matches_the_merged_book(inst: str) -> None:
    states = replay(messages(f"{inst}-books-checksum.jsonl"))
    assert len(states) == 31
    for book, data in states:
        top_bids, top_asks = book.levels("bids", 25), book.levels("asks", 25)
        assert checksum(top_bids, top_asks) == data["checksum"]
        assert check(book.levels("bids"), book.levels("asks"), data["checksum"]) is True
        assert not book.crossed() and len(book) == 800


@pytest.mark.parametrize("inst", INSTS)
def test_a_mutated_level_fails_the_checksum(inst: str) -> None:
    msgs = messages(f"{inst}-books-checksum.jsonl")
    data = msgs[5]["data"][0]
    side = "asks" if data["asks"] else "bids"
    price, size = data[side][0][0], data[side][0][1]
    data[side][0][1] = "0" if size != "0" else "1"  # one level of one update, changed
    book, got = replay(msgs)[5]
    assert check(book.levels("bids"), book.levels("asks"), got["checksum"]) is False
    # the level changed is one of the top 25 (before or after): the checksum had to see it
    before = replay(messages(f"{inst}-books-checksum.jsonl"))[5][0]
    tops = {lv[0] for b in (before, book) for lv in b.levels("bids", 25) + b.levels("asks", 25)}
    assert price in tops


@pytest.mark.parametrize("inst", INSTS)
def test_todays_messages_carry_checksum_0_which_is_not_checked(inst: str) -> None:
    for book, data in replay(messages(f"{inst}-books.jsonl")):
        assert data["checksum"] == 0
        assert check(book.levels("bids"), book.levels("asks"), 0) is None


@pytest.mark.parametrize("inst", INSTS)
def test_the_fixture_sequence_chains_by_prev_seq_id(inst: str) -> None:
    last = None
    for msg in messages(f"{inst}-books.jsonl"):
        data = msg["data"][0]
        assert sequence_gap(last, data) is None
        if not data["asks"] and not data["bids"]:  # the documented 60 s keep-alive
            assert data["prevSeqId"] == data["seqId"] == last
        last = data["seqId"]


@pytest.mark.parametrize("inst", INSTS)
def test_a_missing_update_breaks_the_chain(inst: str) -> None:
    last, breaks = None, []
    for index, msg in enumerate(messages(f"{inst}-books-gap.jsonl")):
        reason = sequence_gap(last, msg["data"][0])
        if reason is not None:
            breaks.append((index, reason))
        last = msg["data"][0]["seqId"]
    assert [index for index, _ in breaks] == [21]
    assert "does not follow" in breaks[0][1]


@pytest.mark.parametrize("inst", INSTS)
def test_the_rest_snapshot_is_the_stream_book_at_its_seq_id(inst: str) -> None:
    rest = json.loads((FIXTURES / f"{inst}-books-rest.json").read_text())
    assert rest["code"] == "0" and rest["msg"] == ""
    snap = rest["data"][0]
    msgs = messages(f"{inst}-books.jsonl")
    states = replay(msgs)
    seqs = [m["data"][0]["seqId"] for m in msgs]
    at = seqs.index(snap["seqId"])
    book = states[at][0]
    assert book.levels("bids") == two(snap["bids"]) and book.levels("asks") == two(snap["asks"])
    # the changelog's REST procedure: the first event kept has prevSeqId <= seqId < its seqId
    first = next(m["data"][0] for m in msgs if m["data"][0]["seqId"] > snap["seqId"])
    assert first["prevSeqId"] <= snap["seqId"] < first["seqId"]


def test_the_documented_sequence_cases() -> None:
    assert sequence_gap(None, {"prevSeqId": -1, "seqId": 10}) is None  # snapshot
    assert sequence_gap(10, {"prevSeqId": 10, "seqId": 15}) is None
    assert sequence_gap(15, {"prevSeqId": 15, "seqId": 15}) is None  # no update
    assert sequence_gap(15, {"prevSeqId": 15, "seqId": 3}) is None  # reset (maintenance)
    assert sequence_gap(3, {"prevSeqId": 3, "seqId": 5}) is None
    assert sequence_gap(5, {"prevSeqId": 4, "seqId": 9}) == "prevSeqId=4 does not follow seqId=5"
    assert sequence_gap(None, {"prevSeqId": 4, "seqId": 9}) is not None
    assert sequence_gap(5, {"prevSeqId": "5", "seqId": 9}) is not None
    assert sequence_gap(5, {"prevSeqId": True, "seqId": 9}) is not None


def test_levels_that_are_not_strings_are_refused() -> None:
    with pytest.raises(BookError):
        checksum([[97250.1, "1"]], [])  # type: ignore[list-item]
    with pytest.raises(BookError):
        checksum([["97250.1"]], [])
