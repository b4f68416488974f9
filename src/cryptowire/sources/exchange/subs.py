"""The :class:`~.source.ExchangeSource`'s records: what it reads of its settings section and
one subscribed topic."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from cryptowire.core.channels import Channel
from cryptowire.sources.exchange.codec import TopicState
from cryptowire.sources.exchange.venue import Market, Topic


class VenueOptions(Protocol):
    """What the source reads of its settings section (``[bybit]``, ``[binance]``...)."""

    @property
    def enabled(self) -> bool: ...


@dataclass(slots=True, eq=False)
class TopicSub:
    """One subscribed topic: its state and the channels it serves (in subscription order)."""

    market: Market
    topic: Topic
    state: TopicState
    channels: dict[str, Channel]
    fetch: asyncio.Task[None] | None = field(default=None, repr=False)
