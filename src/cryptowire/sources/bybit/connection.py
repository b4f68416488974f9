"""One supervised WebSocket to one Bybit V5 public category (``linear`` or ``spot``).

The connection keeps the *desired* topics and the channel names each one serves. Its
supervisor connects with capped, jittered exponential backoff; on every (re)connect it
publishes a ``gap`` event for each channel that was live on the lost socket, *then*
re-subscribes every desired topic (chunked, :data:`~.topics.MAX_ARGS_PER_REQUEST` args per
request) and only then starts reading, so a gap marker always precedes the fresh data (Bybit
sends a new ticker snapshot after each subscribe). While up it sends ``{"op":"ping"}`` every
``ping_interval_s`` and a watchdog replaces a socket from which nothing (not even a pong) came
for ``watchdog_s``. A broken order book (:mod:`.book`) re-syncs on the same socket: unsubscribe
then subscribe, and Bybit sends a fresh snapshot. Frame parsing is :mod:`.parser`, the events
a data frame becomes :mod:`.events`; this module only moves bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import Counter
from typing import Any, Literal

import aiohttp
import orjson

from cryptowire.backoff import backoff_delay
from cryptowire.clock import now_ms
from cryptowire.core.source import PublishFn
from cryptowire.errors import SourceError
from cryptowire.events import Event
from cryptowire.sources.bybit.events import events_of, reconnect_gaps
from cryptowire.sources.bybit.parser import Ack, DataFrame, Pong, TickerBook, parse_frame
from cryptowire.sources.bybit.subscriptions import (
    Subscription,
    SubscriptionTable,
    is_refusal,
    rejection_reason,
)
from cryptowire.sources.bybit.topics import Category, Topic, ping_request

_log = logging.getLogger("cryptowire.sources.bybit")

ConnectionState = Literal["idle", "connecting", "up", "down", "stopped"]

#: First reconnect delay; doubles per failed attempt up to ``backoff_max_s``, then is jittered
#: down to half, so a fleet of hubs does not reconnect in lockstep.
BACKOFF_BASE_S = 0.5
#: A socket that lived this long resets the backoff; one that keeps dying sooner (an upstream
#: that accepts and then drops us) backs off further each time, within Bybit's limit of 500
#: connections per 5 minutes per IP.
STABLE_AFTER_S = 10.0
_PING = orjson.dumps(ping_request()).decode()
_rng = random.SystemRandom()


class BybitConnection:
    """The supervised socket of one category; created and owned by ``BybitSource``."""

    def __init__(
        self,
        category: Category,
        url: str,
        *,
        session: aiohttp.ClientSession,
        publish: PublishFn,
        source_name: str = "bybit",
        ping_interval_s: float = 20.0,
        watchdog_s: float = 30.0,
        backoff_max_s: float = 30.0,
        ack_timeout_s: float = 10.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self.category: Category = category
        self.url = url
        self.ping_interval_s = ping_interval_s
        self.watchdog_s = watchdog_s
        self.backoff_max_s = backoff_max_s
        self.ack_timeout_s = ack_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.state: ConnectionState = "idle"
        self.reconnects = 0
        self.messages = 0
        self.errors = 0
        self.rejections = 0
        self.book_resyncs: Counter[str] = Counter()  # book breaks by cause (book.BREAK_CAUSES)
        self.last_message_ms: int | None = None
        self.connected_since_ms: int | None = None
        self.conn_id: str | None = None
        self.last_error: str | None = None
        self._session = session
        self._publish = publish
        self._source_name = source_name
        self._subs = SubscriptionTable()
        self._book = TickerBook()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._task: asyncio.Task[None] | None = None
        self._attempted = asyncio.Event()  # the first connect attempt has ended
        self._ever_connected = False
        self._last_frame_at = 0.0  # loop clock, for the watchdog
        self._gap_reason = ""

    # -- public ---------------------------------------------------------------------------

    @property
    def topics(self) -> list[str]:
        return self._subs.names()

    def start(self) -> None:
        """Start the supervisor (idempotent)."""
        if self._task is None and self.state != "stopped":
            self._task = asyncio.create_task(self._supervise(), name=f"bybit-{self.category}")

    async def stop(self) -> None:
        """Cancel the supervisor and close the socket."""
        self.state = "stopped"
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self._subs.resolve_pending()

    async def subscribe(self, topic: Topic, channel: str) -> None:
        """Serve ``channel`` from ``topic``. Waits for Bybit's ack when a socket is up (or is
        being opened for the first time); raises :class:`SourceError` when it is refused or
        not acknowledged in ``ack_timeout_s``. While disconnected the topic is recorded and
        sent on connect."""
        self.start()
        sub = self._subs.get(topic.name)
        if sub is None:
            sub = self._subs.add(topic, channel)
        else:
            sub.channels[channel] = None
        if self._ws is None and not self._attempted.is_set():
            # The socket is being opened lazily for this topic: wait for that first attempt
            # so a refusal still reaches the caller.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._attempted.wait(), self.connect_timeout_s)
        ws = self._ws
        if ws is not None and self._subs.get(topic.name) is sub and not sub.sent:
            for request in self._subs.prepare("subscribe", [sub]):
                await self._send(ws, request)
        await self._await_ack(sub, channel)

    async def unsubscribe(self, topic: Topic, channel: str) -> None:
        """Stop serving ``channel``; the last channel of a topic unsubscribes it upstream."""
        sub = self._subs.get(topic.name)
        if sub is None or channel not in sub.channels:
            return
        del sub.channels[channel]
        if sub.channels:
            return
        self._subs.remove(sub)
        if topic.kind == "ticker":
            self._book.clear(topic.symbol)
        ws = self._ws
        if ws is not None and sub.sent:
            for request in self._subs.prepare("unsubscribe", [sub]):
                await self._send(ws, request)

    def status(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "state": self.state,
            "topics": len(self._subs),
            "reconnects": self.reconnects,
            "messages": self.messages,
            "errors": self.errors,
            "rejections": self.rejections,
            "book_resyncs": dict(self.book_resyncs),
            "last_message_ms": self.last_message_ms,
            "connected_since_ms": self.connected_since_ms,
            "conn_id": self.conn_id,
            "last_error": self.last_error,
        }

    # -- supervisor -----------------------------------------------------------------------

    async def _supervise(self) -> None:
        failures = 0
        while True:
            self.state = "connecting"
            try:
                async with asyncio.timeout(self.connect_timeout_s):
                    ws = await self._session.ws_connect(
                        self.url,
                        autoping=True,
                        heartbeat=None,
                        timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0),
                    )
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self.state = "down"
                self.last_error = f"connect failed: {type(exc).__name__}: {exc}"
                self._attempted.set()
                delay = self._backoff(failures)
                failures += 1
                _log.warning(
                    "bybit %s: %s; retrying in %.2f s", self.category, self.last_error, delay
                )
                await asyncio.sleep(delay)
                continue
            if self._ever_connected:
                self.reconnects += 1
            self._ever_connected = True
            opened_at = asyncio.get_running_loop().time()
            try:
                reason = await self._run_socket(ws)
            except Exception as exc:  # a bug must not end the supervision
                _log.exception("bybit %s: socket loop failed", self.category)
                reason = f"internal error: {type(exc).__name__}: {exc}"
            finally:
                await self._teardown(ws)
            if asyncio.get_running_loop().time() - opened_at >= STABLE_AFTER_S:
                failures = 0
            self._gap_reason = reason
            self.last_error = reason
            self.state = "connecting"
            delay = self._backoff(failures)
            failures += 1
            _log.warning(
                "bybit %s: connection lost (%s); reconnecting in %.2f s",
                self.category,
                reason,
                delay,
            )
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
        self.conn_id = None
        self._last_frame_at = loop.time()
        self._book.clear()
        subs = self._subs.new_socket()
        # Register the re-subscribe before anything awaits, so a subscribe() woken now finds
        # its topic in flight rather than sending it a second time.
        requests = self._subs.prepare("subscribe", subs)
        self._attempted.set()
        _log.info("bybit %s: connected to %s (%d topics)", self.category, self.url, len(subs))
        await self._publish_gaps()
        for request in requests:
            if not await self._send(ws, request):
                return "send failed during re-subscribe"
        tasks = {
            asyncio.create_task(self._read(ws), name=f"bybit-{self.category}-read"),
            asyncio.create_task(self._ping(ws), name=f"bybit-{self.category}-ping"),
            asyncio.create_task(self._watch(), name=f"bybit-{self.category}-watchdog"),
        }
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
        self._subs.socket_lost(since)
        with contextlib.suppress(Exception):
            await ws.close()

    async def _publish_gaps(self) -> None:
        for event in reconnect_gaps(self._subs, self._gap_reason, self._source_name):
            await self._emit(event)

    # -- the three loops of one socket ----------------------------------------------------

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        async for msg in ws:
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                await self._on_frame(msg.data)
            elif msg.type == aiohttp.WSMsgType.ERROR:
                return f"socket error: {ws.exception()!r}"
        return f"closed by upstream (code {ws.close_code})"

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse) -> str:
        while True:
            await asyncio.sleep(self.ping_interval_s)
            if not await self._send_text(ws, _PING):
                return "ping failed"

    async def _watch(self) -> str:
        loop = asyncio.get_running_loop()
        step = min(1.0, self.watchdog_s / 4)
        while True:
            await asyncio.sleep(step)
            silent = loop.time() - self._last_frame_at
            if silent >= self.watchdog_s:
                return f"watchdog: nothing received for {silent:.1f} s"

    # -- frames ---------------------------------------------------------------------------

    async def _on_frame(self, raw: str | bytes) -> None:
        self._last_frame_at = asyncio.get_running_loop().time()
        try:
            frame = parse_frame(raw)
            if isinstance(frame, DataFrame):
                await self._on_data(frame)
            elif isinstance(frame, Ack):
                await self._on_ack(frame)
            elif isinstance(frame, Pong) and frame.conn_id:
                self.conn_id = frame.conn_id
        except (ValueError, KeyError, TypeError) as exc:  # MalformedFrameError is a ValueError
            self.errors += 1
            text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
            _log.warning("bybit %s: dropped a frame (%s): %.300s", self.category, exc, text)

    async def _on_data(self, frame: DataFrame) -> None:
        self.last_message_ms = now_ms()
        self.messages += 1
        sub = self._subs.get(frame.topic.name)
        if sub is None:  # a frame still in flight after an unsubscribe
            return
        for event in events_of(frame, sub, self._book, self.category, self._source_name):
            await self._emit(event)
        if (broken := sub.broken) is not None:  # a book broke and its gap is out: count it,
            sub.broken = None  # and unsubscribe + subscribe: Bybit sends a fresh snapshot
            self.book_resyncs[broken.cause] += 1
            _log.warning("bybit %s: %s", self.category, broken.reason)
            if (ws := self._ws) is not None and sub.sent:
                for request in self._subs.resubscribe(sub):
                    await self._send(ws, request)

    async def _on_ack(self, ack: Ack) -> None:
        if ack.conn_id:
            self.conn_id = ack.conn_id
        request = self._subs.pop_request(ack.req_id)
        if request is None:
            if not ack.success:
                _log.warning("bybit %s: %s refused: %s", self.category, ack.op, ack.ret_msg)
            return
        if request.op != "subscribe" or not is_refusal(ack):
            if is_refusal(ack):
                _log.warning(
                    "bybit %s: %s %s refused: %s",
                    self.category,
                    request.op,
                    ",".join(request.topics),
                    ack.ret_msg,
                )
            for sub in self._subs.waiting_on(request):
                sub.live = True
            request.future.set_result(ack)
            return
        subs = self._subs.waiting_on(request)
        ws = self._ws
        if len(subs) > 1 and ws is not None:
            # One refused arg fails the whole batch: ask again one topic per request, so each
            # topic gets its own verdict (accepted ones answer "already subscribed"). The
            # new waiters are in place before the old one resolves (see _await_ack).
            requests = [r for sub in subs for r in self._subs.prepare("subscribe", [sub])]
            request.future.set_result(None)
            for retry in requests:
                await self._send(ws, retry)
            return
        for sub in subs:
            self.rejections += 1
            self._subs.remove(sub)
            if sub.topic.kind == "ticker":
                self._book.clear(sub.topic.symbol)
            _log.warning(
                "bybit %s: topic %s refused: %s", self.category, sub.topic.name, ack.ret_msg
            )
        request.future.set_result(ack)

    # -- requests -------------------------------------------------------------------------

    async def _await_ack(self, sub: Subscription, channel: str) -> None:
        """Wait for the verdict on ``sub``'s pending subscribe (if any), following a split
        batch to the topic's own request; a lost socket leaves the topic desired."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ack_timeout_s
        while (waiter := sub.waiter) is not None:
            try:
                ack = await asyncio.wait_for(asyncio.shield(waiter), deadline - loop.time())
            except TimeoutError:
                await self.unsubscribe(sub.topic, channel)
                raise SourceError(
                    f"Bybit {self.category} did not acknowledge topic '{sub.topic.name}' "
                    f"within {self.ack_timeout_s:g} s; try again later."
                ) from None
            if ack is not None:
                if is_refusal(ack):
                    raise SourceError(rejection_reason(sub.topic.name, self.category, ack.ret_msg))
                return
            if sub.waiter is waiter:
                return

    async def _send(self, ws: aiohttp.ClientWebSocketResponse, request: dict[str, Any]) -> bool:
        return await self._send_text(ws, orjson.dumps(request).decode())

    @staticmethod
    async def _send_text(ws: aiohttp.ClientWebSocketResponse, text: str) -> bool:
        """Send, or return False when the socket is going away (the reader notices)."""
        try:
            await ws.send_str(text)
        except (aiohttp.ClientError, ConnectionError, RuntimeError):
            return False
        return True

    async def _emit(self, event: Event) -> None:
        try:
            await self._publish(event)
        except Exception:  # a consumer's failure must not take the upstream socket down
            _log.exception("bybit %s: publish failed for %s", self.category, event.channel)
