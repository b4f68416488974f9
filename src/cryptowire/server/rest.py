"""REST under ``/api/v1``: the publish API and API keys (admin)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from cryptowire.core.access import CHANNELS, KEYS
from cryptowire.errors import AuthError, CryptowireError, ProtocolError, StoreError
from cryptowire.jsonnum import loads_exact
from cryptowire.logthrottle import log_exception
from cryptowire.server.auth import rest_principal
from cryptowire.server.context import NODE
from cryptowire.server.publishing import publish_items
from cryptowire.server.replies import json, problem
from cryptowire.server.rest_limits import over_rest_rate

log = logging.getLogger("cryptowire.server.rest")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problems(handler: Handler) -> Handler:
    """Wrap a REST handler: cryptowire errors become JSON problems with the wire error codes
    (their ``message``: a store failure's driver text stays in the log), anything else a
    JSON 500 without details.

    A decorator on the REST routes rather than an application middleware: a middleware would
    also wrap every WebSocket handler, and its suspended frame (plus aiohttp's per-request
    middleware chain) would cost each open connection ~0.5 KiB for nothing.
    """

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        if request.method == "GET":  # reads: publishing is bounded by its own limits
            refused = over_rest_rate(request)
            if refused is not None:
                return refused
        try:
            return await handler(request)
        except AuthError as exc:
            return problem(403 if exc.code == "FORBIDDEN" else 401, exc.code, exc.message)
        except ProtocolError as exc:
            status = 413 if exc.code == "LIMIT_EXCEEDED" else 400
            return problem(status, exc.code, exc.message)
        except StoreError as exc:
            if exc.detail is not None:  # the database failed: not the request's fault
                return problem(503, "INTERNAL_ERROR", exc.message)
            return problem(400, "INVALID_ARGS", exc.message)
        except CryptowireError as exc:
            return problem(400, exc.code, exc.message)
        except web.HTTPException:
            raise
        except Exception:
            # A bug, not the client's fault: a JSON 500 without details, logged (throttled:
            # a client can repeat the request).
            log_exception(log, "REST %s %s failed", request.method, request.path)
            return problem(500, "INTERNAL_ERROR", "Internal error; try again.")

    return wrapped


async def json_body(request: web.Request, *, exact: bool = False) -> Any:
    """The request's JSON body, bounded by ``server.publish_max_bytes``; with ``exact``,
    numbers keep their digits (:func:`~cryptowire.jsonnum.loads_exact`)."""
    node = request.app[NODE]
    limit = node.settings.server.publish_max_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ProtocolError("LIMIT_EXCEEDED", f"Body larger than {limit} bytes.")
    # StreamReader.read(n) returns what has arrived so far (up to n), not n bytes: a body
    # that comes in several pieces (chunked, or just large) must be read until EOF.
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise ProtocolError("LIMIT_EXCEEDED", f"Body larger than {limit} bytes.")
    raw = b"".join(chunks)
    try:
        return loads_exact(raw) if exact else orjson.loads(raw)
    except ValueError as exc:  # orjson.JSONDecodeError is one
        raise ProtocolError("INVALID_JSON", f"Body is not valid JSON: {exc}") from exc


async def publish(request: web.Request) -> web.Response:
    """``POST /api/v1/publish``: one ``{"channel","data"}`` object or a list of them."""
    await rest_principal(request, CHANNELS, "publish")
    body = await json_body(request, exact=True)
    items = body if isinstance(body, list) else [body]
    positions = await publish_items(request.app[NODE], items)
    return json({"published": len(positions), "positions": positions})


def _key_json(key: Any) -> dict[str, Any]:
    return {"id": key.id, "prefix": key.prefix, "name": key.name,
            "scopes": sorted(key.scopes), "created_at": key.created_at,
            "revoked_at": key.revoked_at, "last_used_at": key.last_used_at}


async def list_keys(request: web.Request) -> web.Response:
    await rest_principal(request, KEYS, "admin")
    store = request.app[NODE].store
    assert store is not None
    return json({"keys": [_key_json(k) for k in await store.list_keys()]})


async def create_key(request: web.Request) -> web.Response:
    """``POST /api/v1/keys {"name","scopes"}``: the plaintext key is in this reply only."""
    await rest_principal(request, KEYS, "admin")
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        raise ProtocolError("INVALID_ARGS", 'Expected {"name": "...", "scopes": ["read"]}.')
    scopes = body.get("scopes", ["read"])
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ProtocolError("INVALID_ARGS", "'scopes' is a list of strings.")
    store = request.app[NODE].store
    assert store is not None
    plaintext, key = await store.create_key(body["name"], scopes)
    return json({"key": plaintext, **_key_json(key)}, status=201)


async def revoke_key(request: web.Request) -> web.Response:
    """``DELETE /api/v1/keys/{id}``: revoke, and close the key's sessions on this node now
    (other nodes close theirs on their next revocation poll, within seconds)."""
    await rest_principal(request, KEYS, "admin")
    node = request.app[NODE]
    assert node.store is not None
    key_id = request.match_info["key_id"]
    if not await node.store.revoke_key(key_id):
        return problem(404, "INVALID_ARGS", f"No active key '{key_id}'.")
    closed = 0
    for key in await node.store.list_keys():
        if key.id == key_id or key.prefix == key_id:
            closed += node.close_key_sessions(key.id)
    return json({"revoked": key_id, "sessions_closed": closed})


def setup(app: web.Application) -> None:
    app.router.add_post("/api/v1/publish", problems(publish))
    app.router.add_get("/api/v1/keys", problems(list_keys))
    app.router.add_post("/api/v1/keys", problems(create_key))
    app.router.add_delete("/api/v1/keys/{key_id}", problems(revoke_key))
