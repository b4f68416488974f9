"""The :class:`~.source.ExchangeSource`'s records: what it reads of its settings section and
one subscribed topic, with the pacing of its re-synchronisations."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Protocol

from cryptowire.backoff import backoff_delay
from cryptowire.core.channels import Channel
from cryptowire.sources.exchange.codec import FRAME_ERRORS, Data, Pub, TopicState
from cryptowire.sources.exchange.venue import Market, Topic

#: The start of a gap's reason after a lost socket (then why it was lost).
RECONNECTED = "upstream reconnected: "
#: A book's gap reason when one of its updates could not be published (the bus refused it):
#: the book is re-synchronised rather than left one update short.
LOST_UPDATE = "an update could not be published (bus error): re-synchronising"

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


class Counted(Protocol):
    """Where a dropped frame is counted (a :class:`~.connection.Connection`)."""

    name: str
    errors: int


def apply_guarded(sub: TopicSub, item: Data, conn: Counted, log: logging.Logger) -> list[Pub]:
    """``sub``'s publications for ``item``; a frame its state cannot read is counted on
    ``conn`` and dropped for this topic alone (the other topics of a shared stream, such as
    OKX's one ``liquidation-orders`` stream of every swap, still get theirs)."""
    try:
        return list(sub.state.apply(item, sub.channels))
    except FRAME_ERRORS as exc:
        conn.errors += 1
        log.warning("%s: dropped a frame of %s (%s)", conn.name, sub.topic.key, exc)
        return []
