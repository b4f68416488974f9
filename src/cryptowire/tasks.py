"""A task supervisor: owns every background task, logs failures, restarts with capped backoff.

No task it starts dies silently: a task that raises is logged with its name and started
again after a jittered, capped delay; :meth:`Supervisor.stop` cancels and awaits them all.
A low-level module (it imports only :mod:`cryptowire.backoff`): sources, brokers, the
cluster and notifiers all own their tasks through it. :class:`KeyedLocks` serializes work per
key (a symbol) where the work awaits between reading and writing shared counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from cryptowire.backoff import backoff_delay

log = logging.getLogger("cryptowire.supervisor")


class Supervisor:
    """Keeps references to its tasks and restarts the ones marked ``restart``."""

    def __init__(self, name: str = "node") -> None:
        self.name = name
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.restarts: dict[str, int] = {}
        self._stopping = False

    def spawn(self, name: str, factory: Callable[[], Awaitable[None]], *,
              restart: bool = True, backoff_cap: float = 30.0) -> None:
        """Run ``factory()`` as task ``name``; restart it on failure when ``restart``."""
        if name in self._tasks and not self._tasks[name].done():
            raise RuntimeError(f"task {name!r} is already running")
        self._tasks[name] = asyncio.get_running_loop().create_task(
            self._run(name, factory, restart, backoff_cap), name=f"{self.name}:{name}"
        )

    async def _run(self, name: str, factory: Callable[[], Awaitable[None]], restart: bool,
                   cap: float) -> None:
        attempt = 0
        while True:
            try:
                await factory()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("task %s failed", name)
                if not restart or self._stopping:
                    return
                self.restarts[name] = self.restarts.get(name, 0) + 1
                await asyncio.sleep(backoff_delay(attempt, cap=cap))
                attempt += 1

    def running(self) -> list[str]:
        return [n for n, t in self._tasks.items() if not t.done()]

    async def stop(self) -> None:
        self._stopping = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._stopping = False  # a stopped supervisor may be started again (lease failover)


class _KeyLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class KeyedLocks:
    """One :class:`asyncio.Lock` per key, made on first use and dropped with its last user
    (so the map holds only the keys in use, however many keys clients name)."""

    def __init__(self) -> None:
        self._locks: dict[str, _KeyLock] = {}

    def __len__(self) -> int:
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = _KeyLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if not entry.users:
                del self._locks[key]
