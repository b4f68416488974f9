"""Redis history is bounded by age and bytes at publication time, not only by count and on
read: a busy stream never keeps entries older than ``history.ttl_s`` nor more than
``history.max_channel_bytes`` of payload."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from cryptowire.bus.redis import RedisBroker
from cryptowire.clock import now_ms
from cryptowire.events import Event
from cryptowire.settings import BusSettings, HistorySettings

pytestmark = pytest.mark.integration

Make = Callable[..., Any]


@pytest.fixture
async def make_broker(redis_url: str, prefix: str) -> AsyncIterator[Make]:
    brokers: list[RedisBroker] = []

    async def make(**history: Any) -> RedisBroker:
        broker = RedisBroker(redis_url, HistorySettings(**history),
                             BusSettings(url=redis_url, prefix=prefix))
        await broker.start(lambda pub: None)
        async with asyncio.timeout(5):
            while not broker.healthy():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:
        await broker.stop()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def ev(channel: str, i: int, *, pad: int = 0, at: int | None = None) -> Event:
    return Event(channel=channel, data={"i": i, "pad": "x" * pad}, source="test",
                 ts_received=now_ms() if at is None else at)


async def test_entries_older_than_the_ttl_go_at_the_next_publication(
        make_broker: Make, redis: Redis, prefix: str) -> None:
    b = await make_broker(ttl_s=60.0)
    stream = f"{prefix}:stream:app:aging"
    aging = now_ms() - 59_800  # 200 ms from the end of its TTL
    first = await b.publish(ev("app:aging", 0, at=aging))
    await b.publish(ev("app:aging", 1, at=aging))
    assert await redis.xlen(stream) == 2
    async with asyncio.timeout(5):
        while now_ms() <= aging + 60_000:  # noqa: ASYNC110 - waits for the clock itself
            await asyncio.sleep(0.02)
    fresh = await b.publish(ev("app:aging", 2))
    assert await redis.xlen(stream) == 1  # nobody read the stream
    assert await b.history_since("app:aging", first.epoch, 2) == [fresh]
    assert await b.history_since("app:aging", first.epoch, 0) is None


async def test_a_stream_keeps_at_most_max_channel_bytes(
        make_broker: Make, redis: Redis, prefix: str) -> None:
    b = await make_broker(max_channel_bytes=1_000_000)
    sent = [await b.publish(ev("app:big", i, pad=300_000)) for i in range(10)]
    assert await redis.xlen(f"{prefix}:stream:app:big") == 3
    held = int(await redis.hget(f"{prefix}:meta:app:big", "b") or 0)
    assert 900_000 < held <= 1_000_000
    epoch = sent[0].epoch
    assert await b.history_since("app:big", epoch, 7) == sent[7:]
    assert await b.history_since("app:big", epoch, 6) is None  # a gap, never a skip
    assert await b.history_since("app:big", epoch, 0) is None


async def test_a_message_bigger_than_the_channel_bound_is_published_not_kept(
        make_broker: Make, redis: Redis, prefix: str) -> None:
    b = await make_broker(max_channel_bytes=100_000)
    small = await b.publish(ev("app:huge", 0, pad=10))
    huge = await b.publish(ev("app:huge", 1, pad=200_000))
    assert huge.offset == 2
    assert await redis.exists(f"{prefix}:stream:app:huge") == 0
    assert await b.history_since("app:huge", small.epoch, 2) == []
    assert await b.history_since("app:huge", small.epoch, 1) is None
    after = await b.publish(ev("app:huge", 2, pad=10))  # the count restarts from nothing
    assert await b.history_since("app:huge", small.epoch, 2) == [after]
    assert int(await redis.hget(f"{prefix}:meta:app:huge", "b") or 0) < 1_000


async def test_the_count_bound_holds(make_broker: Make, redis: Redis, prefix: str) -> None:
    b = await make_broker(size=32)  # trimmed back to 32 once past 32 + 32/16
    sent = [await b.publish(ev("app:n", i)) for i in range(100)]
    assert 32 <= await redis.xlen(f"{prefix}:stream:app:n") <= 34
    assert await b.history_since("app:n", sent[0].epoch, 68) == sent[68:]
    assert await b.history_since("app:n", sent[0].epoch, 67) is None


async def test_stop_is_not_lost_in_a_ping_that_turns_cancellation_into_an_error(
        make_broker: Make) -> None:
    # redis-py may turn a cancellation that lands during a command into a ConnectionError;
    # the watchdog treated that as "Redis is down" and went on pinging, and stop() waited
    # for it forever (seen as a teardown hang after a burst of commands).
    from redis.exceptions import ConnectionError as RedisConnectionError

    b = await make_broker()
    pinging = asyncio.Event()

    async def ping_that_hangs() -> bool:
        pinging.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RedisConnectionError("connection closed while reading") from None
        return True

    b._probe.ping = ping_that_hangs  # type: ignore[method-assign]
    async with asyncio.timeout(5):
        await pinging.wait()
        await b.stop()
