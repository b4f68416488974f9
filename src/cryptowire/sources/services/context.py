"""What the services read: a view of the node, and small shared pieces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cryptowire.bus.base import Broker
from cryptowire.clock import iso, now_ms
from cryptowire.core.channels import ChannelGrammar
from cryptowire.core.demand import Demand
from cryptowire.core.source import Source, SourceStatus
from cryptowire.events import Publication
from cryptowire.settings import Settings

if TYPE_CHECKING:
    from cryptowire.sources.services.feeds import NewsFeeds
    from cryptowire.sources.services.jobs import JobRunner
    from cryptowire.store.sql import SqlStore


class NodeView(Protocol):
    """The parts of :class:`~cryptowire.app.node.Node` the services read."""

    @property
    def settings(self) -> Settings: ...

    @property
    def broker(self) -> Broker: ...

    @property
    def demand(self) -> Demand: ...

    @property
    def grammar(self) -> ChannelGrammar: ...

    @property
    def store(self) -> SqlStore | None: ...

    @property
    def store_ok(self) -> bool: ...

    @property
    def sources(self) -> Sequence[Source]: ...

    def source_statuses(self) -> list[SourceStatus]: ...


@dataclass(slots=True)
class ServiceContext:
    """Everything a service needs, shared by all of them."""

    node: NodeView
    runner: JobRunner
    news: NewsFeeds

    @property
    def settings(self) -> Settings:
        return self.node.settings


class Service(Protocol):
    """One service's state while its job runs."""

    async def collect(self) -> dict[str, Any]:
        """The ``data`` of the next update."""

    async def close(self) -> None:
        """Release what the service holds (upstream demand)."""


def stamp(data: dict[str, Any]) -> dict[str, Any]:
    """Add the seed's ``timestamp`` (ISO 8601 with ``Z``) to a data object."""
    data["timestamp"] = iso(now_ms())
    return data


def not_configured(reason: str, **extra: Any) -> dict[str, Any]:
    return stamp({"status": "not_configured", "reason": reason, **extra})


async def latest(broker: Broker, channel: str) -> Publication | None:
    """The newest publication of ``channel`` still in the broker's history."""
    epoch, top = await broker.position(channel)
    if top <= 0:
        return None
    pubs = await broker.history_since(channel, epoch, top - 1)
    return pubs[-1] if pubs else None
