"""In-process broker: history in memory, synchronous delivery to the local hub."""

from __future__ import annotations

import asyncio

from cryptowire.bus.base import DeliverFn
from cryptowire.core.history import HistoryStore
from cryptowire.core.state import StateStore
from cryptowire.events import Event, Publication
from cryptowire.settings import HistorySettings
from cryptowire.tasks import Supervisor


class MemoryBroker:
    """The default broker of a single process (``memory://``)."""

    name = "memory"

    def __init__(self, settings: HistorySettings) -> None:
        self._history = HistoryStore(settings.size, settings.ttl_s, settings.max_channels,
                                     max_bytes=settings.max_bytes,
                                     max_channel_bytes=settings.max_channel_bytes,
                                     shares=settings.kind_shares)
        # The current state of each stateful channel (ticker, kline, book), for subscribers
        # to start from (PROTOCOLS.md 4.2); as many channels as history may hold.
        self._states = StateStore(settings.max_channels)
        # Entries are freed within about this long after they reach ttl_s, read or not.
        self._sweep_every_s = min(1.0, max(0.05, settings.ttl_s / 4))
        self._supervisor = Supervisor("memory-broker")
        self._deliver: DeliverFn | None = None
        self.published = 0

    async def start(self, deliver: DeliverFn) -> None:
        self._deliver = deliver
        self._supervisor.spawn("history-sweeper", self._sweep_forever)

    async def stop(self) -> None:
        self._deliver = None
        await self._supervisor.stop()

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_every_s)
            self._history.sweep()

    async def publish(self, event: Event) -> Publication:
        """Append and deliver at once (the memory broker never waits). It does the work
        itself rather than call :meth:`publish_now`: it is every source's publish."""
        pub = self._history.append(event)
        self._states.apply(pub)
        self.published += 1
        if self._deliver is not None:
            self._deliver(pub)
        return pub

    def publish_now(self, event: Event) -> Publication:
        """:meth:`publish`, synchronous (the fan-out benchmark's feed)."""
        pub = self._history.append(event)
        self._states.apply(pub)
        self.published += 1
        if self._deliver is not None:
            self._deliver(pub)
        return pub

    async def subscribe(self, channel: str) -> None:
        self._history.set_subscribed(channel, True)

    async def unsubscribe(self, channel: str) -> None:
        self._history.set_subscribed(channel, False)

    async def position(self, channel: str) -> tuple[str, int]:
        return self._history.position(channel)

    async def history_since(
        self, channel: str, epoch: str, offset: int
    ) -> list[Publication] | None:
        return self._history.since(channel, epoch, offset)

    async def state(self, channel: str) -> Publication | None:
        return self._states.snapshot(channel)

    def healthy(self) -> bool:
        return True

    def history_bytes(self) -> int:
        """Bytes of history this node holds (counted against ``history.max_bytes``)."""
        return self._history.nbytes

    def stats(self) -> dict[str, object]:
        return {"type": "memory", "published": self.published,
                "channels_with_history": len(self._history),
                "history": self._history.budget.stats()}
