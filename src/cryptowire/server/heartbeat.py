"""Server pings for every WebSocket session, from one timer per node.

Every ``server.ping_interval_s`` the node writes a ping frame to each session; a session
that has sent nothing at all (no pong, no frame) within half of the interval after that ping
is closed with 4011 and counted. Any frame from the client counts, so a client that only
listens stays as long as its WebSocket library answers pings (every library does), and one
that talks is never pinged out.

One timer for all sessions instead of aiohttp's per-connection heartbeat: at 10k connections
that is 10k fewer timer handles, callbacks and ping tasks (about 0.5 KiB of memory per idle
connection and a wake-up per connection per interval).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cryptowire import closecodes
from cryptowire.server.connection import socket_transport
from cryptowire.server.node import ServerNode

log = logging.getLogger("cryptowire.server.heartbeat")

#: An unmasked, empty WebSocket ping frame (FIN + opcode 0x9, length 0).
PING_FRAME = b"\x89\x00"


class Heartbeat:
    """Pings every session of ``node`` and closes the ones that stay silent."""

    def __init__(self, node: ServerNode, interval_s: float) -> None:
        self.node = node
        self.interval_s = interval_s
        self.timeout_s = interval_s / 2
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.interval_s - self.timeout_s)
            sent_at = loop.time()
            self.ping_all()
            await asyncio.sleep(self.timeout_s)
            self.drop_silent(sent_at)

    def ping_all(self) -> None:
        for session in list(self.node.hub.sessions.values()):
            if session.closed:
                continue
            transport = socket_transport(session)
            if not transport.is_closing():
                try:
                    transport.write(PING_FRAME)
                except Exception:  # a broken transport is the read loop's to notice
                    log.debug("ping to session %s failed", session.id, exc_info=True)

    def drop_silent(self, since: float) -> int:
        """Close the sessions that sent nothing since ``since``; how many were closed."""
        dropped = 0
        for session in list(self.node.hub.sessions.values()):
            if session.closed or session.seen >= since:
                continue
            dropped += 1
            self.node.counters.ping_timeouts += 1
            log.info("session %s sent no pong within %.1f s: closing with 4011",
                     session.id, self.timeout_s)
            self.node.hub.fanout.close(session, closecodes.PING_TIMEOUT.code,
                                       closecodes.PING_TIMEOUT.meaning)
        return dropped
