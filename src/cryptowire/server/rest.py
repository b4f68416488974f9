"""REST under ``/api/v1``: the publish API and API keys (admin)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from cryptowire.errors import AuthError, CryptowireError, ProtocolError, StoreError
from cryptowire.server.auth import rest_principal
from cryptowire.server.context import NODE
from cryptowire.server.rest_limits import over_rest_rate
from cryptowire.server.ws_native import publish_items


def problem(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status,
                             dumps=lambda o: orjson.dumps(o).decode())


def json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status,
                        content_type="application/json")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def problems(handler: Handler) -> Handler:
    """Wrap a REST handler: cryptowire errors become JSON problems with the wire error codes.

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
            return problem(400, "INVALID_ARGS", exc.message)
        except CryptowireError as exc:
            return problem(400, exc.code, exc.message)

    return wrapped


async def _json_body(request: web.Request) -> Any:
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
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("INVALID_JSON", f"Body is not valid JSON: {exc}") from exc


async def publish(request: web.Request) -> web.Response:
    """``POST /api/v1/publish``: one ``{"channel","data"}`` object or a list of them."""
    await rest_principal(request, "publish")
    body = await _json_body(request)
    items = body if isinstance(body, list) else [body]
    positions = await publish_items(request.app[NODE], items)
    return json({"published": len(positions), "positions": positions})


def _key_json(key: Any) -> dict[str, Any]:
    return {"id": key.id, "prefix": key.prefix, "name": key.name,
            "scopes": sorted(key.scopes), "created_at": key.created_at,
            "revoked_at": key.revoked_at, "last_used_at": key.last_used_at}


async def list_keys(request: web.Request) -> web.Response:
    await rest_principal(request, "admin")
    store = request.app[NODE].store
    assert store is not None
    return json({"keys": [_key_json(k) for k in await store.list_keys()]})


async def create_key(request: web.Request) -> web.Response:
    """``POST /api/v1/keys {"name","scopes"}``: the plaintext key is in this reply only."""
    await rest_principal(request, "admin")
    body = await _json_body(request)
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
    await rest_principal(request, "admin")
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
