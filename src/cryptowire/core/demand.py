"""Demand: reference counts per upstream channel that start and stop source topics.

The first subscriber of a channel makes its source subscribe upstream (concurrent first
subscribers wait on the same request, and all see its refusal); the last one leaving
unsubscribes after ``linger_s``, so a client that re-subscribes at once does not churn the
upstream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from cryptowire.core.channels import Channel
from cryptowire.errors import SourceError
from cryptowire.logthrottle import log_exception

log = logging.getLogger("cryptowire.core.demand")


class TopicSource(Protocol):
    """The part of a source demand uses."""

    name: str

    async def subscribe(self, channel: Channel) -> None: ...

    async def unsubscribe(self, channel: Channel) -> None: ...


Router = Callable[[Channel], TopicSource | None]


class Demand:
    """Reference counts per channel name, with a linger before the upstream unsubscribe."""

    def __init__(self, router: Router, *, linger_s: float = 2.0) -> None:
        self._router = router
        self._linger_s = linger_s
        self._counts: dict[str, int] = {}
        self._channels: dict[str, Channel] = {}
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._lingering: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.upstream_subscribes = 0
        self.upstream_unsubscribes = 0

    def count(self, name: str) -> int:
        return self._counts.get(name, 0)

    def active(self) -> dict[str, int]:
        return dict(self._counts)

    async def acquire(self, channel: Channel) -> None:
        """Count one more subscriber; subscribe upstream if it is the first.

        Raises :class:`SourceError` with a client-facing reason when no source serves the
        channel or the source refuses it; the count is then unchanged.
        """
        name = channel.name
        source = self._router(channel)
        if source is None:
            raise SourceError(
                f"No source is configured for '{name}' on this hub "
                f"({channel.kind} channels are not served here)."
            )
        count = self._counts.get(name, 0)
        timer = self._lingering.pop(name, None)
        if timer is not None:
            timer.cancel()  # back within the linger: the upstream topic is still on
        if count > 0 or timer is not None:
            self._counts[name] = count + 1
            return
        pending = self._pending.get(name)
        if pending is None:
            pending = asyncio.get_running_loop().create_future()
            self._pending[name] = pending
            try:
                await source.subscribe(channel)
            except Exception as exc:
                pending.set_exception(exc)
                pending.exception()  # mark retrieved for waiters that never come
                raise self._reason(exc) from exc
            except BaseException:  # cancelled: waiters must not wait for ever
                pending.set_exception(SourceError(f"Subscribing '{name}' was interrupted; "
                                                  "try again."))
                pending.exception()
                raise
            else:
                pending.set_result(None)
                self._channels[name] = channel
                self.upstream_subscribes += 1
            finally:
                del self._pending[name]
        else:
            try:
                await asyncio.shield(pending)
            except Exception as exc:
                raise self._reason(exc) from exc
        self._counts[name] = self._counts.get(name, 0) + 1

    @staticmethod
    def _reason(exc: BaseException) -> SourceError:
        if isinstance(exc, SourceError):
            return exc
        # Called in the except block of a subscribe a client may repeat: logged once per
        # interval (sys.exc_info() is ``exc``).
        log_exception(log, "source failed to subscribe")
        return SourceError(f"Upstream subscribe failed: {exc.__class__.__name__}")

    def release(self, name: str) -> None:
        """Count one subscriber less; unsubscribe upstream after the linger if none is left."""
        count = self._counts.get(name, 0)
        if count <= 0:
            return
        if count > 1:
            self._counts[name] = count - 1
            return
        self._counts[name] = 0
        loop = asyncio.get_running_loop()
        self._lingering[name] = loop.call_later(self._linger_s, self._expire, name)

    def _expire(self, name: str) -> None:
        self._lingering.pop(name, None)
        if self._counts.get(name, 0) > 0:
            return
        self._counts.pop(name, None)
        channel = self._channels.pop(name, None)
        if channel is None:
            return
        source = self._router(channel)
        if source is None:
            return
        task = asyncio.get_running_loop().create_task(self._unsubscribe(source, channel))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _unsubscribe(self, source: TopicSource, channel: Channel) -> None:
        try:
            await source.unsubscribe(channel)
            self.upstream_unsubscribes += 1
        except Exception:
            log.exception("source %s failed to unsubscribe %s", source.name, channel.name)

    async def close(self) -> None:
        for timer in self._lingering.values():
            timer.cancel()
        self._lingering.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
