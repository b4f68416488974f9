"""In-process broker: history in memory, synchronous delivery to the local hub."""

from __future__ import annotations

from cryptowire.bus.base import DeliverFn
from cryptowire.core.history import HistoryStore
from cryptowire.events import Event, Publication
from cryptowire.settings import HistorySettings


class MemoryBroker:
    """The default broker of a single process (``memory://``)."""

    name = "memory"

    def __init__(self, settings: HistorySettings) -> None:
        self._history = HistoryStore(settings.size, settings.ttl_s, settings.max_channels)
        self._deliver: DeliverFn | None = None
        self.published = 0

    async def start(self, deliver: DeliverFn) -> None:
        self._deliver = deliver

    async def stop(self) -> None:
        self._deliver = None

    async def publish(self, event: Event) -> Publication:
        return self.publish_now(event)

    def publish_now(self, event: Event) -> Publication:
        """Synchronous publish (the memory broker never waits)."""
        pub = self._history.append(event)
        self.published += 1
        if self._deliver is not None:
            self._deliver(pub)
        return pub

    async def subscribe(self, channel: str) -> None:
        return None

    async def unsubscribe(self, channel: str) -> None:
        return None

    async def position(self, channel: str) -> tuple[str, int]:
        return self._history.position(channel)

    async def history_since(
        self, channel: str, epoch: str, offset: int
    ) -> list[Publication] | None:
        return self._history.since(channel, epoch, offset)

    def healthy(self) -> bool:
        return True

    def stats(self) -> dict[str, object]:
        return {"type": "memory", "published": self.published,
                "channels_with_history": len(self._history)}
