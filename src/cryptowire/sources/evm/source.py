"""The on-chain source: one :class:`ChainWatcher` task per chain with RPC URLs, publishing
swaps and burns on ``swap:<chain>`` / ``swap:<chain>:<token>`` and ``burn:...``.

Watching does not depend on demand: the event log, REST history and Telegram alerts need
every event whether or not a socket listens, so :meth:`EvmSource.subscribe` only checks that
the chain is watched. It is given the node's store (the tables are migration ``0002``'s),
watchlist admin and, when configured, an alert notifier (Telegram): the node owns those.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from cryptowire.clock import now_ms
from cryptowire.core.channels import Channel
from cryptowire.core.source import PublishFn, SourceState, SourceStatus
from cryptowire.errors import SourceError
from cryptowire.events import Event
from cryptowire.onchain import OnchainEvent
from cryptowire.settings import Settings
from cryptowire.sources.evm.decode import Watchlist
from cryptowire.sources.evm.rpc import RpcPool
from cryptowire.sources.evm.tokens import TokenAdmin
from cryptowire.sources.evm.watcher import ChainWatcher
from cryptowire.store.evm import EvmStore
from cryptowire.tasks import Supervisor

if TYPE_CHECKING:
    from cryptowire.store.sql import SqlStore

log = logging.getLogger("cryptowire.sources.evm")

#: Called with each batch of new events and the watchlist they were decoded with (Telegram).
EventsListener = Callable[[list[OnchainEvent], Watchlist], None]


class Notifier(Protocol):
    """What the source needs of an alert sender (Telegram): it is offered each batch."""

    def offer(self, events: list[OnchainEvent], watchlist: Watchlist) -> None: ...

    def status(self) -> dict[str, Any]: ...


def channels_of(event: OnchainEvent, chain_name: str) -> tuple[str, str]:
    return (f"{event.kind}:{chain_name}", f"{event.kind}:{chain_name}:{event.token}")


class EvmSource:
    """Swaps and burns of the watchlist's tokens on every configured chain."""

    name = "evm"
    kinds = frozenset({"swap", "burn"})

    def __init__(self, settings: Settings, *, store: SqlStore, admin: TokenAdmin,
                 notifier: Notifier | None = None) -> None:
        self.settings = settings
        self._sql = store
        self.store: EvmStore | None = None
        self.admin = admin
        self.pools: dict[int, RpcPool] = {}
        self.watchers: dict[str, ChainWatcher] = {}
        self.listeners: list[EventsListener] = []
        self.notifier = notifier
        if notifier is not None:
            self.listeners.append(notifier.offer)
        self.supervisor = Supervisor("evm")
        self._publish: PublishFn | None = None
        self.messages = 0
        self.last_message_ms: int | None = None
        self.started = False

    async def start(self, publish: PublishFn) -> None:
        self._publish = publish
        self.store = EvmStore(self._sql.engine)
        evm = self.settings.evm
        for chain in evm.chains:
            if not chain.rpc_urls:
                continue
            pool = RpcPool(chain.rpc_urls, timeout_s=evm.rpc_timeout_s,
                           backoff_s=evm.rpc_backoff_s, backoff_cap_s=evm.rpc_backoff_cap_s)
            await pool.start()
            self.pools[chain.id] = pool
            watcher = ChainWatcher(chain, pool, self.store, on_events=self._on_events,
                                   on_removed=self._on_removed, reorg_window=evm.reorg_window)
            self.watchers[chain.name] = watcher
            self.supervisor.spawn(f"chain:{chain.name}", watcher.run)
        self.started = True

    async def stop(self) -> None:
        await self.supervisor.stop()
        for pool in self.pools.values():
            await pool.close()
        self.pools.clear()
        self.started = False

    async def subscribe(self, channel: Channel) -> None:
        if channel.chain not in self.watchers:
            raise SourceError(f"Chain '{channel.chain}' is not watched: configure "
                              f"evm.chains rpc_urls for it.")

    async def unsubscribe(self, channel: Channel) -> None:
        return None

    async def _emit(self, events: list[OnchainEvent], event_type: str) -> None:
        assert self._publish is not None
        names = {c.id: c.name for c in self.settings.evm.chains}
        for ev in events:
            for channel in channels_of(ev, names[ev.chain]):
                await self._publish(Event(channel=channel, data=ev.payload, type=event_type,
                                          ts_source=ev.time or None, source=self.name))
        self.messages += len(events)
        self.last_message_ms = now_ms()

    async def _on_events(self, events: list[OnchainEvent], watchlist: Watchlist) -> None:
        await self._emit(events, "update")
        for listener in self.listeners:
            try:
                listener(events, watchlist)
            except Exception:
                log.exception("on-chain events listener failed")

    async def _on_removed(self, events: list[OnchainEvent], watchlist: Watchlist) -> None:
        await self._emit(events, "removed")

    def status(self) -> SourceStatus:
        chains: dict[str, Any] = {n: w.status() for n, w in self.watchers.items()}
        errors = sum(w.stats.errors for w in self.watchers.values())
        state: SourceState
        if not self.started:
            state = "stopped"
        elif not self.watchers:
            state = "down"
        elif any(p.healthy_urls == 0 for p in self.pools.values()):
            state = "connecting"
        else:
            state = "up"
        detail = ", ".join(f"{n}@{w.stats.cursor}" for n, w in self.watchers.items()) \
            or "no chain has rpc_urls"
        return SourceStatus(name=self.name, state=state, detail=detail,
                            last_message_ms=self.last_message_ms, messages=self.messages,
                            errors=errors, topics=len(self.watchers),
                            extra={"chains": chains, "telegram": self.notifier.status()
                                   if self.notifier is not None else None})
