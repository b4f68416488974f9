"""One supervised WebSocket to one endpoint of one market: the supervisor every venue shares.

The connection keeps the *desired* streams (:mod:`.streams`). Its supervisor connects with
capped, jittered exponential backoff (reset once a socket lived :data:`STABLE_AFTER_S`); on
every (re)connect it first lets its :class:`Sink` publish a ``gap`` for every channel whose
stream was live on the lost socket, *then* re-subscribes every desired stream (chunked by the
market's ``args_per_request``, paced by ``requests_per_s``) and only then reads, so a gap
marker always precedes the fresh data. While up it sends the market's ping text every
``ping.interval_s`` (if it has one) and a watchdog replaces a socket from which nothing came
for ``ping.watchdog_s``; at ``Limits.rotate_after_s`` it asks the sink to rotate it
(:mod:`.rotation`). Subscribes wait for the venue's ack (``ack_timeout_s``); a refused batch
is asked again one stream per request. Frames mean what the market's codec says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any, Literal

import aiohttp
import orjson

from cryptowire.backoff import backoff_delay
from cryptowire.clock import now_ms
from cryptowire.errors import SourceError
from cryptowire.sources.exchange.codec import FRAME_ERRORS, Ack, Data, Notice, Pong, Reply
from cryptowire.sources.exchange.pacing import Pacer, await_verdict
from cryptowire.sources.exchange.sink import Sink
from cryptowire.sources.exchange.streams import Request, StreamTable
from cryptowire.sources.exchange.venue import Market, Stream

ConnectionState = Literal["idle", "connecting", "up", "down", "stopped"]

#: First reconnect delay; doubles per failed attempt up to ``backoff_max_s``, then is jittered
#: down to half, so a fleet of hubs does not reconnect in lockstep.
BACKOFF_BASE_S = 0.5
#: A socket that lived this long resets the backoff; one that keeps dying sooner (an upstream
#: that accepts and then drops us) backs off further each time.
STABLE_AFTER_S = 10.0
_rng = random.SystemRandom()


class Connection:
    """The supervised socket of one endpoint of one market (one shard of it)."""

    def __init__(self, market: Market, endpoint: str, url: str, *, venue: str, title: str,
                 session: aiohttp.ClientSession, sink: Sink[Connection], shard: int = 0,
                 ping_interval_s: float | None = None, watchdog_s: float | None = None,
                 backoff_max_s: float = 30.0, ack_timeout_s: float = 10.0,
                 connect_timeout_s: float = 10.0) -> None:
        self.market, self.endpoint, self.url, self.shard = market, endpoint, url, shard
        self.ping_text = market.ping.text
        self.ping_interval_s = ping_interval_s or market.ping.interval_s
        self.watchdog_s = watchdog_s if watchdog_s is not None else market.ping.watchdog_s
        self.backoff_max_s = backoff_max_s
        self.ack_timeout_s = ack_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.state: ConnectionState = "idle"
        self.reconnects = self.messages = self.errors = self.rejections = 0
        self.last_message_ms: int | None = None
        self.connected_since_ms: int | None = None
        self.conn_id: str | None = None
        self.last_error: str | None = None
        self.name = f"{venue}-{market.key}" + (f"-{endpoint}" if endpoint != "public" else "") \
            + (f"-{shard}" if shard else "")
        self._title = title
        self._log = logging.getLogger(f"cryptowire.sources.{venue}")
        self._session = session
        self._sink = sink
        self._streams = StreamTable(market)
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._attempted = asyncio.Event()  # the first connect attempt has ended
        self._ever_connected = False
        self._last_frame_at = 0.0  # loop clock, for the watchdog
        self._pacer = Pacer(market.limits)
        self._later: set[asyncio.Task[None]] = set()
        self.retired = False  # replaced by a rotation (or abandoned): no reconnect
        self.rotations = 0
        self.rotation_error: str | None = None
        self._gap_reason = ""
        self._close_reason: str | None = None

    # -- public ---------------------------------------------------------------------------

    @property
    def streams(self) -> list[str]:
        return self._streams.keys()

    def budget_left(self) -> int | None:
        """Subscribe/unsubscribe requests this socket may still send in the window."""
        return self._pacer.left()

    async def adopt(self, streams: list[Stream]) -> None:
        """As a rotation's replacement: connect, subscribe all of ``streams`` at once, wait
        for the verdicts (a refusal is left to the handover); :class:`SourceError` if it did
        not connect."""
        subs = [self._streams.get(s.key) or self._streams.add(s) for s in streams]
        self.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._attempted.wait(), self.connect_timeout_s)
        if self._ws is None:
            raise SourceError(self.last_error or "did not connect")
        await asyncio.gather(
            *(await_verdict(s, self.ack_timeout_s, self._title, self.market) for s in subs),
            return_exceptions=True)

    def start(self) -> None:
        """Start the supervisor (idempotent)."""
        if self._task is None and self.state != "stopped":
            self._task = asyncio.create_task(self._supervise(), name=self.name)

    async def stop(self) -> None:
        """Cancel the supervisor and close the socket."""
        self.state = "stopped"
        task, self._task = self._task, None
        tasks = [t for t in (task, *self._later) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._streams.resolve_pending()

    async def subscribe(self, stream: Stream) -> None:
        """Carry ``stream``. Waits for the venue's ack when a socket is up (or is being
        opened for the first time); raises :class:`SourceError` when it is refused or not
        acknowledged in ``ack_timeout_s`` (the stream is then dropped here). While
        disconnected the stream is recorded and sent on connect."""
        self.start()
        sub = self._streams.get(stream.key) or self._streams.add(stream)
        if self._ws is None and not self._attempted.is_set():
            # The socket is being opened lazily for this stream: wait for that first attempt
            # so a refusal still reaches the caller.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._attempted.wait(), self.connect_timeout_s)
        ws = self._ws
        if ws is not None and self._streams.get(stream.key) is sub and not sub.sent:
            for request in self._streams.prepare("subscribe", [sub]):
                await self._send(ws, request)
        await await_verdict(sub, self.ack_timeout_s, self._title, self.market)

    async def unsubscribe(self, key: str) -> None:
        """Stop carrying the stream ``key`` (unsubscribed upstream if it was sent)."""
        sub = self._streams.get(key)
        if sub is None:
            return
        self._streams.remove(sub)
        ws = self._ws
        if ws is not None and sub.sent:
            await self._send_all(ws, self._streams.prepare("unsubscribe", [sub]))

    async def resubscribe(self, key: str) -> None:
        """Unsubscribe then subscribe ``key`` on the same socket (a broken book re-syncs)."""
        sub = self._streams.get(key)
        if (ws := self._ws) is not None and sub is not None and sub.sent:
            await self._send_all(ws, self._streams.resubscribe(sub))

    async def _send_all(self, ws: aiohttp.ClientWebSocketResponse,
                        requests: list[Request]) -> None:
        """Send now, or in the background when the request budget is spent (never block an
        unsubscribe or a resync for the rest of the window)."""
        left = self.budget_left()
        if left is not None and left < len(requests):
            task = asyncio.create_task(self._send_each(ws, requests), name=f"{self.name}-later")
            self._later.add(task)
            task.add_done_callback(self._later.discard)
            return
        await self._send_each(ws, requests)

    async def _send_each(self, ws: aiohttp.ClientWebSocketResponse,
                         requests: list[Request]) -> None:
        for request in requests:
            await self._send(ws, request)

    def status(self) -> dict[str, Any]:
        return {
            "url": self.url, "state": self.state, "topics": len(self._streams),
            "reconnects": self.reconnects, "messages": self.messages, "errors": self.errors,
            "rejections": self.rejections, "last_message_ms": self.last_message_ms,
            "connected_since_ms": self.connected_since_ms, "conn_id": self.conn_id,
            "last_error": self.last_error, "rotations": self.rotations,
            "rotation_error": self.rotation_error,
        }  # fmt: skip

    # -- supervisor -----------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        while True:
            self.state = "connecting"
            try:
                async with asyncio.timeout(self.connect_timeout_s):
                    ws = await self._session.ws_connect(
                        self.url, autoping=True, heartbeat=None,
                        timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0))
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self.state = "down"
                self.last_error = f"connect failed: {type(exc).__name__}: {exc}"
                self._attempted.set()
                delay = self._backoff(failures)
                failures += 1
                self._log.warning("%s: %s; retrying in %.2f s", self.name, self.last_error,
                                  delay)
                await asyncio.sleep(delay)
                continue
            if self._ever_connected:
                self.reconnects += 1
            self._ever_connected = True
            opened_at = asyncio.get_running_loop().time()
            try:
                reason = await self._run_socket(ws)
            except Exception as exc:  # a bug must not end the supervision
                self._log.exception("%s: socket loop failed", self.name)
                reason = f"internal error: {type(exc).__name__}: {exc}"
            finally:
                await self._teardown(ws)
            await self._sink.dropped(self, reason)
            if self.retired:
                self.state = "stopped"
                return
            if asyncio.get_running_loop().time() - opened_at >= STABLE_AFTER_S:
                failures = 0
            self._gap_reason = self.last_error = reason
            self.state = "connecting"
            delay = self._backoff(failures)
            failures += 1
            self._log.warning("%s: connection lost (%s); reconnecting in %.2f s", self.name,
                              reason, delay)
            await asyncio.sleep(delay)

    def _backoff(self, failures: int) -> float:
        return backoff_delay(failures, base=BACKOFF_BASE_S, cap=self.backoff_max_s,
                             rand=_rng.random)

    async def _run_socket(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        """Serve one socket until it fails; return why it ended."""
        loop = asyncio.get_running_loop()
        self._ws = ws
        self.state = "up"
        self.connected_since_ms = now_ms()
        self.conn_id = self._close_reason = None
        self._pacer.reset()
        self._last_frame_at = loop.time()
        subs = self._streams.new_socket()
        # Register the re-subscribe before anything awaits, so a subscribe() woken now finds
        # its stream in flight rather than sending it a second time.
        requests = self._streams.prepare("subscribe", subs)
        self._attempted.set()
        self._log.info("%s: connected to %s (%d streams)", self.name, self.url, len(subs))
        await self._sink.opened(self, [s.stream.key for s in subs], self._streams.take_gaps(),
                                self._gap_reason)
        for request in requests:
            if not await self._send(ws, request):
                return "send failed during re-subscribe"
        loops = [self._read(ws), self._watch()]
        if self.ping_text is not None:
            loops.append(self._ping(ws, self.ping_text))
        if (after := self.market.limits.rotate_after_s) is not None:
            loops.append(self._expire(after))
        tasks = {asyncio.create_task(c, name=f"{self.name}-{i}") for i, c in enumerate(loops)}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            return next(iter(done)).result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _teardown(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        since = self.last_message_ms or self.connected_since_ms or now_ms()
        self._ws = None
        self.connected_since_ms = None
        self._streams.socket_lost(since)
        with contextlib.suppress(Exception):
            await ws.close()

    # -- the loops of one socket ----------------------------------------------------------

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        async for msg in ws:
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                await self._on_frame(ws, msg.data)
                if self._close_reason is not None:
                    return self._close_reason
            elif msg.type == aiohttp.WSMsgType.ERROR:
                return f"socket error: {ws.exception()!r}"
        return f"closed by upstream (code {ws.close_code})"

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse, text: str) -> str:
        while True:
            await asyncio.sleep(self.ping_interval_s)
            if not await self._send_text(ws, text):
                return "ping failed"

    async def _expire(self, after_s: float) -> str:
        await asyncio.sleep(after_s)
        await self._sink.expiring(self)
        await asyncio.Event().wait()  # the rotation ends this socket, or the venue does
        return "expired"

    async def _watch(self) -> str:
        if self.watchdog_s is None:
            await asyncio.Event().wait()  # no watchdog: wait for the other loops
        assert self.watchdog_s is not None
        loop = asyncio.get_running_loop()
        step = min(1.0, self.watchdog_s / 4)
        while True:
            await asyncio.sleep(step)
            silent = loop.time() - self._last_frame_at
            if silent >= self.watchdog_s:
                return f"watchdog: nothing received for {silent:.1f} s"

    # -- frames ---------------------------------------------------------------------------

    async def _on_frame(self, ws: aiohttp.ClientWebSocketResponse, raw: str | bytes) -> None:
        self._last_frame_at = asyncio.get_running_loop().time()
        try:
            for item in self.market.codec.parse(raw):
                if isinstance(item, Data):
                    await self._on_data(item)
                elif isinstance(item, Ack):
                    await self._on_ack(item)
                elif isinstance(item, Pong):
                    self.conn_id = item.conn_id or self.conn_id
                elif isinstance(item, Reply):
                    await self._send_text(ws, item.text)
                elif isinstance(item, Notice):
                    self._log.warning("%s: notice from upstream: %s", self.name, item.reason)
                    if item.reconnect:
                        self._close_reason = f"upstream notice: {item.reason}"
        except FRAME_ERRORS as exc:
            self.errors += 1
            text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
            self._log.warning("%s: dropped a frame (%s): %.300s", self.name, exc, text)

    async def _on_data(self, item: Data) -> None:
        self.last_message_ms = now_ms()
        self.messages += 1
        sub = self._streams.get(item.stream)
        if sub is None:  # a frame still in flight after an unsubscribe
            return
        sub.live = True
        await self._sink.data(self, item)

    async def _on_ack(self, ack: Ack) -> None:
        if ack.conn_id:
            self.conn_id = ack.conn_id
        request = self._streams.pop_request(ack.req_id)
        if request is None:
            if not ack.ok:
                self._log.warning("%s: refused: %s", self.name, ack.reason)
            return
        if request.op != "subscribe" or ack.ok:
            if not ack.ok:
                self._log.warning("%s: %s %s refused: %s", self.name, request.op,
                                  ",".join(request.keys), ack.reason)
            for sub in self._streams.waiting_on(request):
                sub.live = True
            request.future.set_result(ack)
            return
        subs = self._streams.waiting_on(request)
        ws = self._ws
        if len(subs) > 1 and ws is not None:
            # One refused arg may fail the whole batch: ask again one stream per request, so
            # each gets its own verdict. The new waiters are in place before the old one
            # resolves (see _await_ack).
            retries = [r for sub in subs for r in self._streams.prepare("subscribe", [sub])]
            request.future.set_result(None)
            for retry in retries:
                await self._send(ws, retry)
            return
        for sub in subs:
            self.rejections += 1
            self._streams.remove(sub)
            self._log.warning("%s: stream %s refused: %s", self.name, sub.stream.key,
                              ack.reason)
        request.future.set_result(ack)
        for sub in subs:
            await self._sink.refused(self, sub.stream.key, ack.reason)

    # -- requests -------------------------------------------------------------------------

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, request: Request) -> bool:
        await self._pacer.wait()
        payload = request.payload
        text = payload if isinstance(payload, str) else orjson.dumps(payload).decode()
        return await self._send_text(ws, text)

    @staticmethod
    async def _send_text(ws: aiohttp.ClientWebSocketResponse, text: str) -> bool:
        """Send, or return False when the socket is going away (the reader notices)."""
        try:
            await ws.send_str(text)
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            return False
        return True
