"""REST request rate per API key, or per client address without one (``server.max_rest_rate``).

Each caller has a token bucket of ``rate`` requests per second and a burst of as many; a
request that finds it empty gets ``429 RATE_LIMIT_EXCEEDED`` with ``Retry-After`` (whole
seconds until a token is back). A caller presenting a key counts under that key (hashed:
the plaintext is not kept), one without under :func:`~cryptowire.server.proxied.client_address`
(so behind a balancer, the client's own address). Buckets of callers idle for a second are
full again and are forgotten, so the table stays as small as the set of active callers (and
at most :data:`MAX_CALLERS`).
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from cryptowire.allowance import Allowance
from cryptowire.server.auth import request_key
from cryptowire.server.context import NODE
from cryptowire.server.proxied import client_address
from cryptowire.server.replies import problem

#: Callers tracked at once; past it, the idle ones and then the oldest are forgotten.
MAX_CALLERS = 100_000

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RestRateLimiter:
    """Token buckets by caller: ``take(who)`` is ``None`` (allowed) or seconds to wait."""

    def __init__(self, rate: int, max_callers: int = MAX_CALLERS) -> None:
        self.rate = rate
        self.max_callers = max_callers
        self._buckets: dict[str, Allowance] = {}

    def __len__(self) -> int:
        """Callers tracked now."""
        return len(self._buckets)

    def take(self, who: str, now: float | None = None) -> float | None:
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(who)
        if bucket is None:
            if len(self._buckets) >= self.max_callers:
                self._forget(now)
            bucket = self._buckets[who] = Allowance(self.rate, now)
        wait = bucket.wait(now)
        if wait:
            return wait
        bucket.take()
        return None

    def _forget(self, now: float) -> None:
        idle = [w for w, bucket in self._buckets.items() if now - bucket.stamp >= 1.0]
        for who in idle:  # a bucket idle for a second is full: the same as a new one
            del self._buckets[who]
        if len(self._buckets) >= self.max_callers:  # a burst of distinct callers
            for who in list(self._buckets)[: len(self._buckets) // 2]:
                del self._buckets[who]


_LIMITER: web.AppKey[RestRateLimiter | None] = web.AppKey("rest_limiter")


def setup(app: web.Application) -> None:
    rate = app[NODE].settings.server.max_rest_rate
    app[_LIMITER] = RestRateLimiter(rate) if rate > 0 else None


def caller(request: web.Request) -> str:
    key = request_key(request)
    if key is not None:
        return "key:" + hashlib.sha256(key.encode()).hexdigest()[:32]
    return "ip:" + client_address(request.app[NODE], request)


def over_rest_rate(request: web.Request) -> web.Response | None:
    """The 429 answer for ``request`` if its caller is over the rate, else ``None``."""
    limiter = request.app.get(_LIMITER)
    if limiter is None:
        return None
    wait = limiter.take(caller(request))
    if wait is None:
        return None
    rate = int(limiter.rate)
    response = problem(429, "RATE_LIMIT_EXCEEDED",
                       f"More than {rate} REST requests per second (server.max_rest_rate); "
                       "retry after the Retry-After seconds.")
    response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


def rate_limited(handler: Handler) -> Handler:
    """Wrap a REST handler with :func:`over_rest_rate`."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        refused = over_rest_rate(request)
        if refused is not None:
            return refused
        return await handler(request)

    return wrapped
