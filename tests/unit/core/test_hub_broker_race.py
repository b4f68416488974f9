"""A second subscriber of a channel whose broker subscribe is still unconfirmed waits for it:
had it gone on, it would read the stream's position, miss what is published before the
broker confirms (Redis pub/sub delivers only after SUBSCRIBE is acknowledged) and get a hole
in its offsets with no gap to say so."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.unit.core.test_hub import CountingEncoder, FakeTransport, Gated, frames, tick

from cryptowire.bus.memory import MemoryBroker
from cryptowire.core.channels import ChannelGrammar
from cryptowire.core.demand import Demand
from cryptowire.core.hub import Hub
from cryptowire.core.session import Principal, Session
from cryptowire.events import Event, Publication
from cryptowire.settings import HistorySettings

GRAMMAR = ChannelGrammar()


class PubSubLike(MemoryBroker):
    """A memory broker that, like Redis pub/sub, delivers a channel to this node only once
    its subscribe is confirmed (here: once ``gate`` opens)."""

    def __init__(self) -> None:
        super().__init__(HistorySettings(size=100))
        self.gate = asyncio.Event()
        self.confirmed: set[str] = set()

    async def start(self, deliver: Any) -> None:
        def filtered(pub: Publication) -> None:
            if pub.channel in self.confirmed:
                deliver(pub)
        await super().start(filtered)

    async def subscribe(self, channel: str) -> None:
        await super().subscribe(channel)
        await self.gate.wait()
        self.confirmed.add(channel)


@pytest.mark.parametrize("name", ["ticker:BTCUSDT", "app:x"])
async def test_a_second_subscriber_waits_for_the_broker_and_gets_no_hole(name: str) -> None:
    broker = PubSubLike()
    source = Gated()
    source.gate.set()
    demand = Demand(lambda channel: source, linger_s=0.01)
    hub = Hub(broker, demand, outbound_limit=64 * 1024)
    await broker.start(hub.deliver)

    def session() -> Session:
        s = Session(FakeTransport(), CountingEncoder(), lambda s, c, r: None,
                    principal=Principal())
        hub.register(s)
        return s

    a, b = session(), session()
    broker.publish_now(Event(channel=name, data={"v": 1}))
    first = asyncio.ensure_future(hub.subscribe(a, [GRAMMAR.parse(name)]))
    await tick()
    second = asyncio.ensure_future(hub.subscribe(b, [GRAMMAR.parse(name)]))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not second.done(), "the second subscribe went on before the broker confirmed"
    broker.publish_now(Event(channel=name, data={"v": 2}))  # published, not delivered here
    broker.gate.set()
    await asyncio.gather(first, second)
    broker.publish_now(Event(channel=name, data={"v": 3}))
    await tick()
    for sess, result in ((a, first.result()), (b, second.result())):
        start = result.positions[name][1]
        got = [start] + [o for o, _ in frames(sess) if o > start]
        assert got == list(range(got[0], 4)), f"a hole: {got}"
    await demand.close()
