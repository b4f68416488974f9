"""The broker seam: publish with history, node-level subscriptions, recovery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from cryptowire.events import Event, Publication

DeliverFn = Callable[[Publication], None]


class Broker(Protocol):
    """Stamps events with ``(epoch, offset)``, keeps history, delivers to subscribed hubs."""

    name: str

    async def start(self, deliver: DeliverFn) -> None:
        """Begin delivering publications of subscribed channels to ``deliver``."""

    async def stop(self) -> None: ...

    async def publish(self, event: Event) -> Publication:
        """Append ``event`` to its channel's history and deliver it."""

    async def subscribe(self, channel: str) -> None:
        """This node has local subscribers of ``channel`` now."""

    async def unsubscribe(self, channel: str) -> None:
        """This node's last local subscriber of ``channel`` left."""

    async def position(self, channel: str) -> tuple[str, int]:
        """The channel's current ``(epoch, top offset)``."""

    async def history_since(
        self, channel: str, epoch: str, offset: int
    ) -> list[Publication] | None:
        """Publications after ``offset`` in ``epoch``, or ``None`` when they are lost."""

    async def state(self, channel: str) -> Publication | None:
        """The current state of a stateful channel (ticker, kline, book) as a ``snapshot``
        publication carrying the offset of the last publication it includes; ``None`` when
        it is unknown (nothing yet, a book after a gap) or the channel has none."""

    def healthy(self) -> bool: ...

    def history_bytes(self) -> int:
        """Bytes of history this process holds (``history.max_bytes`` bounds it)."""

    def stats(self) -> dict[str, object]: ...
