"""BboSource against a node made of small fakes at its seam (``BboNode``: the real channel
grammar, demand that records, a hub that hands the test its watchers, a broker whose stored
states the test sets): what it publishes for book publications the test delivers."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from tests.waiting import eventually

from cryptowire.core.channels import Channel, ChannelGrammar
from cryptowire.errors import SourceError
from cryptowire.events import Event, Publication
from cryptowire.settings.bbo import BboSettings
from cryptowire.sources.bbo import BboSource
from cryptowire.sources.bbo.feeds import Watcher

OKX, BYBIT = "book:1:BTCUSDT@okx", "book:1:BTCUSDT"


class FakeNode:
    def __init__(self, refuse: set[str] | None = None) -> None:
        self.grammar = ChannelGrammar()
        self.demand = self
        self.hub = self
        self.broker = self
        self.refuse = refuse or set()
        self.held: list[str] = []
        self.watchers: dict[str, Watcher] = {}
        self.states: dict[str, Publication] = {}
        self.state_reads: list[str] = []

    async def acquire(self, channel: Channel) -> None:
        if channel.venue in self.refuse:
            raise SourceError(f"{channel.venue} does not list {channel.symbol}")
        self.held.append(channel.name)

    def release(self, name: str) -> None:
        self.held.remove(name)

    async def watch(self, channel: str, fn: Watcher) -> None:
        self.watchers[channel] = fn

    async def unwatch(self, channel: str, fn: Watcher) -> None:
        assert self.watchers.pop(channel) is fn

    async def state(self, channel: str) -> Publication | None:
        self.state_reads.append(channel)
        return self.states.get(channel)


def pub(channel: str, offset: int, kind: str, bids: list[list[str]],
        asks: list[list[str]], ts: int = 1000) -> Publication:
    data = {"symbol": "BTCUSDT", "bids": bids, "asks": asks}
    return Publication(channel=channel, type=kind, epoch="e", offset=offset, ts=ts,
                       ts_received=ts, source="x", data_json=orjson.dumps(data))


@pytest.fixture
async def running() -> Any:
    node = FakeNode(refuse={"binance"})
    published: list[Event] = []

    async def publish(event: Event) -> None:
        published.append(event)

    source = BboSource(BboSettings(), node, clock=lambda: 1500)
    await source.start(publish)
    try:
        yield node, source, published
    finally:
        await source.stop()


async def test_holes_are_read_again_from_the_broker_and_deep_changes_publish_nothing(
        running: Any) -> None:
    node, source, published = running
    await source.subscribe(ChannelGrammar().parse("bbo:BTCUSDT"))
    assert sorted(node.held) == [BYBIT, OKX]  # binance refused: left out
    await eventually(lambda: len(published) == 1, 2, "the first state")
    assert published[0].type == "snapshot"
    assert published[0].data["excluded"] == {"bybit": "waiting", "okx": "waiting"}

    node.watchers[OKX](pub(OKX, 1, "snapshot", [["100", "1"]], [["101", "1"]]))
    await eventually(lambda: len(published) == 2, 2, "okx in")
    assert published[1].type == "update"
    assert published[1].data["bid"] == {"price": "100", "size": "1", "venue": "okx"}

    # A hole (offset 3 after 1): the book is unknown; the broker's state is read at once.
    node.states[OKX] = pub(OKX, 3, "snapshot", [["100.5", "2"]], [["101", "1"]], ts=1200)
    node.watchers[OKX](pub(OKX, 3, "delta", [["100.5", "2"]], []))
    await eventually(lambda: published[-1].data["bid"]["price"] == "100.5", 2, "re-read")
    assert OKX in node.state_reads and published[-1].data["venues"]["okx"]["ts"] == 1200
    count = len(published)
    # A change below the top (cut away at depth 1), a newer ts alone: nothing to publish.
    node.watchers[OKX](pub(OKX, 4, "delta", [["90", "7"]], [], ts=1250))
    for _ in range(3):
        await asyncio.sleep(0)  # the publisher's turn (it would publish within one)
    assert len(published) == count
    node.watchers[BYBIT](pub(BYBIT, 1, "snapshot", [["99", "1"]], [["102", "1"]]))
    await eventually(lambda: "bybit" in published[-1].data["venues"], 2, "bybit in")
    assert len(published) == count + 1
    assert published[-1].data["venues"]["okx"]["ts"] == 1250  # the freshest, when sent

    # A gap is not re-read (the broker knows no better): out until the next snapshot.
    reads = len(node.state_reads)
    node.watchers[OKX](Publication(channel=OKX, type="gap", epoch="e", offset=5, ts=1300,
                                   ts_received=1300, source="x", data_json=b'{"reason":"x"}'))
    await eventually(lambda: published[-1].data["excluded"].get("okx") == "gap", 2, "gap")
    assert len(node.state_reads) == reads

    await source.unsubscribe(ChannelGrammar().parse("bbo:BTCUSDT"))
    assert node.held == [] and node.watchers == {}
