"""What :class:`~cryptowire.sources.exchange.source.ExchangeSource` does with a venue's
declaration, minus the sockets: channels -> topics (shared by key) -> states, frames routed by
stream, REST snapshots handed in by the test. For unit tests of the Binance codec."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.unit.sources.venues.binance_support import channel

from cryptowire.core.channels import Channel
from cryptowire.settings import BinanceSettings
from cryptowire.sources.exchange import codec
from cryptowire.sources.exchange.venue import Market, Topic, Venue
from cryptowire.sources.venues.binance.venue import declare

URLS = BinanceSettings()  # the documented defaults
MARKET_KEY = {"futures": "binance", "spot": "binance-spot"}


def venue() -> Venue:
    return declare(URLS)


@dataclass(eq=False)
class Sub:
    topic: Topic
    state: codec.TopicState
    channels: dict[str, Channel] = field(default_factory=dict)


class Harness:
    """One market of the Binance venue, driven by hand."""

    def __init__(self, market: str) -> None:
        self.market: Market = venue().markets[MARKET_KEY[market]]
        self.topics: dict[str, Sub] = {}
        self.breaks: list[codec.Break] = []
        self.items: list[codec.Item] = []

    def add(self, name: str) -> tuple[Sub, list[codec.Pub]]:
        ch = channel(name)
        topic = self.market.topic(ch, self.market)
        sub = self.topics.get(topic.key)
        if sub is None:
            sub = self.topics[topic.key] = Sub(topic, self.market.codec.state(topic, self.market),
                                               {ch.name: ch})
            return sub, []
        sub.channels[ch.name] = ch
        return sub, list(sub.state.added(ch))

    def remove(self, name: str) -> None:
        ch = channel(name)
        topic = self.market.topic(ch, self.market)
        sub = self.topics[topic.key]
        sub.channels.pop(ch.name, None)
        if not sub.channels:
            del self.topics[topic.key]

    def feed(self, raw: str | bytes) -> list[codec.Pub]:
        pubs: list[codec.Pub] = []
        for item in self.market.codec.parse(raw):
            self.items.append(item)
            if not isinstance(item, codec.Data):
                continue
            for sub in list(self.topics.values()):
                if any(s.key == item.stream for s in sub.topic.streams):
                    pubs += list(sub.state.apply(item, sub.channels))
                    self._settle(sub)
        return pubs

    def snapshot(self, key: str, body: Any) -> list[codec.Pub]:
        sub = self.topics[key]
        pubs = list(sub.state.on_snapshot(body, sub.channels))
        self._settle(sub)
        return pubs

    def wants(self, key: str) -> str | None:
        return self.topics[key].state.snapshot_request()

    def _settle(self, sub: Sub) -> None:
        broken, sub.state.broken = sub.state.broken, None
        if broken is not None:
            self.breaks.append(broken)
