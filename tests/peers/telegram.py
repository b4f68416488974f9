"""A local HTTP server speaking the Telegram Bot API shapes (TESTING.md, "Telegram Bot API").

``POST /bot<token>/getMe`` -> ``{"ok":true,"result":{"id","is_bot":true,"first_name",
"username",...}}``; ``/sendMessage`` -> ``{"ok":true,"result":<Message>}``, recorded in
:attr:`TelegramPeer.messages`. Switches: :meth:`rate_limit_next` answers the next N
sendMessage calls with ``{"ok":false,"error_code":429,"description":"Too Many Requests:
retry after N","parameters":{"retry_after":N}}``; :attr:`forbidden_chats` get 403
``Forbidden: bot was blocked by the user``. Point python-telegram-bot at it with
``base_url=peer.base_url``.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Sent:
    chat_id: str
    text: str
    parse_mode: str | None
    at: float


@dataclass
class TelegramPeer:
    token: str = "123456:TEST-token"
    messages: list[Sent] = field(default_factory=list)
    calls: list[tuple[str, float]] = field(default_factory=list)
    forbidden_chats: set[str] = field(default_factory=set)
    _limit_next: int = 0
    _retry_after: int = 1
    _runner: web.AppRunner | None = None
    port: int = 0
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def rate_limit_next(self, count: int, retry_after: int = 1) -> None:
        self._limit_next = count
        self._retry_after = retry_after

    async def _params(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            body: dict[str, Any] = await request.json()
            return body
        return {k: v for k, v in (await request.post()).items()}

    async def handle(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"]
        self.calls.append((method, time.monotonic()))
        if token != self.token:
            return web.json_response({"ok": False, "error_code": 401,
                                      "description": "Unauthorized"}, status=401)
        params = await self._params(request)
        if method == "getMe":
            return web.json_response({"ok": True, "result": {
                "id": 123456, "is_bot": True, "first_name": "cryptowire test bot",
                "username": "cryptowire_test_bot", "can_join_groups": True,
                "can_read_all_group_messages": False, "supports_inline_queries": False}})
        if method == "sendMessage":
            chat = str(params.get("chat_id"))
            if self._limit_next > 0:
                self._limit_next -= 1
                wait = self._retry_after
                return web.json_response({
                    "ok": False, "error_code": 429,
                    "description": f"Too Many Requests: retry after {wait}",
                    "parameters": {"retry_after": wait}}, status=429)
            if chat in self.forbidden_chats:
                return web.json_response({"ok": False, "error_code": 403,
                                          "description": "Forbidden: bot was blocked by the "
                                                         "user"}, status=403)
            text = str(params.get("text"))
            self.messages.append(Sent(chat, text, params.get("parse_mode"), time.monotonic()))
            return web.json_response({"ok": True, "result": {
                "message_id": next(self._ids), "date": int(time.time()),
                "chat": {"id": int(chat), "type": "group", "title": "test group"},
                "text": text}})
        return web.json_response({"ok": False, "error_code": 404,
                                  "description": f"Not Found: method {method}"}, status=404)

    async def __aenter__(self) -> TelegramPeer:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

