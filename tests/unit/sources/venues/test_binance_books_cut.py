"""Binance books through the codec's book state: the snapshot/delta/gap publications of every
depth, replayed by a client, equal a naive reference book cut at that depth at every step
(deltas are of the cut view, so a diff below the cut and a removal that brings a deeper level
in are right); a sequence break, a stale snapshot and a crossed book each give one gap, then a
new snapshot, never a wrong book; the REST snapshot is asked for at the documented moment."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from tests.unit.sources.venues.binance_harness import Harness
from tests.unit.sources.venues.binance_support import document, lines

from cryptowire.books import OrderBook
from cryptowire.sources.exchange.codec import Pub
from cryptowire.sources.venues.binance.book import SymbolBook

DEPTHS = (5, 20, 1000)
VENUE = {"futures": "binance", "spot": "binance-spot"}
KEY = "btcusdt@depth@100ms"
PATHS = {"futures": "/fapi/v1/depth?symbol=BTCUSDT&limit=1000",
         "spot": "/api/v3/depth?symbol=BTCUSDT&limit=5000"}
Levels = list[list[str]]


def reference(snap: dict[str, Any], events: list[dict[str, Any]], market: str, depth: int
              ) -> tuple[Levels, Levels]:
    """The snapshot, then every event not older than it, cut at ``depth``."""
    last = snap["lastUpdateId"]
    book = {"b": {Decimal(p): [p, q] for p, q in snap["bids"]},
            "a": {Decimal(p): [p, q] for p, q in snap["asks"]}}
    for event in events:
        if event["u"] < last or (market == "spot" and event["u"] == last):
            continue
        for side in "ba":
            for price, size in event[side]:
                if Decimal(size) == 0:
                    book[side].pop(Decimal(price), None)
                else:
                    book[side][Decimal(price)] = [price, size]
    bids = [book["b"][k] for k in sorted(book["b"], reverse=True)][:depth]
    asks = [book["a"][k] for k in sorted(book["a"])][:depth]
    return bids, asks


class Clients:
    """One client book per channel, applying what the state publishes."""

    def __init__(self) -> None:
        self.books: dict[str, OrderBook | None] = {}
        self.log: list[Pub] = []

    def take(self, pubs: list[Pub]) -> None:
        for pub in pubs:
            self.log.append(pub)
            if pub.type == "gap":
                self.books[pub.channel] = None
            elif pub.type == "snapshot":
                book = self.books[pub.channel] = OrderBook()
                book.snapshot(pub.data["bids"], pub.data["asks"])
            else:
                book = self.books[pub.channel]
                assert book is not None, f"a delta on {pub.channel} without a snapshot"
                book.apply(pub.data["bids"], pub.data["asks"])

    def levels(self, name: str) -> tuple[Levels, Levels] | None:
        book = self.books.get(name)
        return None if book is None else (book.levels("bids"), book.levels("asks"))


def setup(market: str) -> tuple[Harness, list[str]]:
    h = Harness(market)
    names = [f"book:{d}:BTCUSDT@{VENUE[market]}" for d in DEPTHS]
    for name in names:
        h.add(name)
    return h, names


def raw(frame: dict[str, Any]) -> str:
    return json.dumps(frame)


@pytest.mark.parametrize("market", ["futures", "spot"])
@pytest.mark.parametrize("after", [1, 4, 7, 12, 40])
def test_every_depth_equals_the_reference_at_every_step(market: str, after: int) -> None:
    h, names = setup(market)
    frames = lines(f"{market}-depth.jsonl")
    snap = document(f"{market}-depth-snapshot.json")
    clients = Clients()
    assert h.wants(KEY) is None  # the stream first, then the snapshot (documented order)
    for i, frame in enumerate(frames):
        clients.take(h.feed(raw(frame)))
        if i + 1 == after:
            assert h.wants(KEY) == PATHS[market]
            clients.take(h.snapshot(KEY, snap))
            assert h.wants(KEY) is None
        if i + 1 >= after and i >= 6:  # the sync holds from the bridging event (6) on
            for name, depth in zip(names, DEPTHS, strict=True):
                want = reference(snap, [f["data"] for f in frames[:i + 1]], market, depth)
                assert clients.levels(name) == want, (name, i)
    assert h.breaks == [] and all(p.type != "gap" for p in clients.log)
    assert [p.type for p in clients.log[:3]] == ["snapshot"] * 3
    deltas = [p for p in clients.log if p.type == "delta"]
    if after == len(frames):  # everything came buffered: one snapshot, no delta
        assert deltas == []
        return
    assert all(p.data["venueSeq"] for p in deltas)
    # the 5-deep cut changes less often than the whole book: diffs below the cut publish nothing
    counts = {n: sum(p.channel == n for p in deltas) for n in names}
    assert counts[names[0]] < counts[names[2]]


@pytest.mark.parametrize("market", ["futures", "spot"])
def test_a_sequence_break_gives_one_gap_then_a_new_snapshot(market: str) -> None:
    h, names = setup(market)
    full = lines(f"{market}-depth.jsonl")
    gapped = lines(f"{market}-depth-gap.jsonl")
    clients = Clients()
    clients.take(h.feed(raw(gapped[0])))
    clients.take(h.snapshot(KEY, document(f"{market}-depth-snapshot.json")))
    for frame in gapped[1:25]:
        clients.take(h.feed(raw(frame)))
    gaps = [p for p in clients.log if p.type == "gap"]
    assert sorted(p.channel for p in gaps) == sorted(names)
    assert [b.cause for b in h.breaks] == ["sequence"] and h.wants(KEY) == PATHS[market]
    assert all(clients.levels(n) is None for n in names)
    assert ("pu=" if market == "futures" else "missed events") in gaps[0].data["reason"]
    # a fresh snapshot as the venue's book after event 22 (the full stream) re-syncs
    bids, asks = reference(document(f"{market}-depth-snapshot.json"),
                           [f["data"] for f in full[:23]], market, 10_000)
    fresh = {"lastUpdateId": full[22]["data"]["u"], "bids": bids, "asks": asks}
    clients.take(h.snapshot(KEY, fresh))
    for frame in gapped[25:]:
        clients.take(h.feed(raw(frame)))
    for name, depth in zip(names, DEPTHS, strict=True):
        want = reference(document(f"{market}-depth-snapshot.json"),
                         [f["data"] for f in full], market, depth)
        assert clients.levels(name) == want
    assert [p.type for p in clients.log if p.channel == names[2]].count("snapshot") == 2


@pytest.mark.parametrize("market", ["futures", "spot"])
def test_a_stale_snapshot_publishes_nothing_and_asks_again(market: str) -> None:
    h, names = setup(market)
    frames = lines(f"{market}-depth.jsonl")
    h.feed(raw(frames[0]))
    assert h.snapshot(KEY, document(f"{market}-depth-snapshot-stale.json")) == []
    assert h.wants(KEY) == PATHS[market]  # "go back to step 3"
    assert h.feed(raw(frames[1])) == []
    clients = Clients()
    clients.take(h.snapshot(KEY, document(f"{market}-depth-snapshot.json")))
    for frame in frames[2:]:
        clients.take(h.feed(raw(frame)))
    want = reference(document(f"{market}-depth-snapshot.json"),
                     [f["data"] for f in frames], market, 20)
    assert clients.levels(names[1]) == want


def test_a_crossed_book_is_never_published() -> None:
    h, names = setup("futures")
    frames = lines("futures-depth.jsonl")
    clients = Clients()
    clients.take(h.feed(raw(frames[0])))
    clients.take(h.snapshot(KEY, document("futures-depth-snapshot.json")))
    for frame in frames[1:10]:
        clients.take(h.feed(raw(frame)))
    data = dict(frames[10]["data"])
    best_ask = clients.levels(names[0])[1][0][0]  # type: ignore[index]
    data["b"] = [*data["b"], [best_ask, "5.000"]]
    pubs = h.feed(raw({"stream": "btcusdt@depth@100ms", "data": data}))
    assert [p.type for p in pubs] == ["gap"] * 3 and "crossed book" in pubs[0].data["reason"]
    assert [b.cause for b in h.breaks] == ["crossed"]
    assert h.wants(KEY) is None  # the next diff starts the new sync
    h.feed(raw(frames[11]))
    assert h.wants(KEY) == PATHS["futures"]


def test_a_new_socket_restarts_the_book_without_a_gap_of_its_own() -> None:
    """The supervisor publishes the reconnect gap; the state starts over and waits for the
    stream before asking for a snapshot."""
    h, _ = setup("spot")
    frames = lines("spot-depth.jsonl")
    clients = Clients()
    clients.take(h.feed(raw(frames[0])))
    clients.take(h.snapshot(KEY, document("spot-depth-snapshot.json")))
    for frame in frames[1:10]:
        clients.take(h.feed(raw(frame)))
    h.topics[KEY].state.reset({KEY})
    assert h.wants(KEY) is None and h.breaks == []
    assert h.feed(raw(frames[10])) == []
    assert h.wants(KEY) == PATHS["spot"]


def test_a_channel_joining_a_live_book_gets_its_snapshot_at_once() -> None:
    h, _ = setup("futures")
    frames = lines("futures-depth.jsonl")
    h.feed(raw(frames[0]))
    snap = document("futures-depth-snapshot.json")
    h.snapshot(KEY, snap)
    for frame in frames[1:8]:
        h.feed(raw(frame))
    _, pubs = h.add("book:10:BTCUSDT@binance")
    assert [p.type for p in pubs] == ["snapshot"]
    want = reference(snap, [f["data"] for f in frames[:8]], "futures", 10)
    assert (pubs[0].data["bids"], pubs[0].data["asks"]) == want
    assert pubs[0].data["venueSeq"] == frames[7]["data"]["u"]
    h.remove("book:1000:BTCUSDT@binance")  # a channel gone: its cut is no longer published
    pubs = h.feed(raw(frames[8])) + h.feed(raw(frames[9]))
    assert pubs and "book:1000:BTCUSDT@binance" not in {p.channel for p in pubs}


def test_a_cut_never_reaches_past_a_full_snapshot_side() -> None:
    """A snapshot side that came with ``limit`` levels hides what lies beyond its deepest
    price: the cut stops there (shorter, never wrong)."""
    book = SymbolBook("BTCUSDT", "spot", limit=3, source="binance")
    book.add("book:5:BTCUSDT@binance-spot", 5)
    event = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 11, "u": 11,
             "b": [["95", "1"]], "a": []}  # a level below the snapshot's deepest bid (97)
    book.on_event(event)
    out = book.on_snapshot({"lastUpdateId": 10, "bids": [["99", "1"], ["98", "1"], ["97", "1"]],
                            "asks": [["101", "1"]]})
    assert [e.type for e in out.events] == ["snapshot"]
    assert out.events[0].data["bids"] == [["99", "1"], ["98", "1"], ["97", "1"]]
    out = book.on_event({**event, "U": 12, "u": 12, "b": [["98", "0"]]})
    assert out.events[0].data["bids"] == [["98", "0"]]  # 95 is not pulled into the cut
    out = book.on_event({**event, "U": 13, "u": 13, "b": [["99", "0"], ["97", "0"]]})
    assert [e.type for e in out.events] == ["gap"]  # nothing known left on the bid side
    assert "moved past" in out.events[0].data["reason"]


def pubs(events: list[Any]) -> list[Pub]:
    return [Pub(e.channel, e.type, e.data, e.ts_source) for e in events]


@pytest.mark.parametrize("market", ["futures", "spot"])
@pytest.mark.parametrize("limit", [1000, 25])
def test_long_random_walks_keep_every_cut_exact(market: str, limit: int) -> None:
    """3000 events of the peer's generator (inserts above the cut, removals that pull deeper
    levels in, diffs below the cut); with ``limit`` 25 the snapshot sides come full, so each
    cut also stops at the snapshot's deepest price."""
    from tests.peers.binance_books import DepthFeed

    venue = DepthFeed(market, "BTCUSDT", 0.0, lambda: False, seed=limit)
    book = SymbolBook("BTCUSDT", market, limit, "binance")  # type: ignore[arg-type]
    depths = (1, 2, 5, 20, 1000)
    for depth in depths:
        book.add(f"book:{depth}", depth)
    first = venue.next_event()
    book.on_event(first)  # type: ignore[arg-type]
    snap = venue.snapshot(limit)
    floors = {side: Decimal(snap[side][-1][0]) if len(snap[side]) == limit else None
              for side in ("bids", "asks")}
    clients = Clients()
    clients.take(pubs(book.on_snapshot(snap).events))
    steps = 0
    for _ in range(3000):
        data = venue.next_event()
        assert data is not None
        out = book.on_event(data)
        clients.take(pubs(out.events))
        if any(e.type == "gap" for e in out.events):
            assert limit == 25 and "moved past" in out.events[0].data["reason"]
            break
        if not book.live:
            continue
        steps += 1
        bids, asks = venue.history[data["u"]]
        if floors["bids"] is not None:
            bids = [b for b in bids if Decimal(b[0]) >= floors["bids"]]
        if floors["asks"] is not None:
            asks = [a for a in asks if Decimal(a[0]) <= floors["asks"]]
        for depth in depths:
            assert clients.levels(f"book:{depth}") == (bids[:depth], asks[:depth]), (depth, steps)
    assert steps > (100 if limit == 25 else 2900)
