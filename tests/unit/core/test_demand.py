"""Demand: reference counts that start and stop upstream topics, with a linger."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from tests.waiting import eventually

from cryptowire.core.channels import Channel, ChannelGrammar
from cryptowire.core.demand import Demand
from cryptowire.errors import SourceError

LINGER = 0.05
GRAMMAR = ChannelGrammar()


class FakeSource:
    """Records upstream (un)subscribes; ``gate`` holds subscribes; ``refuse`` fails them."""

    name = "fake"

    def __init__(self) -> None:
        self.subscribed: list[str] = []
        self.unsubscribed: list[str] = []
        self.gate: asyncio.Event | None = None
        self.refuse: BaseException | None = None

    async def subscribe(self, channel: Channel) -> None:
        self.subscribed.append(channel.name)
        if self.gate is not None:
            await self.gate.wait()
        if self.refuse is not None:
            raise self.refuse

    async def unsubscribe(self, channel: Channel) -> None:
        self.unsubscribed.append(channel.name)


def ch(name: str = "ticker:BTCUSDT") -> Channel:
    return GRAMMAR.parse(name)


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


@pytest.fixture
async def demand(source: FakeSource) -> AsyncIterator[Demand]:
    d = Demand(lambda channel: source if channel.kind != "pg" else None, linger_s=LINGER)
    yield d
    await d.close()


async def settle(demand: Demand) -> None:
    """Wait until no linger timer is pending and every unsubscribe task they started is done
    (a cancelled timer, as on a reacquire, leaves nothing that could unsubscribe later)."""
    await eventually(lambda: not demand._lingering and not demand._tasks, what="lingers run out")


async def test_refcount_subscribes_once_and_unsubscribes_after_the_last(
    demand: Demand, source: FakeSource
) -> None:
    await demand.acquire(ch())
    await demand.acquire(ch())
    assert source.subscribed == ["ticker:BTCUSDT"]
    assert demand.count("ticker:BTCUSDT") == 2
    assert demand.active() == {"ticker:BTCUSDT": 2}
    demand.release("ticker:BTCUSDT")
    await settle(demand)
    assert source.unsubscribed == []
    assert demand.count("ticker:BTCUSDT") == 1
    demand.release("ticker:BTCUSDT")
    await settle(demand)
    assert source.unsubscribed == ["ticker:BTCUSDT"]
    assert demand.count("ticker:BTCUSDT") == 0
    assert demand.active() == {}
    assert (demand.upstream_subscribes, demand.upstream_unsubscribes) == (1, 1)


async def test_channels_are_counted_apart(demand: Demand, source: FakeSource) -> None:
    await demand.acquire(ch("ticker:BTCUSDT"))
    await demand.acquire(ch("ticker:ETHUSDT"))
    demand.release("ticker:BTCUSDT")
    await settle(demand)
    assert source.unsubscribed == ["ticker:BTCUSDT"]
    assert demand.active() == {"ticker:ETHUSDT": 1}


async def test_release_without_acquire_is_harmless(demand: Demand, source: FakeSource) -> None:
    demand.release("ticker:BTCUSDT")
    await demand.acquire(ch())
    demand.release("ticker:BTCUSDT")
    demand.release("ticker:BTCUSDT")
    await settle(demand)
    assert source.unsubscribed == ["ticker:BTCUSDT"]
    assert demand.count("ticker:BTCUSDT") == 0


async def test_concurrent_first_subscribers_share_one_upstream_subscribe(
    demand: Demand, source: FakeSource
) -> None:
    source.gate = asyncio.Event()
    tasks = [asyncio.create_task(demand.acquire(ch())) for _ in range(5)]
    await eventually(lambda: source.subscribed != [], what="the upstream subscribe")
    assert source.subscribed == ["ticker:BTCUSDT"]
    assert not any(t.done() for t in tasks)
    assert demand.count("ticker:BTCUSDT") == 0  # not counted until the upstream said yes
    source.gate.set()
    await asyncio.gather(*tasks)
    assert source.subscribed == ["ticker:BTCUSDT"]
    assert demand.count("ticker:BTCUSDT") == 5
    assert demand.upstream_subscribes == 1


async def test_refusal_reaches_every_waiter_and_leaves_count_zero(
    demand: Demand, source: FakeSource
) -> None:
    source.gate = asyncio.Event()
    source.refuse = SourceError("Unknown symbol 'BTCUSDT' upstream.")
    tasks = [asyncio.create_task(demand.acquire(ch())) for _ in range(3)]
    await eventually(lambda: source.subscribed != [], what="the upstream subscribe")
    source.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, SourceError) for r in results)
    assert {r.message for r in results} == {"Unknown symbol 'BTCUSDT' upstream."}  # type: ignore[union-attr]
    assert source.subscribed == ["ticker:BTCUSDT"]
    assert demand.count("ticker:BTCUSDT") == 0
    assert demand.active() == {}
    assert demand.upstream_subscribes == 0
    # A later try asks the upstream again (a refusal is not cached).
    source.refuse = None
    await demand.acquire(ch())
    assert source.subscribed == ["ticker:BTCUSDT"] * 2
    assert demand.count("ticker:BTCUSDT") == 1


async def test_unexpected_source_failure_becomes_a_source_error(
    demand: Demand, source: FakeSource
) -> None:
    source.refuse = RuntimeError("socket exploded: secret detail")
    with pytest.raises(SourceError) as info:
        await demand.acquire(ch())
    # The client gets the kind of failure, not the internals.
    assert info.value.message == "Upstream subscribe failed: RuntimeError"
    assert isinstance(info.value.__cause__, RuntimeError)
    assert demand.count("ticker:BTCUSDT") == 0


async def test_no_source_for_the_kind(demand: Demand) -> None:
    with pytest.raises(SourceError, match=r"No source is configured for 'pg:fill_event'"):
        await demand.acquire(ch("pg:fill_event"))
    assert demand.count("pg:fill_event") == 0


async def test_reacquire_within_linger_keeps_the_upstream(
    demand: Demand, source: FakeSource
) -> None:
    await demand.acquire(ch())
    demand.release("ticker:BTCUSDT")
    await demand.acquire(ch())  # back before the linger ran out
    await settle(demand)
    assert source.unsubscribed == []
    assert demand.count("ticker:BTCUSDT") == 1
    # The next release, left alone past the linger, does unsubscribe.
    demand.release("ticker:BTCUSDT")
    await settle(demand)
    assert source.unsubscribed == ["ticker:BTCUSDT"]


async def test_reacquire_within_linger_does_not_subscribe_upstream_again(
    demand: Demand, source: FakeSource
) -> None:
    await demand.acquire(ch())
    demand.release("ticker:BTCUSDT")
    await demand.acquire(ch())
    assert source.subscribed == ["ticker:BTCUSDT"]


async def test_after_the_linger_a_new_subscriber_subscribes_again(
    demand: Demand, source: FakeSource
) -> None:
    await demand.acquire(ch())
    demand.release("ticker:BTCUSDT")
    await settle(demand)
    assert source.unsubscribed == ["ticker:BTCUSDT"]
    await demand.acquire(ch())
    assert source.subscribed == ["ticker:BTCUSDT"] * 2
    assert demand.count("ticker:BTCUSDT") == 1


async def test_close_cancels_pending_lingers(source: FakeSource) -> None:
    d = Demand(lambda channel: source, linger_s=LINGER)
    await d.acquire(ch())
    d.release("ticker:BTCUSDT")
    await d.close()
    await settle(d)
    assert source.unsubscribed == []


async def test_a_cancelled_first_subscribe_releases_its_waiters(
    demand: Demand, source: FakeSource
) -> None:
    from cryptowire.errors import SourceError

    source.gate = asyncio.Event()
    first = asyncio.create_task(demand.acquire(ch()))
    await asyncio.sleep(0)
    second = asyncio.create_task(demand.acquire(ch()))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    with pytest.raises(SourceError, match="interrupted"):
        await asyncio.wait_for(second, 1.0)  # before the fix: waited for ever
    assert demand.count("ticker:BTCUSDT") == 0
