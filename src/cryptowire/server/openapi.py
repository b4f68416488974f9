"""The OpenAPI 3.1 document of the REST that exists, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

from cryptowire import __version__

_KEY: list[dict[str, list[str]]] = [{"ApiKey": []}, {"Bearer": []}]
_ERR = {"description": "Error", "content": {"application/json": {"schema": {
    "$ref": "#/components/schemas/Error"}}}}


def _op(summary: str, *, secured: bool = False, body: str | None = None,
        ok: str = "OK", params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {"200": {"description": ok}}}
    if secured:
        op["security"] = _KEY
        op["responses"].update({"401": _ERR, "403": _ERR})
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": {"$ref": f"#/components/schemas/{body}"}}}}
        op["responses"]["400"] = _ERR
    if params:
        op["parameters"] = params
    return op


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, doc: str, *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": doc,
            "schema": {"type": "string"}}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "cryptowire", "version": __version__,
                 "description": "REST surface of the cryptowire hub. WebSocket protocols are "
                                "described in docs/protocol.md."},
        "paths": {
            "/api/v1/info": {"get": _op("Name, version, demo flag and the main URLs.")},
            "/ready": {"get": _op("Readiness: 200 once the node has started.")},
            "/health": {"get": _op("Store, bus and source health; 503 when degraded.")},
            "/stats": {"get": _op("Connections, subscriptions, messages, sources (as reading "
                                  "needs; channel names: admin where anonymous_read is off).",
                                  secured=True)},
            "/metrics": {"get": _op("Prometheus text exposition.")},
            "/api/v1/publish": {"post": _op(
                "Publish one event or a list to app:<name> channels (publish/admin scope).",
                secured=True, body="PublishBody")},
            "/api/v1/keys": {
                "get": _op("List API keys (admin).", secured=True),
                "post": {**_op("Create an API key; the plaintext is returned once (admin).",
                               secured=True, body="KeyCreate"),
                         "responses": {"201": {"description": "Created"}, "401": _ERR,
                                       "403": _ERR, "400": _ERR}},
            },
            "/api/v1/keys/{key_id}": {"delete": _op(
                "Revoke a key (by id or prefix) and close its sessions (admin).", secured=True,
                params=[_path_param("key_id")])},
            "/api/v1/tokens": {
                "get": _op("The token watchlist (read).", secured=True,
                           params=[_query("chain", "Chain name or id.")]),
                "post": _op("Add a token: explicit fields, or chain + address with the rest "
                            "read on chain (admin).", secured=True, body="TokenAdd"),
            },
            "/api/v1/tokens/{chain}/{address}": {"delete": _op(
                "Remove a token from the watchlist (admin).", secured=True,
                params=[_path_param("chain"), _path_param("address")])},
            "/api/v1/events": {"get": _op(
                "Stored on-chain events of a swap:/burn: channel, same payloads as the "
                "socket (read).", secured=True,
                params=[_query("channel", "e.g. swap:eth", required=True),
                        _query("since", "<block>[:<log_index>], exclusive"),
                        _query("limit", "At most 1000 (default 100).")])},
            "/api/v1/telegram/bindings": {
                "get": _op("Telegram group -> chat bindings (admin).", secured=True),
                "post": _op("Bind a token group to a chat id (admin).", secured=True,
                            body="TelegramBinding"),
            },
            "/api/v1/telegram/bindings/{group}/{chat_id}": {"delete": _op(
                "Unbind a chat from a group (admin).", secured=True,
                params=[_path_param("group"), _path_param("chat_id")])},
            "/ws/stats": {"get": _op("Seed 004: connection and subscription counts (as "
                                     "reading needs; the client list: admin where "
                                     "anonymous_read is off).", secured=True)},
            "/ws/services": {"get": _op("Seed 004: services, intervals and paths.")},
            "/ws/endpoints": {"get": _op("Seed 004: WebSocket endpoints.")},
        },
        "components": {
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "object",
                          "properties": {"code": {"type": "string"},
                                         "message": {"type": "string"}}}}},
                "PublishItem": {"type": "object", "required": ["channel", "data"],
                                "properties": {"channel": {"type": "string",
                                                           "pattern": "^app:"},
                                               "data": {}}},
                "PublishBody": {"oneOf": [
                    {"$ref": "#/components/schemas/PublishItem"},
                    {"type": "array", "items": {"$ref": "#/components/schemas/PublishItem"}}]},
                "TokenAdd": {"type": "object", "required": ["chain", "address"],
                             "properties": {"chain": {}, "address": {"type": "string"},
                                            "name": {"type": "string"},
                                            "decimals": {"type": "integer"},
                                            "pair": {"type": "string"},
                                            "paired": {"type": ["string", "null"]},
                                            "isToken0": {"type": "boolean"},
                                            "group": {"type": "string"}}},
                "TelegramBinding": {"type": "object", "required": ["group", "chat_id"],
                                    "properties": {"group": {"type": "string"},
                                                   "chat_id": {}}},
                "KeyCreate": {"type": "object", "required": ["name"], "properties": {
                    "name": {"type": "string"},
                    "scopes": {"type": "array", "items": {
                        "enum": ["read", "rfq", "publish", "admin"]}}}},
            },
        },
    }
