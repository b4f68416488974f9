"""The demo order books and liquidations: a client that applies a ``book:`` channel's snapshot
and then its deltas holds exactly the demo's own book cut at depth at every step (PROTOCOLS.md
4.1), never crossed, on the tick grid, in plain decimal strings; the book follows the ticker's
walk; liquidations have the 4.4 shape; event channels are never a snapshot."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from typing import Any

import pytest

from cryptowire.books import OrderBook
from cryptowire.core.channels import ChannelGrammar
from cryptowire.errors import SourceError
from cryptowire.events import Event
from cryptowire.settings import DemoSettings
from cryptowire.sources.demo import DemoSource
from cryptowire.sources.demo_book import FULL_DEPTH

PLAIN = re.compile(r"^\d+(\.\d+)?$")
GRAMMAR = ChannelGrammar()


class Driven:
    """A demo source whose ticks and book steps are driven by hand (no sleeping task)."""

    def __init__(self, seed: int) -> None:
        self.source = DemoSource(DemoSettings(), seed=seed)
        self.events: list[Event] = []

        async def publish(event: Event) -> None:
            self.events.append(event)

        self.source._publish = publish

    async def subscribe(self, *names: str) -> None:
        for name in names:
            await self.source.subscribe(GRAMMAR.parse(name))

    def of(self, channel: str) -> list[Event]:
        return [e for e in self.events if e.channel == channel]


class Client:
    """What a subscriber does with a ``book:`` channel's frames."""

    def __init__(self, depth: int) -> None:
        self.book = OrderBook(depth)
        self.seq: int | None = None
        self.frames = 0

    def apply(self, event: Event) -> None:
        data: Any = event.data
        if self.frames == 0:
            assert event.type == "snapshot", event
        if event.type == "snapshot":
            self.book.snapshot(data["bids"], data["asks"])
        else:
            assert event.type == "delta", event
            assert data["venueSeq"] == self.seq + 1  # type: ignore[operator]
            removed = self.book.apply(data["bids"], data["asks"])
            assert removed == ([], []), "the demo's delta already carries its depth cut"
        self.seq = data["venueSeq"]
        self.frames += 1


def check_levels(data: Any, tick: Decimal, step: Decimal) -> None:
    for side in ("bids", "asks"):
        for price, size in data[side]:
            assert PLAIN.fullmatch(price) and PLAIN.fullmatch(size), (price, size)
            assert Decimal(price) > 0 and Decimal(price) % tick == 0, price
            assert size == "0" or (Decimal(size) > 0 and Decimal(size) % step == 0), size


@pytest.mark.parametrize("seed", [1, 7, 2024])
async def test_a_client_applying_snapshot_then_deltas_holds_the_demo_book(seed: int) -> None:
    demo = Driven(seed)
    names = {"book:1:BTCUSDT": 1, "book:50:BTCUSDT": 50, "book:200:BTCUSDT": 200,
             "book:500:BTCUSDT": 500, "book:50:BTCUSDT@spot": 50, "book:50:ETHBTC": 50}
    await demo.subscribe(*names)
    clients = {name: Client(depth) for name, depth in names.items()}
    seen = 0
    for n in range(1, 151):
        if n % 5 == 0:
            await demo.source.tick(n)  # the ticker walks: the book follows it
        await demo.source.step_books()
        for event in demo.events[seen:]:
            if event.channel in clients:
                clients[event.channel].apply(event)
                market = demo.source._markets[event.channel.split(":")[2].split("@")[0]]
                check_levels(event.data, market.tick, market.size_step)
        seen = len(demo.events)
        for name, client in clients.items():
            symbol = name.split(":")[2].split("@")[0]
            own = demo.source._books[symbol]
            assert client.frames == n + 1, name  # a snapshot, then a delta every step
            assert client.seq == own.seq
            for side in ("bids", "asks"):
                assert client.book.levels(side) == own.book.levels(side, client.book.depth)
                held = len(client.book.levels(side))
                assert held <= client.book.depth  # the cut is respected
                # full up to 200; the whole book (500) refills its far end once a few went
                assert held == client.book.depth if client.book.depth <= 200 else held > 450
            assert not client.book.crossed()
            # coherent with the ticker: the best bid and ask are the ticker's
            market = demo.source._markets[symbol]
            bid, ask = client.book.best_bid(), client.book.best_ask()
            assert bid is not None and Decimal(bid[0]) == market.price - market.tick
            assert ask is not None and Decimal(ask[0]) == market.price + market.tick


async def test_the_book_follows_the_ticker_walk_and_moves() -> None:
    demo = Driven(11)
    await demo.subscribe("book:50:SOLUSDT", "ticker:SOLUSDT")
    for n in range(1, 61):
        await demo.source.tick(n)
        await demo.source.step_books()
    prices = {e.data["price"] for e in demo.of("ticker:SOLUSDT")}  # type: ignore[index]
    assert len(prices) > 5  # the walk went somewhere
    deltas = [e for e in demo.of("book:50:SOLUSDT") if e.type == "delta"]
    removed = sum(size == "0" for e in deltas for side in ("bids", "asks")
                  for _, size in e.data[side])  # type: ignore[index]
    added = sum(size != "0" for e in deltas for side in ("bids", "asks")
                for _, size in e.data[side])  # type: ignore[index]
    assert removed > 20 and added > 60  # levels come and go, sizes change


async def test_a_resubscribe_starts_again_with_a_snapshot_and_no_stale_delta() -> None:
    demo = Driven(5)
    await demo.subscribe("book:50:ETHUSDT")
    await demo.source.step_books()
    channel = GRAMMAR.parse("book:50:ETHUSDT")
    await demo.source.unsubscribe(channel)
    before = len(demo.events)
    for n in range(1, 20):  # nobody watches: no book frames; the ticker walks on
        await demo.source.tick(n)
        await demo.source.step_books()
    assert demo.events[before:] == []
    await demo.source.subscribe(channel)
    await demo.source.step_books()
    again = demo.of("book:50:ETHUSDT")[2:]
    assert [e.type for e in again] == ["snapshot", "delta"]
    client = Client(50)
    for event in again:
        client.apply(event)
    own = demo.source._books["ETHUSDT"]
    assert client.book.levels("bids") == own.book.levels("bids", 50)
    assert client.book.levels("asks") == own.book.levels("asks", 50)
    market = demo.source._markets["ETHUSDT"]
    best = client.book.best_bid()
    assert best is not None and Decimal(best[0]) == market.price - market.tick


async def test_the_whole_book_is_the_deepest_venue_depth() -> None:
    demo = Driven(3)
    await demo.subscribe("book:1000:BTCUSDT")
    snapshot: Any = demo.of("book:1000:BTCUSDT")[0].data
    assert FULL_DEPTH == 1000
    assert len(snapshot["bids"]) == len(snapshot["asks"]) == 1000
    assert set(snapshot) == {"symbol", "bids", "asks", "venueSeq"}
    assert snapshot["symbol"] == "BTCUSDT"


async def test_unknown_symbols_and_spot_liquidations_are_refused_with_a_reason() -> None:
    demo = Driven(1)
    with pytest.raises(SourceError, match="Demo symbols: BTCUSDT"):
        await demo.subscribe("book:50:NOPEUSDT")
    with pytest.raises(SourceError, match="Unknown symbol 'NOPEUSDT'"):
        await demo.subscribe("liquidation:NOPEUSDT")
    with pytest.raises(SourceError, match="no liquidations .* use liquidation:BTCUSDT"):
        await demo.subscribe("liquidation:BTCUSDT@spot")
    assert demo.events == []


async def test_liquidations_have_the_protocol_shape_in_exact_strings() -> None:
    demo = Driven(9)
    await demo.subscribe("liquidation:BTCUSDT", "liquidation:ETHBTC")
    for n in range(1, 101):
        await demo.source.tick(n)
    for symbol in ("BTCUSDT", "ETHBTC"):
        events = demo.of(f"liquidation:{symbol}")
        assert 5 < len(events) < 60  # occasional
        market = demo.source._markets[symbol]
        sides = set()
        for event in events:
            data: Any = event.data
            assert event.type == "update" and event.source == "demo"
            assert set(data) == {"symbol", "side", "price", "size", "time"}
            assert data["symbol"] == symbol and isinstance(data["time"], int)
            sides.add(data["side"])
            assert PLAIN.fullmatch(data["price"]) and PLAIN.fullmatch(data["size"]), data
            assert Decimal(data["price"]) % market.tick == 0
            assert Decimal(data["size"]) > 0 and Decimal(data["size"]) % market.size_step == 0
        assert sides == {"Buy", "Sell"}


async def test_event_channels_never_carry_a_snapshot() -> None:
    demo = Driven(4)
    events = ["trade:BTCUSDT", "trade:ETHBTC@spot", "liquidation:SOLUSDT", "swap:eth",
              "burn:eth"]
    await demo.subscribe(*events, "book:50:BTCUSDT")
    for n in range(1, 81):
        await demo.source.tick(n)
        await demo.source.step_books()
    for name in events:
        assert demo.of(name), name
        assert {e.type for e in demo.of(name)} == {"update"}, name
    assert {e.type for e in demo.of("book:50:BTCUSDT")} == {"snapshot", "delta"}


async def test_subscribes_during_steps_never_interleave_a_snapshot_with_deltas() -> None:
    demo = Driven(8)
    published = demo.source._publish
    assert published is not None

    async def slow_publish(event: Event) -> None:
        # every publication lets others run, a snapshot for longer (as a slower bus would)
        for _ in range(4 if event.type == "snapshot" else 1):
            await asyncio.sleep(0)
        await published(event)

    demo.source._publish = slow_publish
    await demo.subscribe("book:50:BTCUSDT")

    async def steps() -> None:
        for _ in range(30):
            await demo.source.step_books()

    async def subscribes() -> None:
        for name in ("book:1:ETHUSDT", "book:200:SOLUSDT", "book:50:BTCUSDT@spot"):
            await asyncio.sleep(0)
            await demo.subscribe(name)

    await asyncio.gather(steps(), subscribes(), steps())
    for name, depth in (("book:50:BTCUSDT", 50), ("book:1:ETHUSDT", 1),
                        ("book:200:SOLUSDT", 200), ("book:50:BTCUSDT@spot", 50)):
        client = Client(depth)
        for event in demo.of(name):
            client.apply(event)  # a snapshot first, then venueSeq + 1 each time
        own = demo.source._books[name.split(":")[2].split("@")[0]]
        assert client.seq == own.seq and client.frames > 1, name
        assert client.book.levels("bids") == own.book.levels("bids", depth)
