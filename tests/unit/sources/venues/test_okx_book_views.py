"""OKX ``books`` -> ``book:<depth>`` publications: at every step, a client that applies the
published snapshot and deltas holds exactly the reference book (the fixture merged naively,
cut at the depth, sizes in base units); breaks (sequence, checksum, crossed, malformed, an
update before any snapshot) publish nothing wrong."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cryptowire.books import OrderBook
from cryptowire.sources.exchange.codec import BookBreak, BookChange
from cryptowire.sources.venues.okx.book import OkxBook
from cryptowire.sources.venues.okx.instruments import Instrument
from cryptowire.sources.venues.okx.protocol import Push, parse_frame

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "okx"
INSTS = {
    "swap": Instrument("BTCUSDT", "BTC-USDT-SWAP", "okx", "live", Decimal("0.01")),
    "spot": Instrument("BTCUSDT", "BTC-USDT", "okx-spot", "live"),
}
DEPTHS = (1, 5, 50, 400)


def load(name: str) -> list[Push]:
    out = []
    for line in (FIXTURES / name).read_text().splitlines():
        frame = parse_frame(line)
        assert isinstance(frame, Push)
        out.append(frame)
    return out


def reference(pushes: list[Push], inst: Instrument, depth: int) -> list[dict[str, Any]]:
    """The venue's book after each push, merged level by level (the documented rule) with
    plain dicts, cut at ``depth``, sizes in base units."""
    book: dict[str, dict[Decimal, tuple[str, str]]] = {"bids": {}, "asks": {}}
    out = []
    for push in pushes:
        data = push.data[0]
        if push.action == "snapshot":
            book = {"bids": {}, "asks": {}}
        for side in ("bids", "asks"):
            for price, size, *_ in data[side]:
                if Decimal(size) == 0:
                    book[side].pop(Decimal(price), None)
                else:
                    book[side][Decimal(price)] = (price, size)
        out.append({side: [[book[side][k][0], _base(book[side][k][1], inst)]
                           for k in sorted(book[side], reverse=side == "bids")[:depth]]
                    for side in ("bids", "asks")})
    return out


def _base(size: str, inst: Instrument) -> str:
    return size if inst.ct_val is None else format(Decimal(size) * inst.ct_val, "f")


class Client:
    """A subscriber's local book per depth, fed the publications."""

    def __init__(self) -> None:
        self.books: dict[int, OrderBook] = {}
        self.seq: dict[int, int] = {}

    def feed(self, changes: dict[int, BookChange]) -> None:
        for depth, change in changes.items():
            data = change.data
            if change.type == "snapshot":
                self.books[depth] = OrderBook()
                self.books[depth].snapshot(data["bids"], data["asks"])
            else:
                self.books[depth].apply(data["bids"], data["asks"])
            self.seq[depth] = data["venueSeq"]

    def view(self, depth: int) -> dict[str, list[list[str]]]:
        book = self.books[depth]
        return {"bids": book.levels("bids"), "asks": book.levels("asks")}


@pytest.mark.parametrize("inst", ["swap", "spot"])
@pytest.mark.parametrize("variant", ["books", "books-checksum"])
def test_cut_views_equal_the_reference_at_every_step(inst: str, variant: str) -> None:
    pushes = load(f"{inst}-books.jsonl" if variant == "books" else f"{inst}-books-checksum.jsonl")
    refs = {d: reference(pushes, INSTS[inst], d) for d in DEPTHS}
    book, client = OkxBook(INSTS[inst], DEPTHS), Client()
    for step, push in enumerate(pushes):
        result = book.apply(push)
        assert isinstance(result, dict), result
        client.feed(result)
        for depth in DEPTHS:
            assert client.view(depth) == refs[depth][step], (step, depth)
            for change in result.values():
                assert change.data["venueSeq"] == push.data[0]["seqId"]
        if step == 0:
            assert set(result) == set(DEPTHS) and len(client.view(400)["bids"]) == 400


def test_deltas_carry_only_the_changes_of_the_cut() -> None:
    pushes = load("swap-books.jsonl")
    book = OkxBook(INSTS["swap"], (1, 400))
    book.apply(pushes[0])
    sizes = []
    for push in pushes[1:]:
        result = book.apply(push)
        assert isinstance(result, dict)
        if 400 in result:
            delta = result[400].data
            sent = len(push.data[0]["bids"]) + len(push.data[0]["asks"])
            assert len(delta["bids"]) + len(delta["asks"]) <= sent + 2  # + cut removals
            sizes.append(sent)
        if not push.data[0]["bids"] and not push.data[0]["asks"]:
            assert result == {}  # the keep-alive changes nothing: nothing published
    assert sizes
    # the top level changed in only some updates: book:1 is not published for every update


def test_a_level_removed_inside_the_cut_brings_the_next_one_in() -> None:
    inst = INSTS["spot"]
    book = OkxBook(inst, (2,))
    snap = Push({"channel": "books", "instId": "BTC-USDT"}, [{
        "bids": [["10", "1", "0", "1"], ["9", "2", "0", "1"], ["8", "3", "0", "1"]],
        "asks": [["11", "1", "0", "1"]], "checksum": 0, "prevSeqId": -1, "seqId": 5}],
        "snapshot")
    first = book.apply(snap)
    assert isinstance(first, dict) and first[2].data["bids"] == [["10", "1"], ["9", "2"]]
    update = Push(snap.arg, [{"bids": [["10", "0", "0", "0"]], "asks": [], "checksum": 0,
                              "prevSeqId": 5, "seqId": 6}], "update")
    result = book.apply(update)
    assert isinstance(result, dict)
    assert result[2].data == {"symbol": "BTCUSDT", "bids": [["10", "0"], ["8", "3"]],
                              "asks": [], "venueSeq": 6}
    better = Push(snap.arg, [{"bids": [["9.5", "7", "0", "1"]], "asks": [], "checksum": 0,
                              "prevSeqId": 6, "seqId": 7}], "update")
    result = book.apply(better)
    assert isinstance(result, dict)
    assert result[2].data["bids"] == [["9.5", "7"], ["8", "0"]]  # 8 pushed out of the cut


@pytest.mark.parametrize("inst", ["swap", "spot"])
def test_a_sequence_break_is_a_gap_and_updates_wait_for_the_next_snapshot(inst: str) -> None:
    pushes = load(f"{inst}-books-gap.jsonl")
    book = OkxBook(INSTS[inst], (50,))
    results = [book.apply(push) for push in pushes]
    breaks = [(i, r) for i, r in enumerate(results) if isinstance(r, BookBreak)]
    assert len(breaks) == 1
    index, brk = breaks[0]
    assert index == 21 and brk.cause == "sequence" and "does not follow" in brk.reason
    assert all(r is None for r in results[index + 1:]) and not book.valid
    again = book.apply(pushes[0])  # a fresh snapshot (re-subscribe) ends the break
    assert isinstance(again, dict) and again[50].type == "snapshot" and book.valid


@pytest.mark.parametrize("inst", ["swap", "spot"])
def test_a_wrong_non_zero_checksum_is_a_break(inst: str) -> None:
    pushes = load(f"{inst}-books-checksum.jsonl")
    bad = copy.deepcopy(pushes[7])
    bad.data[0]["checksum"] = bad.data[0]["checksum"] ^ 1
    book = OkxBook(INSTS[inst], (400,))
    for push in pushes[:7]:
        assert isinstance(book.apply(push), dict)
    result = book.apply(bad)
    assert isinstance(result, BookBreak) and result.cause == "checksum"
    assert book.apply(pushes[8]) is None  # nothing until a snapshot
    # a changed level with the original (now wrong) checksum is caught as well
    book = OkxBook(INSTS[inst], (400,))
    for push in pushes[:7]:
        book.apply(push)
    mutated = copy.deepcopy(pushes[7])
    side = "bids" if mutated.data[0]["bids"] else "asks"
    mutated.data[0][side][0][1] = "123"
    result = book.apply(mutated)
    assert isinstance(result, BookBreak) and result.cause == "checksum"


def test_a_checksum_of_0_is_not_checked() -> None:
    pushes = load("swap-books.jsonl")
    mutated = copy.deepcopy(pushes[3])
    side = "bids" if mutated.data[0]["bids"] else "asks"
    mutated.data[0][side][0][1] = "123"  # a change the checksum would have caught
    book = OkxBook(INSTS["swap"], (5,))
    for push in [*pushes[:3], mutated]:
        assert isinstance(book.apply(push), dict)


def test_other_breaks() -> None:
    pushes = load("spot-books.jsonl")
    book = OkxBook(INSTS["spot"], (5,))
    first = book.apply(pushes[1])
    assert isinstance(first, BookBreak) and first.cause == "no_snapshot"
    assert isinstance(book.apply(pushes[0]), dict)
    crossed = Push(pushes[0].arg, [{"bids": [["999999", "1", "0", "1"]], "asks": [],
                                    "checksum": 0, "prevSeqId": pushes[0].data[0]["seqId"],
                                    "seqId": 1 + pushes[0].data[0]["seqId"]}], "update")
    result = book.apply(crossed)
    assert isinstance(result, BookBreak) and result.cause == "crossed"
    assert isinstance(book.apply(pushes[0]), dict)
    bad = copy.deepcopy(pushes[1])
    bad.data[0]["asks"] = [["1e", "1", "0", "1"]]
    result = book.apply(bad)
    assert isinstance(result, BookBreak) and result.cause == "malformed"
    assert "not a plain decimal" in result.reason
    other = Push({"channel": "books", "instId": "ETH-USDT"}, pushes[0].data, "snapshot")
    assert isinstance(book.apply(other), BookBreak)


def test_a_depth_added_later_gets_the_current_cut_and_then_deltas() -> None:
    pushes = load("swap-books.jsonl")
    refs = reference(pushes, INSTS["swap"], 5)
    book, client = OkxBook(INSTS["swap"]), Client()
    assert book.add_depth(5) is None  # no book yet
    for step, push in enumerate(pushes):
        result = book.apply(push)
        assert isinstance(result, dict)
        if step == 4:
            book.remove_depth(5)
        if step == 9:
            snap = book.add_depth(5)
            assert snap is not None and snap.type == "snapshot"
            result = {5: snap}
        if step >= 9 or step < 4:
            client.feed(result)
            assert client.view(5) == refs[step], step


def test_reset_forgets_the_book() -> None:
    pushes = load("spot-books.jsonl")
    book = OkxBook(INSTS["spot"], (5,))
    book.apply(pushes[0])
    book.reset()
    result = book.apply(pushes[1])
    assert isinstance(result, BookBreak) and result.cause == "no_snapshot"


def test_fixture_sizes_are_converted_exactly() -> None:
    push = load("swap-books.jsonl")[0]
    result = OkxBook(INSTS["swap"], (1,)).apply(push)
    assert isinstance(result, dict)
    best = push.data[0]["asks"][0]
    assert result[1].data["asks"] == [[best[0], format(Decimal(best[1]) / 100, "f")]]
    assert json.dumps(result[1].data).count("E") == 0


@pytest.mark.parametrize("seed", range(6))
def test_random_updates_across_the_cut_ends_equal_a_naive_cut(seed: int) -> None:
    """Small books and depths, updates that insert, resize and delete anywhere (also past
    the cut and on an emptying side): every cut view equals the naive cut at every step."""
    import random

    rng = random.Random(seed)
    inst = INSTS["swap"]
    arg = {"channel": "books", "instId": inst.inst_id}
    depths = (1, 2, 3, 7)
    book, client = OkxBook(inst, depths), Client()
    venue: dict[str, dict[int, str]] = {"bids": {}, "asks": {}}
    seq = 1
    pushes = [Push(arg, [{"bids": [["99", "4", "0", "1"]], "asks": [["101", "2", "0", "1"]],
                          "checksum": 0, "prevSeqId": -1, "seqId": seq}], "snapshot")]
    venue["bids"][99], venue["asks"][101] = "4", "2"
    for _ in range(300):
        data: dict[str, Any] = {"bids": [], "asks": []}
        for _ in range(rng.randint(0, 4)):
            side = rng.choice(["bids", "asks"])
            price = rng.randint(80, 100) if side == "bids" else rng.randint(101, 121)
            size = rng.choice(["0", "0", str(rng.randint(1, 9)), "1.5"])
            if any(lv[0] == str(price) for lv in data[side]):
                continue
            data[side].append([str(price), size, "0", "1"])
            if size == "0":
                venue[side].pop(price, None)
            else:
                venue[side][price] = size
        pushes.append(Push(arg, [{**data, "checksum": 0, "prevSeqId": seq, "seqId": seq + 1}],
                           "update"))
        seq += 1
        pushes[-1].data[0]["expected"] = {
            side: [[str(p), _base(venue[side][p], inst)] for p in sorted(
                venue[side], reverse=side == "bids")] for side in ("bids", "asks")}
    for push in pushes:
        result = book.apply(push)
        assert isinstance(result, dict)
        client.feed(result)
        expected = push.data[0].get("expected")
        if expected is None:
            continue
        for depth in depths:
            assert client.view(depth) == {s: expected[s][:depth] for s in ("bids", "asks")}
