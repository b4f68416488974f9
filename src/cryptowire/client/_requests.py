"""Requests awaiting their reply on one connection: send with an id, resolve by id, drop all.

A reply's ``on_reply`` hook runs in the reader, before the reader reads the next frame, so
what a reply changes (the subscription set) is in place before the data that follows it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import aiohttp
import orjson

from cryptowire.client._errors import AuthRejected, RequestError, RequestTimeout
from cryptowire.client._messages import Reply
from cryptowire.errors import CryptowireError
from cryptowire.jsonnum import decimal_str

WebSocket = aiohttp.ClientWebSocketResponse[bool]


class Dropped(Exception):
    """The connection went away while a request waited for its reply (internal)."""


@dataclass(slots=True)
class Pending:
    future: asyncio.Future[Reply]
    on_reply: Callable[[Reply], None] | None


def json_default(obj: object) -> str:
    # Money travels as decimal strings (PROTOCOLS.md, "Numbers"); never through float.
    if isinstance(obj, Decimal):
        return decimal_str(obj)  # never "1E-9"
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def reply_error(reply: Reply, *, close_code: int | None = None) -> CryptowireError:
    code = str(reply.body.get("code", "INTERNAL_ERROR"))
    message = str(reply.body.get("message", ""))
    if code in ("UNAUTHORIZED", "FORBIDDEN"):
        return AuthRejected(message, close_code=close_code, forbidden=code == "FORBIDDEN")
    return RequestError(code, message)


class Requests:
    """The requests in flight, by id (ids count up for the client's whole life)."""

    def __init__(self) -> None:
        self._pending: dict[int, Pending] = {}
        self._ids = itertools.count(1)

    async def send(self, ws: WebSocket, frame: dict[str, Any],
                   on_reply: Callable[[Reply], None] | None, within_s: float,
                   timeout_s: float) -> Reply:
        """Send ``frame`` with a fresh id and await its reply for ``within_s`` at most
        (``timeout_s`` is the configured bound, for the message); an error reply raises."""
        rid = next(self._ids)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[rid] = Pending(future, on_reply)
        try:
            try:
                await ws.send_str(orjson.dumps({"id": rid, **frame},
                                               default=json_default).decode())
            except (ConnectionError, aiohttp.ClientError, RuntimeError) as exc:
                raise Dropped(str(exc)) from exc
            if ws.closed and not future.done():
                raise Dropped("connection closed")  # closed before the reader saw this id
            try:
                async with asyncio.timeout(max(within_s, 0.0)):
                    reply = await future
            except TimeoutError as exc:
                raise RequestTimeout(f"The hub did not answer '{frame['op']}' within "
                                     f"{timeout_s}s.") from exc
        finally:
            self._pending.pop(rid, None)
        if reply.is_error:
            raise reply_error(reply)
        return reply

    def resolve(self, reply: Reply) -> bool:
        """Hand ``reply`` to the request of its id (running its hook first); False when no
        request waits for it."""
        pending = self._pending.pop(reply.id, None) if isinstance(reply.id, int) else None
        if pending is None:
            return False
        if not reply.is_error and pending.on_reply is not None:
            pending.on_reply(reply)
        if not pending.future.done():
            pending.future.set_result(reply)
        return True

    def drop(self, exc: BaseException) -> None:
        """Fail every request in flight with ``exc``."""
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if not p.future.done():
                p.future.set_exception(exc)
