"""Rates from live tickers: direct, inverse, cross through USDT, freshest path, staleness."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal

import pytest

from cryptowire.clock import now_ms
from cryptowire.core.channels import Channel, ChannelGrammar
from cryptowire.errors import SourceError
from cryptowire.events import Event, Publication
from cryptowire.sources.prices import RateError, Refusals, TickerRates

Watcher = Callable[[Publication], None]


class Feeds:
    """The hub side TickerRates talks to: which symbols exist, and a way to push ticks."""

    def __init__(self, symbols: set[str]) -> None:
        self.symbols = symbols
        self.watchers: dict[str, list[Watcher]] = {}
        self.acquired: list[str] = []
        self.released: list[str] = []
        self.offset = 0

    async def acquire(self, channel: Channel) -> None:
        if channel.symbol not in self.symbols:
            raise SourceError(f"Unknown symbol '{channel.symbol}'")
        self.acquired.append(channel.name)

    def release(self, name: str) -> None:
        self.released.append(name)

    async def watch(self, name: str, fn: Watcher) -> None:
        self.watchers.setdefault(name, []).append(fn)

    async def unwatch(self, name: str, fn: Watcher) -> None:
        self.watchers[name].remove(fn)

    def tick(self, symbol: str, price: str, age_ms: int = 0) -> None:
        self.offset += 1
        event = Event(f"ticker:{symbol}", {"symbol": symbol, "price": price},
                      ts_received=now_ms() - age_ms)
        pub = Publication.from_event(event, "e", self.offset)
        for fn in self.watchers.get(pub.channel, []):
            fn(pub)


def rates(feeds: Feeds, max_age_ms: int = 30_000) -> TickerRates:
    return TickerRates(ChannelGrammar().parse, feeds.acquire, feeds.release, feeds.watch,
                       feeds.unwatch, max_age_ms=max_age_ms, first_tick_wait_s=0.05)


async def test_cross_through_usdt_is_exact() -> None:
    feeds = Feeds({"BTCUSDT", "ETHUSDT"})
    r = rates(feeds)
    await r.prepare("BTC", "ETH")
    assert sorted(feeds.acquired) == ["ticker:BTCUSDT", "ticker:ETHUSDT"]
    feeds.tick("BTCUSDT", "66000.00")
    feeds.tick("ETHUSDT", "3300.00")
    rate = await r.rate("BTC", "ETH")
    assert rate.value == Decimal("66000.00") / Decimal("3300.00") == Decimal(20)
    assert rate.path == "BTCUSDT/ETHUSDT"


async def test_freshest_path_wins() -> None:
    feeds = Feeds({"ETHBTC", "BTCUSDT", "ETHUSDT"})
    r = rates(feeds)
    await r.prepare("BTC", "ETH")
    feeds.tick("BTCUSDT", "66000", age_ms=5000)
    feeds.tick("ETHUSDT", "3300", age_ms=5000)
    feeds.tick("ETHBTC", "0.05")
    rate = await r.rate("BTC", "ETH")
    assert rate.path == "1/ETHBTC"
    assert rate.value == Decimal(1) / Decimal("0.05")
    feeds.tick("BTCUSDT", "66000")
    feeds.tick("ETHUSDT", "3300")
    # now both paths are fresh; the cross path's oldest leg is newer or equal
    assert (await r.rate("BTC", "ETH")).value == Decimal(20)


async def test_to_and_from_quote_currency() -> None:
    feeds = Feeds({"ETHUSDT"})
    r = rates(feeds)
    await r.prepare("ETH", "USDT")
    await r.prepare("USDT", "ETH")
    feeds.tick("ETHUSDT", "3200.5")
    assert (await r.rate("ETH", "USDT")).value == Decimal("3200.5")
    assert (await r.rate("USDT", "ETH")).value == Decimal(1) / Decimal("3200.5")


async def test_stale_and_missing_are_errors_never_prices() -> None:
    feeds = Feeds({"BTCUSDT", "ETHUSDT"})
    r = rates(feeds, max_age_ms=1000)
    await r.prepare("BTC", "ETH")
    with pytest.raises(RateError, match="no live market"):
        await r.rate("BTC", "ETH")
    feeds.tick("BTCUSDT", "66000", age_ms=5000)
    feeds.tick("ETHUSDT", "3300", age_ms=5000)
    with pytest.raises(RateError, match="stale"):
        await r.rate("BTC", "ETH")
    feeds.tick("BTCUSDT", "0")  # a zero price is ignored, not used
    with pytest.raises(RateError):
        await r.rate("BTC", "ETH")


async def test_release_drops_demand() -> None:
    feeds = Feeds({"BTCUSDT", "ETHUSDT"})
    r = rates(feeds)
    first = await r.prepare("BTC", "ETH")
    second = await r.prepare("BTC", "ETH")
    assert first == {"BTCUSDT", "ETHUSDT"}  # BTCETH/ETHBTC were refused: not held
    assert second == first
    await r.release(first)
    assert feeds.released == []
    await r.release(second)
    assert sorted(feeds.released) == ["ticker:BTCUSDT", "ticker:ETHUSDT"]


async def test_releasing_never_gives_back_what_another_session_holds() -> None:
    """A session refused a leg, which became available to a later session: the first one's
    release must not drop the second one's leg (counts are per hold, not per pair)."""
    feeds = Feeds({"BTCUSDT"})
    r = rates(feeds)
    early = await r.prepare("BTC", "ETH")  # ETHUSDT refused: not held
    assert early == {"BTCUSDT"}
    feeds.symbols.add("ETHUSDT")
    late = await r.prepare("BTC", "ETH")
    assert late == {"BTCUSDT", "ETHUSDT"}
    await r.release(early)
    assert feeds.released == []  # BTCUSDT still held by late, ETHUSDT only by late
    feeds.tick("BTCUSDT", "66000")
    feeds.tick("ETHUSDT", "3300")
    assert (await r.rate("BTC", "ETH")).value == Decimal(20)
    await r.release(late)
    assert sorted(feeds.released) == ["ticker:BTCUSDT", "ticker:ETHUSDT"]


class SlowFeeds(Feeds):
    """Feeds whose acquire and watch yield to the loop, as the hub's do (demand, broker)."""

    async def acquire(self, channel: Channel) -> None:
        await asyncio.sleep(0.01)
        await super().acquire(channel)

    async def watch(self, name: str, fn: Watcher) -> None:
        await asyncio.sleep(0)
        await super().watch(name, fn)


async def test_concurrent_prepares_of_one_pair_acquire_once_and_release_fully() -> None:
    feeds = SlowFeeds({"BTCUSDT", "ETHUSDT"})
    r = rates(feeds)
    a, b = await asyncio.gather(r.prepare("BTC", "ETH"), r.prepare("BTC", "ETH"))
    assert sorted(feeds.acquired) == ["ticker:BTCUSDT", "ticker:ETHUSDT"]
    assert {name: len(fns) for name, fns in feeds.watchers.items()} == \
        {"ticker:BTCUSDT": 1, "ticker:ETHUSDT": 1}
    await r.release(a)
    assert feeds.released == []
    await r.release(b)
    assert sorted(feeds.released) == ["ticker:BTCUSDT", "ticker:ETHUSDT"]
    assert all(not fns for fns in feeds.watchers.values())


async def test_concurrent_prepare_and_release_keep_demand_balanced() -> None:
    feeds = SlowFeeds({"BTCUSDT", "ETHUSDT"})
    r = rates(feeds)
    first = await r.prepare("BTC", "ETH")
    _, second, third = await asyncio.gather(r.release(first), r.prepare("BTC", "ETH"),
                                            r.prepare("BTC", "ETH"))
    await r.release(second)
    await r.release(third)
    assert sorted(feeds.acquired) == sorted(feeds.released)
    assert all(not fns for fns in feeds.watchers.values())
    assert not r._locks


async def test_a_refused_symbol_is_tried_again_by_a_concurrent_prepare() -> None:
    feeds = SlowFeeds({"BTCUSDT"})
    r = rates(feeds)
    a, b = await asyncio.gather(r.prepare("BTC", "USDT"), r.prepare("BTC", "USDT"))
    assert feeds.acquired == ["ticker:BTCUSDT"]
    await r.release(a)
    await r.release(b)
    assert feeds.released == ["ticker:BTCUSDT"]


async def test_an_unknown_currency_fails_at_once_with_the_refusal_not_stale() -> None:
    feeds = Feeds({"BTCUSDT", "ETHUSDT"})
    r = TickerRates(ChannelGrammar().parse, feeds.acquire, feeds.release, feeds.watch,
                    feeds.unwatch, first_tick_wait_s=3.0)
    await r.prepare("BTC", "XYZ")
    assert feeds.acquired == ["ticker:BTCUSDT"]  # the only leg that exists
    feeds.tick("BTCUSDT", "66000")
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(RateError) as info:
        await r.rate("BTC", "XYZ")
    assert loop.time() - started < 0.5  # no 3 s wait for a tick that cannot come
    message = info.value.message
    assert message.startswith("no market for BTC/XYZ: ")
    assert "Unknown symbol 'XYZUSDT'" in message and "Unknown symbol 'BTCXYZ'" in message
    assert "stale" not in message


async def test_stale_only_when_a_whole_path_is_priced_but_old() -> None:
    feeds = Feeds({"BTCUSDT", "ETHUSDT"})
    r = rates(feeds, max_age_ms=1000)
    await r.prepare("BTC", "ETH")
    feeds.tick("BTCUSDT", "66000", age_ms=5000)  # one leg of the cross only
    with pytest.raises(RateError, match="no live market"):
        await r.rate("BTC", "ETH")
    feeds.tick("ETHUSDT", "3300", age_ms=5000)
    with pytest.raises(RateError, match="stale"):
        await r.rate("BTC", "ETH")


async def test_a_refusal_is_forgotten_once_the_symbol_is_served() -> None:
    feeds = Feeds({"BTCUSDT"})
    r = rates(feeds)
    await r.prepare("BTC", "ETH")
    with pytest.raises(RateError, match="no market for BTC/ETH: .*ETHUSDT"):
        await r.rate("BTC", "ETH")
    feeds.symbols.add("ETHUSDT")  # listed now (a new instrument, a source back)
    await r.prepare("BTC", "ETH")
    feeds.tick("BTCUSDT", "66000")
    feeds.tick("ETHUSDT", "3300")
    assert (await r.rate("BTC", "ETH")).value == Decimal(20)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_refusals_of_unseen_pairs_stay_bounded() -> None:
    """Issue 10 item 4: every unseen pair left its refusals for ever (+55 MB per 52k
    anonymous sessions). The map keeps at most ``max_size`` symbols."""
    feeds = Feeds({"BTCUSDT"})
    memory = Refusals(max_size=50, ttl_s=300, clock=FakeClock())
    r = TickerRates(ChannelGrammar().parse, feeds.acquire, feeds.release, feeds.watch,
                    feeds.unwatch, first_tick_wait_s=0.05, refusals=memory)
    for i in range(1000):
        hold = await r.prepare(f"A{i}", f"B{i}")  # 4 unknown symbols each
        await r.release(hold)
        assert len(memory) <= 50
    assert len(memory) == 50
    # The newest are the ones kept, and they still fail at once with the reason.
    with pytest.raises(RateError, match="no market for A999/B999: Unknown symbol"):
        await r.rate("A999", "B999")


async def test_refusals_age_out_unless_used() -> None:
    clock = FakeClock()
    memory = Refusals(max_size=100, ttl_s=300, clock=clock)
    memory["OLDUSDT"] = "Unknown symbol 'OLDUSDT'"
    memory["USEDUSDT"] = "Unknown symbol 'USEDUSDT'"
    clock.now += 200
    assert memory.get("USEDUSDT") == "Unknown symbol 'USEDUSDT'"  # a read keeps it
    clock.now += 200  # OLD: 400 s unused; USED: 200 s since its read
    assert memory.get("OLDUSDT") is None
    assert memory.get("USEDUSDT") is not None
    assert len(memory) == 1
    clock.now += 301
    memory["NEWUSDT"] = "Unknown symbol 'NEWUSDT'"  # a write drops what expired
    assert len(memory) == 1 and memory.get("NEWUSDT") is not None
    assert memory.pop("NEWUSDT") == "Unknown symbol 'NEWUSDT'" and len(memory) == 0


def test_refusals_evict_the_least_recently_used() -> None:
    clock = FakeClock()
    memory = Refusals(max_size=3, ttl_s=300, clock=clock)
    for symbol in ("AUSDT", "BUSDT", "CUSDT"):
        memory[symbol] = symbol
        clock.now += 1
    assert memory.get("AUSDT") == "AUSDT"  # now the most recently used
    memory["DUSDT"] = "DUSDT"
    assert [memory.get(s) for s in ("AUSDT", "BUSDT", "CUSDT", "DUSDT")] == \
        ["AUSDT", None, "CUSDT", "DUSDT"]
