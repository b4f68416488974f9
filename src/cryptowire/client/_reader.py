"""The reader of one connection: frames, in order, to the pending requests and the inbox.

Replies are applied before the next frame is read, so a subscribe reply updates the
subscription set before its first data frame. Close codes 4001 (unauthorized), 4004
(forbidden origin) and 4010 (key revoked) end the client (``wire/closecodes.py``: "do not
retry"); every other close returns, and the runner reconnects.
"""

from __future__ import annotations

import logging

import aiohttp

import cryptowire.closecodes as closecodes
from cryptowire.client._errors import AuthRejected, ConnectError
from cryptowire.client._inbox import Inbox
from cryptowire.client._messages import Batch, ClientEvent, FrameError, Message, parse_frame
from cryptowire.client._requests import Dropped, Requests, WebSocket
from cryptowire.client._subscriptions import Subscriptions

log = logging.getLogger("cryptowire.client")

#: Close codes after which reconnecting cannot help (closecodes.py: "do not retry").
_AUTH_CLOSES = {closecodes.UNAUTHORIZED.code, closecodes.KEY_REVOKED.code}
_FATAL_CLOSES = _AUTH_CLOSES | {closecodes.FORBIDDEN_ORIGIN.code}


class Reader:
    """Reads one connection after another for a client (``url``: for logs, no query)."""

    def __init__(self, requests: Requests, subs: Subscriptions, inbox: Inbox[ClientEvent],
                 url: str) -> None:
        self._requests = requests
        self._subs = subs
        self._inbox = inbox
        self._url = url

    async def run(self, ws: WebSocket) -> tuple[int | None, str]:
        """Dispatch frames until ``ws`` closes; the close code and reason."""
        reason = ""
        try:
            while True:
                msg = await ws.receive()
                if msg.type is aiohttp.WSMsgType.TEXT:
                    await self.on_text(msg.data)
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
            self._requests.drop(Dropped("connection closed"))
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

    async def on_text(self, text: str) -> None:
        try:
            frame = parse_frame(text)
        except FrameError as exc:
            log.warning("skipping a frame from %s: %s", self._url, exc)
            return
        if isinstance(frame, Batch):  # a conflated interval: one message per event
            for message in frame.messages():
                await self.on_message(message)
            return
        if isinstance(frame, Message):
            await self.on_message(frame)
            return
        if not self._requests.resolve(frame) and frame.is_error:
            log.warning("hub error on %s: %s %s", self._url, frame.body.get("code"),
                        frame.body.get("message"))

    async def on_message(self, message: Message) -> None:
        if not self._subs.wanted(message):
            return  # in flight when we unsubscribed
        for item in self._subs.tracker.on_message(message):
            await self._inbox.put(item)
