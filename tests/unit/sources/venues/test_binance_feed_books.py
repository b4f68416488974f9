"""Binance books through the feed: the snapshot/delta/gap publications of every depth, replayed
by a client, equal a naive reference book cut at that depth at every step (deltas are of
the cut view, so a diff below the cut and a removal that brings a deeper level in are right);
a sequence break, a stale snapshot, a crossed book and a lost connection each give one gap,
then a new snapshot, never a wrong book."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from tests.unit.sources.venues.binance_support import channel, document, lines

from cryptowire.books import OrderBook
from cryptowire.events import Event
from cryptowire.sources.venues.binance import markets
from cryptowire.sources.venues.binance.book import SymbolBook
from cryptowire.sources.venues.binance.feed import BinanceFeed, Output

DEPTHS = (5, 20, 1000)
MARKETS = {"futures": markets.futures(), "spot": markets.spot()}
VENUE = {"futures": "binance", "spot": "binance-spot"}
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
    """One client book per channel, applying what the feed publishes."""

    def __init__(self) -> None:
        self.books: dict[str, OrderBook | None] = {}
        self.log: list[Event] = []

    def take(self, out: Output) -> None:
        for event in out.events:
            self.log.append(event)
            if event.type == "gap":
                self.books[event.channel] = None
            elif event.type == "snapshot":
                book = self.books[event.channel] = OrderBook()
                book.snapshot(event.data["bids"], event.data["asks"])
            else:
                book = self.books[event.channel]
                assert book is not None, f"a delta on {event.channel} without a snapshot"
                book.apply(event.data["bids"], event.data["asks"])

    def levels(self, name: str) -> tuple[Levels, Levels] | None:
        book = self.books.get(name)
        return None if book is None else (book.levels("bids"), book.levels("asks"))


def setup(market: str) -> tuple[BinanceFeed, list[str]]:
    feed = BinanceFeed(MARKETS[market])
    names = [f"book:{d}:BTCUSDT@{VENUE[market]}" for d in DEPTHS]
    for name in names:
        feed.add(channel(name))
    return feed, names


def depth_frames(name: str) -> list[dict[str, Any]]:
    return lines(name)


@pytest.mark.parametrize("market", ["futures", "spot"])
@pytest.mark.parametrize("after", [1, 4, 7, 12, 40])
def test_every_depth_equals_the_reference_at_every_step(market: str, after: int) -> None:
    feed, names = setup(market)
    frames = depth_frames(f"{market}-depth.jsonl")
    snap = document(f"{market}-depth-snapshot.json")
    clients, fetches = Clients(), []
    for i, frame in enumerate(frames):
        out = feed.on_stream(_frame(frame))
        fetches += out.fetch
        clients.take(out)
        if i + 1 == after:
            clients.take(feed.on_depth_snapshot("BTCUSDT", snap))
        if i + 1 >= after and i >= 6:  # the sync holds from the bridging event (6) on
            for name, depth in zip(names, DEPTHS, strict=True):
                want = reference(snap, [f["data"] for f in frames[:i + 1]], market, depth)
                assert clients.levels(name) == want, (name, i)
    assert fetches == ["BTCUSDT"]  # asked once, at the first diff
    assert all(e.type != "gap" for e in clients.log)
    assert [e.type for e in clients.log[:3]] == ["snapshot"] * 3
    deltas = [e for e in clients.log if e.type == "delta"]
    if after == len(frames):  # everything came buffered: one snapshot, no delta
        assert deltas == []
        return
    assert all(e.data["venueSeq"] for e in deltas)
    # the 5-deep cut changes less often than the whole book: diffs below the cut publish nothing
    counts = {n: sum(e.channel == n for e in deltas) for n in names}
    assert counts[names[0]] < counts[names[2]]


@pytest.mark.parametrize("market", ["futures", "spot"])
def test_a_sequence_break_gives_one_gap_then_a_new_snapshot(market: str) -> None:
    feed, names = setup(market)
    full = depth_frames(f"{market}-depth.jsonl")
    gapped = depth_frames(f"{market}-depth-gap.jsonl")
    clients = Clients()
    clients.take(feed.on_stream(_frame(gapped[0])))
    clients.take(feed.on_depth_snapshot("BTCUSDT", document(f"{market}-depth-snapshot.json")))
    fetches = []
    for frame in gapped[1:25]:
        out = feed.on_stream(_frame(frame))
        fetches += out.fetch
        clients.take(out)
    gaps = [e for e in clients.log if e.type == "gap"]
    assert [e.channel for e in gaps] == names and fetches == ["BTCUSDT"]
    assert all(clients.levels(n) is None for n in names)
    assert ("pu=" if market == "futures" else "missed events") in gaps[0].data["reason"]
    # a fresh snapshot as the venue's book after event 22 (the full stream) re-syncs
    bids, asks = reference(document(f"{market}-depth-snapshot.json"),
                           [f["data"] for f in full[:23]], market, 10_000)
    fresh = {"lastUpdateId": full[22]["data"]["u"], "bids": bids, "asks": asks}
    clients.take(feed.on_depth_snapshot("BTCUSDT", fresh))
    for frame in gapped[25:]:
        clients.take(feed.on_stream(_frame(frame)))
    for name, depth in zip(names, DEPTHS, strict=True):
        want = reference(document(f"{market}-depth-snapshot.json"),
                         [f["data"] for f in full], market, depth)
        assert clients.levels(name) == want
    assert [e.type for e in clients.log if e.channel == names[2]].count("snapshot") == 2


@pytest.mark.parametrize("market", ["futures", "spot"])
def test_a_stale_snapshot_publishes_nothing_and_asks_again(market: str) -> None:
    feed, names = setup(market)
    frames = depth_frames(f"{market}-depth.jsonl")
    assert feed.on_stream(_frame(frames[0])).fetch == ["BTCUSDT"]
    out = feed.on_depth_snapshot("BTCUSDT", document(f"{market}-depth-snapshot-stale.json"))
    assert out.events == [] and out.fetch == ["BTCUSDT"]  # "go back to step 3"
    nxt = feed.on_stream(_frame(frames[1]))
    assert nxt.fetch == [] and nxt.events == []  # one fetch on its way at a time
    clients = Clients()
    clients.take(feed.on_depth_snapshot("BTCUSDT", document(f"{market}-depth-snapshot.json")))
    for frame in frames[2:]:
        clients.take(feed.on_stream(_frame(frame)))
    want = reference(document(f"{market}-depth-snapshot.json"),
                     [f["data"] for f in frames], market, 20)
    assert clients.levels(names[1]) == want


def test_a_crossed_book_is_never_published() -> None:
    feed, names = setup("futures")
    frames = depth_frames("futures-depth.jsonl")
    clients = Clients()
    clients.take(feed.on_stream(_frame(frames[0])))
    clients.take(feed.on_depth_snapshot("BTCUSDT", document("futures-depth-snapshot.json")))
    for frame in frames[1:10]:
        clients.take(feed.on_stream(_frame(frame)))
    data = dict(frames[10]["data"])
    best_ask = clients.levels(names[0])[1][0][0]  # type: ignore[index]
    data["b"] = [*data["b"], [best_ask, "5.000"]]
    out = feed.on_stream(_frame({"stream": "btcusdt@depth@100ms", "data": data}))
    assert [e.type for e in out.events] == ["gap"] * 3 and out.fetch == ["BTCUSDT"]
    assert "crossed book" in out.events[0].data["reason"]


def test_a_lost_connection_gaps_and_fetches_only_once_the_stream_is_back() -> None:
    feed, names = setup("spot")
    frames = depth_frames("spot-depth.jsonl")
    clients = Clients()
    clients.take(feed.on_stream(_frame(frames[0])))
    clients.take(feed.on_depth_snapshot("BTCUSDT", document("spot-depth-snapshot.json")))
    for frame in frames[1:10]:
        clients.take(feed.on_stream(_frame(frame)))
    out = feed.on_disconnect("public", "peer closed")
    assert [e.type for e in out.events] == ["gap"] * 3 and out.fetch == []
    assert "upstream connection lost (peer closed)" in out.events[0].data["reason"]
    assert feed.on_disconnect("public", "again").events == []  # one gap per break
    assert feed.on_stream(_frame(frames[10])).fetch == ["BTCUSDT"]


def test_a_channel_joining_a_live_book_gets_its_snapshot_at_once() -> None:
    feed, _ = setup("futures")
    frames = depth_frames("futures-depth.jsonl")
    feed.on_stream(_frame(frames[0]))
    snap = document("futures-depth-snapshot.json")
    feed.on_depth_snapshot("BTCUSDT", snap)
    for frame in frames[1:8]:
        feed.on_stream(_frame(frame))
    _, events = feed.add(channel("book:10:BTCUSDT@binance"))
    assert [e.type for e in events] == ["snapshot"]
    want = reference(snap, [f["data"] for f in frames[:8]], "futures", 10)
    assert (events[0].data["bids"], events[0].data["asks"]) == want
    assert events[0].data["venueSeq"] == frames[7]["data"]["u"]


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


def _frame(frame: dict[str, Any]) -> Any:
    from cryptowire.sources.venues.binance.frames import StreamFrame
    return StreamFrame(frame["stream"], frame["data"])


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
    clients.take(Output(book.on_snapshot(snap).events))
    steps = 0
    for _ in range(3000):
        data = venue.next_event()
        assert data is not None
        out = book.on_event(data)
        clients.take(Output(out.events))
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
