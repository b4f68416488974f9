"""ServicesSource: the :class:`~cryptowire.core.source.Source` serving ``service:<name>``.

The first subscriber of ``service:X`` (through demand, like any upstream channel) starts X's
job; the last one leaving stops it. Each run publishes one ``update`` whose data is what the
service collected, or ``{"status": "error", ...}`` when collecting failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from cryptowire.clock import now_ms
from cryptowire.core.channels import SERVICES, Channel
from cryptowire.core.source import PublishFn, SourceStatus
from cryptowire.errors import SourceError
from cryptowire.events import Event
from cryptowire.sources.services.context import NodeView, Service, ServiceContext, stamp
from cryptowire.sources.services.feeds import NewsFeeds
from cryptowire.sources.services.jobs import JobRunner
from cryptowire.sources.services.market import MarketData, WhaleTracking
from cryptowire.sources.services.news import News, Sentiment
from cryptowire.sources.services.system import (
    ChainStatus,
    HealthChecker,
    HuggingFace,
    Persistence,
    Scheduler,
)

log = logging.getLogger("cryptowire.sources.services")

_FACTORIES: dict[str, Callable[[ServiceContext], Service]] = {
    "market_data": MarketData,
    "whale_tracking": WhaleTracking,
    "news": News,
    "sentiment": Sentiment,
    "health_checker": HealthChecker,
    "persistence": Persistence,
    "scheduler": Scheduler,
    "huggingface": HuggingFace,
    "pool_manager": lambda ctx: ChainStatus(ctx, "pool_manager"),
    "rpc_nodes": lambda ctx: ChainStatus(ctx, "rpc_nodes"),
    "explorers": lambda ctx: ChainStatus(ctx, "explorers"),
    "onchain": lambda ctx: ChainStatus(ctx, "onchain"),
}
assert set(_FACTORIES) == set(SERVICES)


class ServicesSource:
    """Periodic publishers for the seed 004 services, run only while subscribed."""

    name = "services"
    kinds = frozenset({"service"})

    def __init__(self, node: NodeView) -> None:
        cfg = node.settings.services
        intervals = {s: float(getattr(cfg, f"{s}_interval_s")) for s in SERVICES}
        self.runner = JobRunner(intervals)
        self.ctx = ServiceContext(node=node, runner=self.runner, news=NewsFeeds(cfg))
        self._running: dict[str, Service] = {}
        self._publish: PublishFn | None = None
        self._status = SourceStatus(name="services", state="stopped",
                                    detail="data services (/ws/master), on demand")

    async def start(self, publish: PublishFn) -> None:
        self._publish = publish
        self._status.state = "up"

    async def stop(self) -> None:
        await self.runner.stop_all()
        for service in self._running.values():
            await service.close()
        self._running.clear()
        self._status.state = "stopped"
        self._status.topics = 0

    async def subscribe(self, channel: Channel) -> None:
        name = channel.key or ""
        if name not in _FACTORIES:
            raise SourceError(f"Unknown service '{name}'. Use one of {', '.join(SERVICES)}.")
        if name in self._running:
            return
        service = _FACTORIES[name](self.ctx)
        self._running[name] = service
        self.runner.start(name, lambda: self._run_once(name, service))
        self._status.topics = len(self._running)

    async def unsubscribe(self, channel: Channel) -> None:
        name = channel.key or ""
        service = self._running.pop(name, None)
        await self.runner.stop(name)
        if service is not None:
            await service.close()
        self._status.topics = len(self._running)

    def active(self) -> list[str]:
        return list(self._running)

    def status(self) -> SourceStatus:
        self._status.extra = {"active_services": self.active()}
        return self._status

    async def _run_once(self, name: str, service: Service) -> None:
        assert self._publish is not None
        failure: Exception | None = None
        try:
            data: dict[str, Any] = await service.collect()
        except Exception as exc:
            failure = exc
            data = stamp({"status": "error",
                          "error": f"{type(exc).__name__}: {exc}"[:200]})
        await self._publish(Event(channel=f"service:{name}", data=data, source="services"))
        self._status.messages += 1
        self._status.last_message_ms = now_ms()
        if failure is not None:
            self._status.errors += 1
            raise failure
