"""A primary source with a fallback: live Bybit when reachable, the demo market when not.

At start the primary's REST endpoint is probed; while it cannot be reached new channels go to
the fallback (announced in the log and in ``/health``: the primary reports ``down``, the hub
``demo: true``) and the probe keeps retrying with capped backoff. Once the primary answers,
new channels go to it. A channel stays with the source that subscribed it until its last
subscriber leaves, so unsubscribe always reaches the right source.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from cryptowire.backoff import backoff_delay
from cryptowire.clock import now_ms
from cryptowire.core.channels import Channel
from cryptowire.core.source import PublishFn, Source, SourceStatus, venues_of
from cryptowire.tasks import Supervisor

log = logging.getLogger("cryptowire.sources.fallback")


class FallbackSource:
    """Serves ``primary.kinds`` from ``primary`` when ``probe_url`` answers, else ``fallback``.

    ``fallback`` is started and stopped by whoever owns it (it may serve other kinds too).
    """

    def __init__(self, primary: Source, fallback: Source, probe_url: str, *,
                 probe_timeout_s: float = 3.0, backoff_cap_s: float = 60.0) -> None:
        self.primary = primary
        self.fallback = fallback
        self.name = primary.name
        self.kinds = primary.kinds
        self.venues = venues_of(primary)  # routed as the primary is: (kind, venue)
        self.probe_url = probe_url
        self.probe_timeout_s = probe_timeout_s
        self.backoff_cap_s = backoff_cap_s
        self.reachable = False
        self.last_probe_error = ""
        self._owner: dict[str, Source] = {}
        self._supervisor = Supervisor(f"{self.name}-probe")

    async def start(self, publish: PublishFn) -> None:
        await self.primary.start(publish)
        self.reachable = await self._probe()
        if not self.reachable:
            log.warning("%s unreachable (%s): serving %s data for %s channels until it "
                        "answers", self.name, self.last_probe_error, self.fallback.name,
                        "/".join(sorted(self.kinds)))
            self._supervisor.spawn("probe", self._keep_probing)

    async def _probe(self) -> bool:
        timeout = aiohttp.ClientTimeout(total=self.probe_timeout_s)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as http, \
                    http.get(self.probe_url) as resp:
                if resp.status < 500:
                    return True
                self.last_probe_error = f"HTTP {resp.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self.last_probe_error = exc.__class__.__name__
        return False

    async def _keep_probing(self) -> None:
        attempt = 0
        while not self.reachable:
            await asyncio.sleep(max(1.0, backoff_delay(attempt, base=2.0,
                                                       cap=self.backoff_cap_s)))
            attempt += 1
            self.reachable = await self._probe()
        log.info("%s is reachable: new %s subscriptions go to it", self.name, self.name)

    async def stop(self) -> None:
        await self._supervisor.stop()
        await self.primary.stop()

    async def subscribe(self, channel: Channel) -> None:
        source = self.primary if self.reachable else self.fallback
        await source.subscribe(channel)
        self._owner[channel.name] = source

    async def unsubscribe(self, channel: Channel) -> None:
        source = self._owner.pop(channel.name, None)
        if source is not None:
            await source.unsubscribe(channel)

    def status(self) -> SourceStatus:
        st = self.primary.status()
        if self.reachable:
            return st
        st.state = "down"
        st.detail = (f"unreachable ({self.last_probe_error}); retrying, {self.fallback.name} "
                     "data served meanwhile")
        st.extra = {**st.extra, "fallback": self.fallback.name, "probe_url": self.probe_url,
                    "checked_ms": now_ms()}
        return st
