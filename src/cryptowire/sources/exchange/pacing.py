"""What a socket may send, and when: ``requests_per_s`` spacing, the per-connection request
budget (``requests_per_connection`` per ``request_window_s``: OKX 480 per hour), and waiting
for the venue's verdict on a subscribe."""

from __future__ import annotations

import asyncio
from collections import deque

from cryptowire.errors import SourceError
from cryptowire.sources.exchange.streams import StreamSub
from cryptowire.sources.exchange.venue import Limits, Market


class Pacer:
    """One socket's request pacing and budget (the budget starts over with each socket)."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._next = 0.0  # loop clock: the earliest next send
        self._sent: deque[float] = deque()  # loop clock of each counted request in the window

    def reset(self) -> None:
        """A new socket: a fresh budget."""
        self._sent.clear()

    def left(self) -> int | None:
        """Requests this socket may still send in the current window (``None``: no budget)."""
        cap = self.limits.requests_per_connection
        if cap is None:
            return None
        self._expire(asyncio.get_running_loop().time())
        return max(0, cap - len(self._sent))

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] + self.limits.request_window_s <= now:
            self._sent.popleft()

    async def wait(self) -> None:
        """Wait until one more request may be sent, and count it."""
        loop = asyncio.get_running_loop()
        cap = self.limits.requests_per_connection
        while cap is not None:
            now = loop.time()
            self._expire(now)
            if len(self._sent) < cap:
                break
            await asyncio.sleep(self._sent[0] + self.limits.request_window_s - now)
        rate = self.limits.requests_per_s
        if rate:
            now = loop.time()
            wait, self._next = self._next - now, max(now, self._next) + 1 / rate
            if wait > 0:
                await asyncio.sleep(wait)
        if cap is not None:
            self._sent.append(loop.time())


async def await_verdict(sub: StreamSub, timeout_s: float, title: str, market: Market) -> None:
    """Wait for the verdict on ``sub``'s pending subscribe (if any), following a split batch
    to the stream's own request; a lost socket leaves the stream desired. :class:`SourceError`
    when it is refused or not acknowledged within ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (waiter := sub.waiter) is not None:
        try:
            ack = await asyncio.wait_for(asyncio.shield(waiter), deadline - loop.time())
        except TimeoutError:
            raise SourceError(
                f"{title} {market.label} did not acknowledge topic "
                f"'{sub.stream.key}' within {timeout_s:g} s; try again later."
            ) from None
        if ack is not None:
            if not ack.ok:
                raise SourceError(refusal(market, title, sub.stream.key, ack.reason))
            return
        if sub.waiter is waiter:
            return


def refusal(market: Market, title: str, key: str, said: str) -> str:
    if market.refusal is not None:
        return market.refusal(key, said)
    return (f"{title} {market.label} refused '{key}' "
            f"({said or 'no reason given'}). Check the symbol and venue.")
