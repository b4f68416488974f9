"""The :class:`~.source.ExchangeSource`'s records: what it reads of its settings section and
one subscribed topic, with the pacing of its re-synchronisations."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from cryptowire.backoff import backoff_delay
from cryptowire.core.channels import Channel
from cryptowire.sources.exchange.codec import TopicState
from cryptowire.sources.exchange.venue import Market, Topic

#: A topic that re-synchronised again within this long backs off (see TopicSub.resync_delay).
RESYNC_CALM_S = 10.0
RESYNC_BASE_S = 0.5
RESYNC_MAX_S = 30.0


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
    #: The task re-synchronising it (a REST snapshot fetch, or a paced re-subscribe).
    fetch: asyncio.Task[None] | None = field(default=None, repr=False)
    #: Re-synchronisations in a row (each within :data:`RESYNC_CALM_S` of the one before).
    resyncs: int = 0
    resync_due: float = 0.0  # loop time the latest one was (or will be) sent

    def resync_delay(self, now: float) -> float:
        """How long to wait before re-synchronising again: nothing the first time, then a
        capped, jittered backoff while the book keeps breaking (a venue sending broken
        snapshots must not be re-subscribed at its frame rate), reset after a calm spell."""
        if now - self.resync_due > RESYNC_CALM_S:
            self.resyncs = 0
        delay = 0.0 if not self.resyncs else backoff_delay(
            self.resyncs - 1, base=RESYNC_BASE_S, cap=RESYNC_MAX_S)
        self.resyncs += 1
        self.resync_due = now + delay
        return delay
