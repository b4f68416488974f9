"""The services' own scheduler: one periodic job per running service, with its bookkeeping.

The ``scheduler`` service reports these jobs (next run, last duration, status), so what it
says is what actually runs. Every task is owned here and cancelled on stop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cryptowire.clock import iso, now_ms

log = logging.getLogger("cryptowire.sources.services")


@dataclass(slots=True)
class JobState:
    id: str
    interval_s: float
    status: str = "idle"  # idle | running | scheduled | failed
    runs: int = 0
    errors: int = 0
    last_run_ms: int | None = None
    last_duration_ms: float | None = None
    next_run_ms: int | None = None
    last_error: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id, "status": self.status, "interval_s": self.interval_s,
            "next_run": iso(self.next_run_ms) if self.next_run_ms else None,
            "last_run": iso(self.last_run_ms) if self.last_run_ms else None,
            "last_duration_ms": self.last_duration_ms, "runs": self.runs,
            "errors": self.errors, "last_error": self.last_error or None,
        }


class JobRunner:
    """Runs ``body`` every ``interval_s`` for each started job until it is stopped."""

    def __init__(self, intervals: dict[str, float]) -> None:
        self.jobs = {name: JobState(name, iv) for name, iv in intervals.items()}
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def running(self, name: str) -> bool:
        task = self._tasks.get(name)
        return task is not None and not task.done()

    def active(self) -> list[str]:
        return [name for name in self._tasks if self.running(name)]

    def start(self, name: str, body: Callable[[], Awaitable[None]]) -> None:
        if self.running(name):
            return
        self._tasks[name] = asyncio.get_running_loop().create_task(
            self._loop(self.jobs[name], body), name=f"services:{name}")

    async def stop(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def stop_all(self) -> None:
        for name in list(self._tasks):
            await self.stop(name)

    @staticmethod
    async def _loop(job: JobState, body: Callable[[], Awaitable[None]]) -> None:
        try:
            while True:
                job.status = "running"
                job.last_run_ms = now_ms()
                started = time.perf_counter()
                try:
                    await body()
                    job.status = "scheduled"
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    job.errors += 1
                    job.status = "failed"
                    job.last_error = f"{type(exc).__name__}: {exc}"[:200]
                    log.exception("service job %s failed", job.id)
                job.runs += 1
                job.last_duration_ms = round((time.perf_counter() - started) * 1000, 3)
                job.next_run_ms = now_ms() + int(job.interval_s * 1000)
                await asyncio.sleep(job.interval_s)
        finally:
            job.status = "idle"
            job.next_run_ms = None
