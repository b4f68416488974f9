"""Leases in Redis: one holder at a time per name, with a fencing token.

``acquire`` is ``SET <P>:lease:<name> <token> NX PX <ttl>`` and, in the same script,
``INCR <P>:fence:<name>``: every acquisition gets a strictly larger fence number. ``renew``
extends only if the key still holds our token (compare-and-extend), ``release`` deletes only
then (compare-and-delete); the pattern of the Redis ``SET`` documentation ("a simple locking
pattern") plus Kleppmann's fencing tokens. The broker's publish script checks both the token
and the fence number (:class:`~cryptowire.bus.redis.Fence`), so a leader that was paused
past its lease (GC, SIGSTOP, a slow disk) cannot publish after another node took over.
"""

from __future__ import annotations

import asyncio
import secrets

from redis.asyncio import Redis

from cryptowire.bus.redis import Fence, text

ACQUIRE_LUA = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('incr', KEYS[2])
end
return false
"""
RENEW_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
RELEASE_LUA = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def raise_if_cancelled() -> None:
    """Raise the cancellation that a Redis call may have swallowed.

    On Python 3.11 ``asyncio.wait_for``, which redis-py wraps around every command it sends,
    returns the result instead of raising when its task is cancelled just as the call
    completes (CPython gh-86296, fixed in 3.12); ``Task.cancelling()`` still tells. Every
    loop around Redis calls checks this at each turn, or a supervisor's ``stop`` would wait
    for it forever.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class RedisLease:
    """The lease ``name`` for ``holder`` (a node id), ``ttl_s`` long once acquired."""

    def __init__(self, redis: Redis, prefix: str, name: str, *, holder: str,
                 ttl_s: float) -> None:
        self.key = f"{prefix}:lease:{name}"
        self.fence_key = f"{prefix}:fence:{name}"
        self.holder = holder
        self.ttl_ms = max(int(ttl_s * 1000), 100)
        self.fence: Fence | None = None
        self._acquire = redis.register_script(ACQUIRE_LUA)
        self._renew = redis.register_script(RENEW_LUA)
        self._release = redis.register_script(RELEASE_LUA)
        self._redis = redis

    async def acquire(self) -> Fence | None:
        """Take the lease if it is free; the :class:`Fence` to publish with, or ``None``."""
        token = f"{self.holder}:{secrets.token_hex(8)}"
        number = await self._acquire(keys=[self.key, self.fence_key], args=[token, self.ttl_ms])
        if number is None:
            return None
        self.fence = Fence(self.key, token, self.fence_key, int(number))
        return self.fence

    async def renew(self) -> bool:
        """Extend the lease; ``False`` when it is not ours any more."""
        if self.fence is None:
            return False
        ok = await self._renew(keys=[self.key], args=[self.fence.token, self.ttl_ms])
        if not ok:
            self.fence = None
        return bool(ok)

    async def release(self) -> None:
        fence, self.fence = self.fence, None
        if fence is not None:
            await self._release(keys=[self.key], args=[fence.token])

    async def current_holder(self) -> str | None:
        """The node id holding the lease now, if any."""
        value = await self._redis.get(self.key)
        return None if value is None else text(value).rsplit(":", 1)[0]
