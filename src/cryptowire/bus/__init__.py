"""Brokers carry publications between sources and hubs, and keep history.

``memory://`` (:class:`~cryptowire.bus.memory.MemoryBroker`) for one process;
``redis://`` for many (scale-out). Both implement :class:`~cryptowire.bus.base.Broker`.
"""

from __future__ import annotations

from cryptowire.bus.base import Broker
from cryptowire.errors import ConfigError
from cryptowire.settings import Settings


def create_broker(settings: Settings) -> Broker:
    """Pick the broker implementation by the URL scheme of ``settings.bus.url``."""
    url = settings.bus.url
    scheme = url.split("://", 1)[0]
    if scheme == "memory":
        from cryptowire.bus.memory import MemoryBroker

        return MemoryBroker(settings.history)
    if scheme in ("redis", "rediss", "unix"):
        from cryptowire.bus.redis import RedisBroker

        return RedisBroker(url, settings.history, settings.bus)
    raise ConfigError(f"bus.url: unsupported scheme '{scheme}' (use memory:// or redis://)")
