"""The asyncio client: one supervised WebSocket to a hub's native ``/ws``, kept alive.

One task (the *runner*) owns the connection: connect, authenticate (``auth`` op), re-subscribe
every channel with ``recover`` from the last ``(epoch, offset)`` seen, then read until the
socket closes; then wait a capped, jittered backoff and start again. Each connection has a
*reader* task (``_reader``) that resolves replies to pending requests (``_requests``) and
feeds data, through the subscriptions' :class:`~cryptowire.client._tracker.ChannelTracker`
(``_subscriptions``: dedupe, gaps), into the bounded inbox that ``async for`` drains. Replies
are applied by the reader before it reads the next frame, so a subscribe reply always updates
the subscription set before its first data frame.

Close codes 4001 (unauthorized), 4004 (forbidden origin) and 4010 (key revoked) end the
client with :class:`AuthRejected`/:class:`ConnectError` (``closecodes.py``: "do not
retry"); every other close, including 1001 (shutdown) and 4008 (slow consumer), is retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from functools import partial
from types import TracebackType
from typing import Any

import aiohttp
from yarl import URL

import cryptowire.closecodes as closecodes
from cryptowire.backoff import Backoff
from cryptowire.client._errors import (
    ClientError,
    ConnectError,
    ConnectionLost,
    RequestError,
    RequestTimeout,
    SubscribeError,
)
from cryptowire.client._inbox import Inbox
from cryptowire.client._messages import (
    ClientEvent,
    Disconnected,
    Position,
    Reconnected,
    Reply,
    SubscribeReply,
    UnsubscribeReply,
)
from cryptowire.client._reader import Reader
from cryptowire.client._requests import Dropped, Requests
from cryptowire.client._requests import WebSocket as _WS
from cryptowire.client._subscriptions import Subscriptions, check_interval
from cryptowire.errors import CryptowireError

log = logging.getLogger("cryptowire.client")

#: Closes whose advice is "pause first": the next attempt waits at least this long.
_PAUSE_AFTER = {closecodes.RATE_LIMITED.code: 2.0, closecodes.SERVER_FULL.code: 1.0}


class Client:
    """A connection to a cryptowire hub that survives drops and hub restarts.

    Use :func:`connect`. ``async for item in client`` yields :class:`Message`,
    :class:`Gap`, :class:`Disconnected` and :class:`Reconnected`; it ends when the client
    is closed, and raises :class:`AuthRejected` when the hub refuses the key.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        connect_timeout_s: float | None = 10.0,
        request_timeout_s: float = 10.0,
        heartbeat_s: float | None = 20.0,
        max_queue: int = 10_000,
        headers: Mapping[str, str] | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = url
        self._api_key = api_key
        self._backoff = Backoff(min(backoff_base_s, backoff_max_s), backoff_max_s)
        self._connect_timeout = connect_timeout_s
        self._request_timeout = request_timeout_s
        self._heartbeat = heartbeat_s
        self._headers = dict(headers or {})
        self._http = session
        self._own_http = session is None
        self._inbox: Inbox[ClientEvent] = Inbox(max_queue)
        self._subs = Subscriptions(self._inbox)
        self._requests = Requests()
        self._reader = Reader(self._requests, self._subs, self._inbox, self._safe_url)
        self._ws: _WS | None = None
        self._ready = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._fatal: BaseException | None = None
        self._closed = False
        self._lost_at: float | None = None
        self._attempts = 0
        self._last_error = "not connected yet"
        self.scopes: frozenset[str] = frozenset()
        self.reconnects = 0

    # -- public state -------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Connected, authenticated and re-subscribed right now."""
        return self._ws is not None

    @property
    def subscriptions(self) -> frozenset[str]:
        """The channels (canonical names) this client keeps subscribed across reconnects."""
        return frozenset(self._subs.desired)

    @property
    def duplicates_dropped(self) -> int:
        """Messages dropped because their ``(epoch, offset)`` was already delivered."""
        return self._subs.tracker.duplicates

    def position(self, channel: str) -> Position | None:
        """The last position seen on ``channel`` (what a reconnect recovers from)."""
        pos = self._subs.tracker.position(channel)
        return None if pos is None else Position(channel, pos[0], pos[1])

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Client:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def open(self) -> None:
        """Start the runner and wait for the first session (``connect_timeout_s``)."""
        if self._runner is not None:
            raise ClientError("The client is already open.")
        if self._http is None:
            self._http = aiohttp.ClientSession()
        self._runner = asyncio.create_task(self._run(), name="cryptowire.client")
        try:
            try:
                await self._wait_ready(self._connect_timeout)
            except TimeoutError as exc:
                raise ConnectError(
                    f"Could not connect to {self._safe_url} within "
                    f"{self._connect_timeout}s: {self._last_error}") from exc
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the connection and stop reconnecting; iteration ends after what is
        already buffered."""
        if self._closed:
            return
        self._closed = True
        self._inbox.end()
        self._ready.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            await asyncio.wait({runner})
        self._requests.drop(ClientError("The client was closed."))
        if self._own_http and self._http is not None:
            await self._http.close()

    # -- iteration ------------------------------------------------------------------------

    def __aiter__(self) -> Client:
        return self

    async def __anext__(self) -> ClientEvent:
        return await self._inbox.get()

    # -- requests -------------------------------------------------------------------------

    async def subscribe(self, *channels: str, interval_ms: int | None = None
                        ) -> SubscribeReply:
        """Subscribe to ``channels``; they stay subscribed across reconnects.

        ``interval_ms`` (50..60000) asks for conflation: per channel and interval, the state
        at its end (``ticker``, ``kline``, ``book``) or every event of it, one
        :class:`Message` each. Subscribing again to a channel sets its interval anew.

        Returns the hub's reply; a channel it refused is in ``reply.rejected`` with the
        reason. Raises :class:`SubscribeError` only when every channel was refused.
        """
        if not channels:
            raise ValueError("subscribe() needs at least one channel, e.g. 'ticker:BTCUSDT'.")
        frame: dict[str, Any] = {"op": "subscribe", "args": list(dict.fromkeys(channels))}
        if interval_ms is not None:
            frame["interval_ms"] = check_interval(interval_ms)
        on_reply = partial(self._subs.on_subscribed, interval_ms=interval_ms)
        reply = await self._call(frame, on_reply=on_reply, idempotent=True)
        sub = SubscribeReply.from_raw(reply.body)
        if not sub.channels and sub.rejected:
            raise SubscribeError(sub.rejected)
        return sub

    async def unsubscribe(self, *channels: str) -> UnsubscribeReply:
        """Stop receiving ``channels`` (messages already buffered are still yielded)."""
        if not channels:
            raise ValueError("unsubscribe() needs at least one channel.")
        for channel in channels:
            self._subs.forget(channel)
        frame = {"op": "unsubscribe", "args": list(dict.fromkeys(channels))}
        reply = await self._call(frame, on_reply=self._subs.on_unsubscribed, idempotent=True)
        return UnsubscribeReply.from_raw(reply.body)

    async def publish(self, channel: str, data: Any) -> Position:
        """Publish ``data`` on ``channel`` (an ``app:<name>`` channel; needs a key with the
        ``publish`` or ``admin`` scope); returns where the hub put it.

        ``Decimal`` values are sent as decimal strings. Not resent after a drop: if the
        connection goes away before the hub answers, :class:`ConnectionLost` is raised and
        the event may or may not have been published.
        """
        frame = {"op": "publish", "args": [{"channel": channel, "data": data}]}
        reply = await self._call(frame, idempotent=False)
        positions = reply.body.get("positions") or []
        if not positions or not isinstance(positions[0], dict):
            raise RequestError("INTERNAL_ERROR", f"Unexpected publish reply: {reply.body}")
        pos = positions[0]
        return Position(str(pos["channel"]), str(pos["epoch"]), int(pos["offset"]))

    async def _call(self, frame: dict[str, Any], *,
                    on_reply: Callable[[Reply], None] | None = None,
                    idempotent: bool) -> Reply:
        """Send ``frame`` on the live connection (waiting for one) and await its reply;
        an idempotent request is resent after a drop, within the same deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._request_timeout
        op = frame["op"]
        while True:
            try:
                ws = await self._wait_ready(deadline - loop.time())
            except TimeoutError as exc:
                raise RequestTimeout(
                    f"'{op}' got no reply within {self._request_timeout}s: not connected "
                    f"({self._last_error})") from exc
            try:
                return await self._requests.send(ws, frame, on_reply, deadline - loop.time(),
                                                 self._request_timeout)
            except Dropped as exc:
                if not idempotent:
                    raise ConnectionLost(
                        f"The connection dropped before the hub answered '{op}'; it may or "
                        "may not have been applied.") from exc

    async def _wait_ready(self, within_s: float | None) -> _WS:
        async with asyncio.timeout(within_s):
            while True:
                if self._fatal is not None:
                    raise self._fatal
                if self._closed:
                    raise ClientError("The client is closed.")
                ws = self._ws
                if ws is not None:
                    return ws
                self._ready.clear()
                await self._ready.wait()

    # -- the runner -----------------------------------------------------------------------

    @property
    def _safe_url(self) -> str:
        """The URL without its query (which may hold ``api_key``)."""
        return str(URL(self.url).with_query(None))

    def _fail(self, exc: BaseException) -> None:
        self._fatal = exc
        self._requests.drop(exc)
        self._inbox.end(exc)
        self._ready.set()

    async def _run(self) -> None:
        try:
            await self._loop()
        except CryptowireError as exc:
            log.error("cryptowire client for %s stops: %s", self._safe_url, exc)
            self._fail(exc)
        except Exception as exc:  # a bug: end iteration with it rather than hang
            log.exception("cryptowire client for %s crashed", self._safe_url)
            self._fail(ClientError(f"The client crashed: {exc!r}"))

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._attempts += 1
            code: int | None = None
            live = False
            reason = ""
            ws = await self._open()
            if ws is not None:
                live, code, reason = await self._serve(ws)
                self._last_error = f"closed with {code}: {reason}" if code else reason
            delay = max(self._backoff.next(), _PAUSE_AFTER.get(code or 0, 0.0))
            if live:
                self._lost_at = loop.time()
                log.warning("connection to %s lost (%s); reconnecting in %.1fs",
                            self._safe_url, self._last_error, delay)
                self._inbox.put_nowait(Disconnected(code, reason, delay))
            else:
                log.info("cannot connect to %s (%s); retrying in %.1fs",
                         self._safe_url, self._last_error, delay)
            await asyncio.sleep(delay)

    async def _open(self) -> _WS | None:
        assert self._http is not None
        try:
            async with asyncio.timeout(self._request_timeout):
                return await self._http.ws_connect(
                    self.url, heartbeat=self._heartbeat, headers=self._headers,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0),
                    max_msg_size=0,
                )
        except aiohttp.WSServerHandshakeError as exc:
            if 400 <= exc.status < 500 and exc.status not in (408, 429):
                raise ConnectError(f"{self._safe_url} refused the WebSocket upgrade: HTTP "
                                   f"{exc.status} {exc.message}. Check the URL (the native "
                                   "socket is /ws) and the Origin.") from exc
            self._last_error = f"upgrade failed: HTTP {exc.status} {exc.message}"
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self._last_error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        return None

    async def _serve(self, ws: _WS) -> tuple[bool, int | None, str]:
        """Handshake then read until ``ws`` closes: ``(was live, close code, reason)``."""
        reader = asyncio.create_task(self._reader.run(ws), name="cryptowire.client.reader")
        try:
            try:
                await self._handshake(ws)
            except (Dropped, RequestTimeout, RequestError) as exc:
                if not isinstance(exc, Dropped):
                    await ws.close()
                code, reason = await reader  # raises AuthRejected after 4001/4010
                return False, code, reason or str(exc)
            self._backoff.reset()
            self._attempts = 0
            self._lost_at = None
            self._ws = ws
            self._ready.set()
            log.info("connected to %s (%d channels)", self._safe_url, len(self._subs.desired))
            code, reason = await reader
            return True, code, reason
        finally:
            self._ws = None
            self._ready.clear()
            if not reader.done():
                reader.cancel()
                await asyncio.wait({reader})
            elif not reader.cancelled():
                reader.exception()  # retrieved: the handshake's own error is the one raised
            await ws.close()
            self._requests.drop(Dropped("connection closed"))

    async def _handshake(self, ws: _WS) -> None:
        timeout = self._request_timeout
        if self._api_key is not None:
            reply = await self._requests.send(ws, {"op": "auth", "args": [self._api_key]},
                                              None, timeout, timeout)
            self.scopes = frozenset(str(s) for s in reply.body.get("scopes") or ())
        if self._lost_at is not None:
            self.reconnects += 1
            downtime = asyncio.get_running_loop().time() - self._lost_at
            self._inbox.put_nowait(Reconnected(self._attempts, round(downtime, 3)))
        for frame in self._subs.resubscribe_frames():
            await self._requests.send(ws, frame, self._subs.on_resubscribed, timeout, timeout)

