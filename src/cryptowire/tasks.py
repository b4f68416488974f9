"""A task supervisor: owns every background task, logs failures, restarts with capped backoff.

No task it starts dies silently: a task that raises is logged with its name and started
again after a jittered, capped delay; :meth:`Supervisor.stop` cancels and awaits them all.
A low-level module (it imports only :mod:`cryptowire.backoff`): sources, brokers, the
cluster and notifiers all own their tasks through it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

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
