"""REST for the on-chain side: the watchlist (admin), the event log, Telegram bindings.

- ``GET /api/v1/tokens[?chain=]`` (read), ``POST /api/v1/tokens`` (admin; either add_token
  payload shape, PROTOCOLS.md 2.3), ``DELETE /api/v1/tokens/{chain}/{address}`` (admin);
- ``GET /api/v1/events?channel=swap:eth[:0x<token>]&since=<block>[:<log index>]&limit=N``
  (read): stored events, the same payloads as the channel's data; with ``since``, the ones
  strictly after that position, oldest first (a client resuming after a disconnect passes
  the ``block:log_index`` of the last event it has); without, the newest ``limit``;
- ``GET/POST /api/v1/telegram/bindings``, ``DELETE /api/v1/telegram/bindings/{group}/{chat}``
  (admin): which Telegram chats a token ``group`` posts to.

:func:`admin_for` is the one :class:`TokenAdmin` of a node, shared with the native admin ops
and the seed 000 dialect; the node builds and closes it (app/wiring.py).
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from cryptowire.core.access import CHANNELS, KEYS, WATCHLIST, check
from cryptowire.core.session import Session
from cryptowire.errors import ChannelError, ProtocolError
from cryptowire.server.auth import rest_principal
from cryptowire.server.context import NODE
from cryptowire.server.node import ServerNode
from cryptowire.server.replies import json, problem
from cryptowire.server.rest import json_body, problems
from cryptowire.sources.evm.tokens import TokenAdmin, chain_of
from cryptowire.store.evm import EvmStore
from cryptowire.wire import native
from cryptowire.wire.native import Request

MAX_LIMIT = 1000


def admin_for(node: ServerNode) -> TokenAdmin:
    """The node's watchlist admin (see the module docstring)."""
    return node.tokens


def evm_store(node: ServerNode) -> EvmStore:
    return admin_for(node).store


async def list_tokens(request: web.Request) -> web.Response:
    await rest_principal(request, WATCHLIST, "read")
    node = request.app[NODE]
    tokens = await admin_for(node).list(request.query.get("chain"))
    return json({"tokens": [t.public() for t in tokens]})


async def add_token(request: web.Request) -> web.Response:
    await rest_principal(request, WATCHLIST, "admin")
    node = request.app[NODE]
    body = await json_body(request)
    if not isinstance(body, dict):
        raise ProtocolError("INVALID_ARGS", 'Expected {"chain": 1, "address": "0x..."}.')
    token = await admin_for(node).add(body)
    return json({"token": token.public()}, status=201)


async def remove_token(request: web.Request) -> web.Response:
    await rest_principal(request, WATCHLIST, "admin")
    node = request.app[NODE]
    chain, address = request.match_info["chain"], request.match_info["address"]
    if not await admin_for(node).remove({"chain": chain, "address": address}):
        return problem(404, "INVALID_ARGS", f"Token {address} is not tracked on chain {chain}.")
    return json({"removed": {"chain": chain_of(node.settings.evm, chain).id,
                             "address": address.lower()}})


#: The columns' ranges (BIGINT block, INTEGER log index): a number beyond them is refused
#: here, not sent to the driver (which raised OverflowError: a 500).
MAX_BLOCK = 2**63 - 1
MAX_LOG_INDEX = 2**31 - 1


def parse_since(text: str | None) -> tuple[int, int] | None:
    if text is None or text == "":
        return None
    block, _, index = text.partition(":")
    usage = "'since' is <block> or <block>:<log index>, e.g. since=19000000:41"
    try:
        position = (int(block), int(index) if index else -1)
    except ValueError:
        raise ProtocolError("INVALID_ARGS", f"{usage}.") from None
    if not (0 <= position[0] <= MAX_BLOCK and -1 <= position[1] <= MAX_LOG_INDEX):
        raise ProtocolError("INVALID_ARGS", f"{usage}; the block is 0 to {MAX_BLOCK}, the "
                                            f"log index 0 to {MAX_LOG_INDEX}.")
    return position


async def events(request: web.Request) -> web.Response:
    node = request.app[NODE]
    raw = request.query.get("channel", "")
    try:
        channel = node.grammar.parse(raw)
    except ChannelError:
        channel = None
    if channel is None or channel.kind not in ("swap", "burn") or channel.chain_id is None:
        await rest_principal(request, CHANNELS, "read")  # no key, no reply on the grammar
        raise ProtocolError("INVALID_ARGS", "'channel' is swap:<chain>[:<token>] or "
                                            "burn:<chain>[:<token>].")
    await rest_principal(request, channel, "read")  # reading history is reading the channel
    try:
        limit = min(int(request.query.get("limit", "100")), MAX_LIMIT)
    except ValueError:
        raise ProtocolError("INVALID_ARGS", "'limit' is an integer.") from None
    rows = await evm_store(node).events(channel.kind, channel.chain_id, token=channel.token,
                                        since=parse_since(request.query.get("since")),
                                        limit=max(limit, 1))
    return json({"channel": channel.name, "events": rows})


async def list_bindings(request: web.Request) -> web.Response:
    await rest_principal(request, KEYS, "admin")
    return json({"bindings": await evm_store(request.app[NODE]).bindings()})


#: A Telegram chat id: an integer, or an ``@username`` (Bot API ``sendMessage``).
_CHAT_ID = re.compile(r"-?[0-9]{1,20}|@[A-Za-z0-9_]{4,64}")


def _binding(body: Any) -> tuple[str, str]:
    usage = 'Expected {"group": "alpha", "chat_id": -100123}'
    if not isinstance(body, dict):
        raise ProtocolError("INVALID_ARGS", f"{usage}.")
    group, chat = body.get("group"), body.get("chat_id")
    if not isinstance(group, str) or not 1 <= len(group) <= 100 or not group.isprintable():
        raise ProtocolError("INVALID_ARGS", f"{usage}: 'group' is 1-100 printable characters.")
    if isinstance(chat, bool) or not isinstance(chat, str | int) \
            or not _CHAT_ID.fullmatch(str(chat)):
        raise ProtocolError("INVALID_ARGS", f"{usage}: 'chat_id' is an integer or an "
                                            "@username.")
    return group, str(chat)


async def bind_chat(request: web.Request) -> web.Response:
    await rest_principal(request, KEYS, "admin")
    group, chat = _binding(await json_body(request))
    created = await evm_store(request.app[NODE]).bind_chat(group, chat)
    return json({"group": group, "chat_id": chat, "created": created},
                status=201 if created else 200)


async def unbind_chat(request: web.Request) -> web.Response:
    await rest_principal(request, KEYS, "admin")
    group, chat = request.match_info["group"], request.match_info["chat_id"]
    if not await evm_store(request.app[NODE]).unbind_chat(group, chat):
        return problem(404, "INVALID_ARGS", f"Chat {chat} is not bound to group {group}.")
    return json({"group": group, "chat_id": chat, "removed": True})


def setup(app: web.Application) -> None:
    app.router.add_get("/api/v1/tokens", problems(list_tokens))
    app.router.add_post("/api/v1/tokens", problems(add_token))
    app.router.add_delete("/api/v1/tokens/{chain}/{address}", problems(remove_token))
    app.router.add_get("/api/v1/events", problems(events))
    app.router.add_get("/api/v1/telegram/bindings", problems(list_bindings))
    app.router.add_post("/api/v1/telegram/bindings", problems(bind_chat))
    app.router.add_delete("/api/v1/telegram/bindings/{group}/{chat_id}", problems(unbind_chat))



async def native_token_op(node: ServerNode, session: Session, req: Request) -> None:
    """The native ``add_token`` / ``remove_token`` (admin) and ``list_tokens`` (read) ops.

    ``{"op":"add_token","args":[{"chain":1,"address":"0x..."}]}`` -> ``{"op":"add_token",
    "success":true,"data":{token}}``; errors go out as the usual ``{"op":"error",...}``.
    """
    admin = admin_for(node)
    if req.op == "list_tokens":
        check(session.principal, WATCHLIST, "read", node.policy)
        tokens = await admin.list(req.args[0] if req.args else None)
        node.hub.fanout.send(session, native.reply(req.id, {
            "op": "list_tokens", "success": True, "data": [t.public() for t in tokens]}))
        return
    check(session.principal, WATCHLIST, "admin", node.policy)
    if len(req.args) != 1 or not isinstance(req.args[0], dict):
        raise ProtocolError("INVALID_ARGS", f"'{req.op}' takes one object: "
                                            '[{"chain": 1, "address": "0x..."}].')
    if req.op == "add_token":
        token = await admin.add(req.args[0])
        node.hub.fanout.send(session, native.reply(req.id, {
            "op": "add_token", "success": True, "message": "Successfully added token",
            "data": token.public()}))
        return
    removed = await admin.remove(req.args[0])
    node.hub.fanout.send(session, native.reply(req.id, {
        "op": "remove_token", "success": removed,
        "message": "Removed" if removed else "Token is not tracked"}))
