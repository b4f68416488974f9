"""The asyncio client: one supervised WebSocket to a hub's native ``/ws``, kept alive.

One task (the *runner*) owns the connection: connect, authenticate (``auth`` op), re-subscribe
every channel with ``recover`` from the last ``(epoch, offset)`` seen, then read until the
socket closes; then wait a capped, jittered backoff and start again. Each connection has a
*reader* task that resolves replies to pending requests and feeds data, through the
:class:`~cryptowire.client._tracker.ChannelTracker` (dedupe, gaps), into the bounded inbox
that ``async for`` drains. Replies are applied by the reader before it reads the next frame,
so a subscribe reply always updates the subscription set before its first data frame.

Close codes 4001 (unauthorized), 4004 (forbidden origin) and 4010 (key revoked) end the
client with :class:`AuthRejected`/:class:`ConnectError` (``closecodes.py``: "do not
retry"); every other close, including 1001 (shutdown) and 4008 (slow consumer), is retried.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Any

import aiohttp
import orjson
from yarl import URL

import cryptowire.closecodes as closecodes
from cryptowire.backoff import Backoff
from cryptowire.client._errors import (
    AuthRejected,
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
    FrameError,
    Gap,
    Message,
    Position,
    Reconnected,
    Reply,
    SubscribeReply,
    UnsubscribeReply,
    parse_frame,
)
from cryptowire.client._tracker import ChannelTracker
from cryptowire.errors import CryptowireError
from cryptowire.jsonnum import decimal_str

log = logging.getLogger("cryptowire.client")

_WS = aiohttp.ClientWebSocketResponse[bool]

#: Close codes after which reconnecting cannot help (closecodes.py: "do not retry").
_AUTH_CLOSES = {closecodes.UNAUTHORIZED.code, closecodes.KEY_REVOKED.code}
_FATAL_CLOSES = _AUTH_CLOSES | {closecodes.FORBIDDEN_ORIGIN.code}
#: Closes whose advice is "pause first": the next attempt waits at least this long.
_PAUSE_AFTER = {closecodes.RATE_LIMITED.code: 2.0, closecodes.SERVER_FULL.code: 1.0}
#: Channels per re-subscribe frame, to stay far below server.max_frame_bytes.
_RESUBSCRIBE_CHUNK = 50


class _Dropped(Exception):
    """Internal: the connection went away while a request waited for its reply."""


@dataclass(slots=True)
class _Pending:
    future: asyncio.Future[Reply]
    on_reply: Callable[[Reply], None] | None


def _json_default(obj: object) -> str:
    # Money travels as decimal strings (PROTOCOLS.md, "Numbers"); never through float.
    if isinstance(obj, Decimal):
        return decimal_str(obj)  # never "1E-9"
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _reply_error(reply: Reply, *, close_code: int | None = None) -> CryptowireError:
    code = str(reply.body.get("code", "INTERNAL_ERROR"))
    message = str(reply.body.get("message", ""))
    if code in ("UNAUTHORIZED", "FORBIDDEN"):
        return AuthRejected(message, close_code=close_code, forbidden=code == "FORBIDDEN")
    return RequestError(code, message)


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
        self._tracker = ChannelTracker()
        self._desired: set[str] = set()
        self._pending: dict[int, _Pending] = {}
        self._ids = itertools.count(1)
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
        return frozenset(self._desired)

    @property
    def duplicates_dropped(self) -> int:
        """Messages dropped because their ``(epoch, offset)`` was already delivered."""
        return self._tracker.duplicates

    def position(self, channel: str) -> Position | None:
        """The last position seen on ``channel`` (what a reconnect recovers from)."""
        pos = self._tracker.position(channel)
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
        self._drop_pending(ClientError("The client was closed."))
        if self._own_http and self._http is not None:
            await self._http.close()

    # -- iteration ------------------------------------------------------------------------

    def __aiter__(self) -> Client:
        return self

    async def __anext__(self) -> ClientEvent:
        return await self._inbox.get()

    # -- requests -------------------------------------------------------------------------

    async def subscribe(self, *channels: str) -> SubscribeReply:
        """Subscribe to ``channels``; they stay subscribed across reconnects.

        Returns the hub's reply; a channel it refused is in ``reply.rejected`` with the
        reason. Raises :class:`SubscribeError` only when every channel was refused.
        """
        if not channels:
            raise ValueError("subscribe() needs at least one channel, e.g. 'ticker:BTCUSDT'.")
        frame = {"op": "subscribe", "args": list(dict.fromkeys(channels))}
        reply = await self._call(frame, on_reply=self._on_subscribed, idempotent=True)
        sub = SubscribeReply.from_raw(reply.body)
        if not sub.channels and sub.rejected:
            raise SubscribeError(sub.rejected)
        return sub

    async def unsubscribe(self, *channels: str) -> UnsubscribeReply:
        """Stop receiving ``channels`` (messages already buffered are still yielded)."""
        if not channels:
            raise ValueError("unsubscribe() needs at least one channel.")
        for channel in channels:
            self._desired.discard(channel)
            self._tracker.forget(channel)
        frame = {"op": "unsubscribe", "args": list(dict.fromkeys(channels))}
        reply = await self._call(frame, on_reply=self._on_unsubscribed, idempotent=True)
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
                return await self._request(ws, frame, on_reply, deadline - loop.time())
            except _Dropped as exc:
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

    async def _request(self, ws: _WS, frame: dict[str, Any],
                       on_reply: Callable[[Reply], None] | None, within_s: float) -> Reply:
        rid = next(self._ids)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[rid] = _Pending(future, on_reply)
        try:
            try:
                await ws.send_str(orjson.dumps({"id": rid, **frame},
                                               default=_json_default).decode())
            except (ConnectionError, aiohttp.ClientError, RuntimeError) as exc:
                raise _Dropped(str(exc)) from exc
            if ws.closed and not future.done():
                raise _Dropped("connection closed")  # closed before the reader saw this id
            try:
                async with asyncio.timeout(max(within_s, 0.0)):
                    reply = await future
            except TimeoutError as exc:
                raise RequestTimeout(f"The hub did not answer '{frame['op']}' within "
                                     f"{self._request_timeout}s.") from exc
        finally:
            self._pending.pop(rid, None)
        if reply.is_error:
            raise _reply_error(reply)
        return reply

    def _drop_pending(self, exc: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if not p.future.done():
                p.future.set_exception(exc)

    # -- reply handlers (run by the reader, in frame order) --------------------------------

    def _on_subscribed(self, reply: Reply) -> None:
        sub = SubscribeReply.from_raw(reply.body)
        self._desired.update(sub.channels)
        for gap in self._tracker.on_subscribed(sub):
            self._inbox.put_nowait(gap)

    def _on_resubscribed(self, reply: Reply) -> None:
        sub = SubscribeReply.from_raw(reply.body)
        for rejected in sub.rejected:
            if rejected.arg in self._desired:
                self._desired.discard(rejected.arg)
                self._tracker.forget(rejected.arg)
                self._inbox.put_nowait(Gap(rejected.arg, "The hub refused the re-subscribe "
                                                         f"after a reconnect: {rejected.reason}"))
        for gap in self._tracker.on_subscribed(sub):
            self._inbox.put_nowait(gap)

    def _on_unsubscribed(self, reply: Reply) -> None:
        for channel in reply.body.get("args") or ():
            self._desired.discard(channel)
            self._tracker.forget(channel)

    # -- the runner -----------------------------------------------------------------------

    @property
    def _safe_url(self) -> str:
        """The URL without its query (which may hold ``api_key``)."""
        return str(URL(self.url).with_query(None))

    def _fail(self, exc: BaseException) -> None:
        self._fatal = exc
        self._drop_pending(exc)
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
        reader = asyncio.create_task(self._read(ws), name="cryptowire.client.reader")
        try:
            try:
                await self._handshake(ws)
            except (_Dropped, RequestTimeout, RequestError) as exc:
                if not isinstance(exc, _Dropped):
                    await ws.close()
                code, reason = await reader  # raises AuthRejected after 4001/4010
                return False, code, reason or str(exc)
            self._backoff.reset()
            self._attempts = 0
            self._lost_at = None
            self._ws = ws
            self._ready.set()
            log.info("connected to %s (%d channels)", self._safe_url, len(self._desired))
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
            self._drop_pending(_Dropped("connection closed"))

    async def _handshake(self, ws: _WS) -> None:
        timeout = self._request_timeout
        if self._api_key is not None:
            reply = await self._request(ws, {"op": "auth", "args": [self._api_key]}, None,
                                        timeout)
            self.scopes = frozenset(str(s) for s in reply.body.get("scopes") or ())
        if self._lost_at is not None:
            self.reconnects += 1
            downtime = asyncio.get_running_loop().time() - self._lost_at
            self._inbox.put_nowait(Reconnected(self._attempts, round(downtime, 3)))
        channels = sorted(self._desired)
        for i in range(0, len(channels), _RESUBSCRIBE_CHUNK):
            chunk = channels[i:i + _RESUBSCRIBE_CHUNK]
            frame: dict[str, Any] = {"op": "subscribe", "args": chunk}
            recover = self._tracker.recover_args(chunk)
            if recover:
                frame["recover"] = recover
            await self._request(ws, frame, self._on_resubscribed, timeout)

    async def _read(self, ws: _WS) -> tuple[int | None, str]:
        """Dispatch frames until ``ws`` closes; the close code and reason."""
        reason = ""
        try:
            while True:
                msg = await ws.receive()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    await self._on_text(msg.data)
                elif msg.type is aiohttp.WSMsgType.CLOSE:
                    reason = str(msg.extra or "")
                    break
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    reason = f"{type(msg.data).__name__}: {msg.data}"
                    break
                elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    reason = "connection closed"
                    break
        finally:
            self._drop_pending(_Dropped("connection closed"))
        code = ws.close_code
        if code in _FATAL_CLOSES:
            meaning = {c.code: c for c in closecodes.ALL}[code]
            said = (reason or meaning.meaning).rstrip(". ")
            message = (f"The hub closed the connection with {code} ({meaning.name}): "
                       f"{said}. {meaning.reconnect}")
            if code in _AUTH_CLOSES:
                raise AuthRejected(message, close_code=code)
            raise ConnectError(message)
        return code, reason or "connection closed"

    async def _on_text(self, text: str) -> None:
        try:
            frame = parse_frame(text)
        except FrameError as exc:
            log.warning("skipping a frame from %s: %s", self._safe_url, exc)
            return
        if isinstance(frame, Message):
            if frame.offset >= 0 and frame.channel not in self._desired:
                return  # in flight when we unsubscribed
            for item in self._tracker.on_message(frame):
                await self._inbox.put(item)
            return
        pending = self._pending.pop(frame.id, None) if isinstance(frame.id, int) else None
        if pending is not None:
            if not frame.is_error and pending.on_reply is not None:
                pending.on_reply(frame)
            if not pending.future.done():
                pending.future.set_result(frame)
        elif frame.is_error:
            log.warning("hub error on %s: %s %s", self._safe_url, frame.body.get("code"),
                        frame.body.get("message"))


def connect(
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
) -> Client:
    """A client for the hub at ``url`` (``ws://host:8000/ws``); use ``async with``.

    Entering waits until the first session is up (connected, authenticated with
    ``api_key`` if given), retrying with backoff for up to ``connect_timeout_s`` (``None``:
    forever); after that every drop is retried for ever, with delays doubling from
    ``backoff_base_s`` up to ``backoff_max_s`` (jittered). ``request_timeout_s`` bounds each
    request, including the wait for a reconnect. ``heartbeat_s`` pings the hub so a silently
    dead connection is noticed. At most ``max_queue`` messages are buffered for ``async
    for``; a consumer that falls further behind stops the reading (and the hub may then
    close it as a slow consumer, which the client recovers from).
    """
    return Client(url, api_key, backoff_base_s=backoff_base_s, backoff_max_s=backoff_max_s,
                  connect_timeout_s=connect_timeout_s, request_timeout_s=request_timeout_s,
                  heartbeat_s=heartbeat_s, max_queue=max_queue, headers=headers,
                  session=session)
