"""The OpenAPI 3.1 document of the REST that exists, served at ``/openapi.json`` and shown
interactively at ``/docs`` (Swagger UI, vendored: ``web/vendor/``).

Every operation has its request schema (parameters, body), its response schemas and an
example of each (``tests/unit/test_openapi_routes.py`` checks both, and that every route
is here). The response and body schemas are in :mod:`cryptowire.server.openapi_schemas`.
"""

from __future__ import annotations

from typing import Any

from cryptowire import __version__
from cryptowire.server.openapi_schemas import EXAMPLES, SCHEMAS

_KEY: list[dict[str, list[str]]] = [{"ApiKey": []}, {"Bearer": []}]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _content(schema: str, example: Any = None, *, media: str = "application/json",
             ) -> dict[str, Any]:
    body = {"schema": _ref(schema) if schema in SCHEMAS else {"type": "string"},
            "example": EXAMPLES[schema] if example is None else example}
    return {media: body}


def _error(description: str, code: str, message: str) -> dict[str, Any]:
    return {"description": description,
            "content": _content("Error", {"error": {"code": code, "message": message}})}


_UNAUTHORIZED = _error("No key, or an invalid or revoked one.", "UNAUTHORIZED",
                       "Invalid or revoked API key.")
_FORBIDDEN = _error("The key lacks the scope.", "FORBIDDEN",
                    "Key 'ci' lacks the 'admin' scope.")
_BAD = _error("Invalid request (body, parameter).", "INVALID_ARGS",
              "'scopes' is a list of strings.")


def _op(summary: str, ok: str, *, status: str = "200", ok_doc: str = "OK",
        secured: bool = False, body: str | None = None,
        params: list[dict[str, Any]] | None = None, media: str = "application/json",
        extra: dict[str, Any] | None = None, tag: str = "ops") -> dict[str, Any]:
    """One operation: ``ok`` names the response schema (and its example) in SCHEMAS."""
    op: dict[str, Any] = {"summary": summary, "tags": [tag],
                          "responses": {status: {"description": ok_doc,
                                                 "content": _content(ok, media=media)}}}
    if secured:
        op["security"] = _KEY
        op["responses"].update({"401": _UNAUTHORIZED, "403": _FORBIDDEN})
    if body:
        op["requestBody"] = {"required": True, "content": _content(body)}
        op["responses"]["400"] = _BAD
    if params:
        op["parameters"] = params
        op["responses"].setdefault("400", _BAD)
    op["responses"].update(extra or {})
    return op


def _path_param(name: str, example: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"},
            "example": example}


def _query(name: str, doc: str, example: str, *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": doc,
            "schema": {"type": "string"}, "example": example}


_HEALTH_RULE = (
    "Store, bus and source health.\n\n"
    "* **200 `ok`**: everything configured is served.\n"
    "* **200 `degraded`**: served, but not as configured at best: the demo source serves "
    "(demo mode), or a source is down and its fallback (the demo market) serves meanwhile; "
    "`reasons` says which.\n"
    "* **503 `down`**: the hub cannot serve what it is configured to serve: the store or "
    "the bus is down, or a source with no fallback is down; `reasons` says which.\n\n"
    "`/ready` is the readiness probe (200 once the node started); `/health` is for "
    "monitoring and alerting."
)


def _health() -> dict[str, Any]:
    op = _op("Store, bus and source health: ok, degraded (200) or down (503).", "Health",
             ok_doc="ok, or degraded (demo data or a fallback serves)",
             extra={"503": {"description": "down: the hub cannot serve what it is configured "
                                           "to serve",
                            "content": _content("Health", EXAMPLES["HealthDown"])}})
    op["description"] = _HEALTH_RULE
    return op


def document() -> dict[str, Any]:
    not_found = _error("Nothing of that id.", "INVALID_ARGS", "No active key 'cw_abc'.")
    return {
        "openapi": "3.1.0",
        "info": {"title": "cryptowire", "version": __version__,
                 "description": "REST surface of the cryptowire hub. The WebSocket protocols "
                                "(`/ws`, `/rfq`, `/swaps`, `/pg/<JWT>`, `/ws/<service>`) are "
                                "described in docs/protocol.md. Authenticated operations take "
                                "an API key in `X-API-Key` (or a JWT as a Bearer token)."},
        "tags": [{"name": "ops", "description": "Probes, stats and metrics."},
                 {"name": "publish", "description": "Publish to app: channels."},
                 {"name": "keys", "description": "API keys (admin)."},
                 {"name": "tokens", "description": "On-chain watchlist and stored events."},
                 {"name": "telegram", "description": "Telegram group bindings (admin)."},
                 {"name": "services", "description": "The services protocol's REST."}],
        "paths": {
            "/api/v1/info": {"get": _op("Name, version, demo flag and the main URLs.",
                                        "Info")},
            "/ready": {"get": _op(
                "Readiness: 200 once the node has started, 503 before and while stopping.",
                "Ready", extra={"503": {"description": "Not ready (starting or stopping).",
                                        "content": _content("Ready", {"ready": False})}})},
            "/health": {"get": _health()},
            "/stats": {"get": _op("Connections, subscriptions, messages, sources (as reading "
                                  "needs; channel names: admin where anonymous_read is off).",
                                  "Stats", secured=True)},
            "/metrics": {"get": _op("Prometheus text exposition.", "Metrics",
                                    media="text/plain")},
            "/api/v1/publish": {"post": _op(
                "Publish one event or a list to app:<name> channels (publish/admin scope).",
                "Published", secured=True, body="PublishBody", tag="publish",
                extra={"413": _error("Body too large.", "LIMIT_EXCEEDED",
                                     "Body larger than 1048576 bytes.")})},
            "/api/v1/keys": {
                "get": _op("List API keys (admin).", "KeyList", secured=True, tag="keys"),
                "post": _op("Create an API key; the plaintext is returned once (admin).",
                            "KeyCreated", status="201", ok_doc="Created", secured=True,
                            body="KeyCreate", tag="keys"),
            },
            "/api/v1/keys/{key_id}": {"delete": _op(
                "Revoke a key (by id or prefix) and close its sessions (admin).", "KeyRevoked",
                secured=True, params=[_path_param("key_id", "cw_3fa9")], tag="keys",
                extra={"404": not_found})},
            "/api/v1/tokens": {
                "get": _op("The token watchlist (read).", "TokenList", secured=True,
                           params=[_query("chain", "Chain name or id.", "eth")],
                           tag="tokens"),
                "post": _op("Add a token: explicit fields, or chain + address with the rest "
                            "read on chain (admin).", "TokenAdded", status="201",
                            ok_doc="Created", secured=True, body="TokenAdd", tag="tokens"),
            },
            "/api/v1/tokens/{chain}/{address}": {"delete": _op(
                "Remove a token from the watchlist (admin).", "TokenRemoved", secured=True,
                params=[_path_param("chain", "eth"),
                        _path_param("address", EXAMPLES["Token"]["address"])],
                tag="tokens", extra={"404": not_found})},
            "/api/v1/events": {"get": _op(
                "Stored on-chain events of a swap:/burn: channel, same payloads as the "
                "socket (read).", "Events", secured=True, tag="tokens",
                params=[_query("channel", "swap:<chain>[:<token>] or burn:<chain>[:<token>]",
                               "swap:eth", required=True),
                        _query("since", "<block>[:<log_index>], exclusive", "19000000:41"),
                        _query("limit", "At most 1000 (default 100).", "100")])},
            "/api/v1/telegram/bindings": {
                "get": _op("Telegram group -> chat bindings (admin).", "BindingList",
                           secured=True, tag="telegram"),
                "post": _op("Bind a token group to a chat id (admin); 201 when new, 200 when "
                            "it already was.", "BindingCreated", status="201",
                            ok_doc="Created (200: already bound)", secured=True,
                            body="TelegramBinding", tag="telegram"),
            },
            "/api/v1/telegram/bindings/{group}/{chat_id}": {"delete": _op(
                "Unbind a chat from a group (admin).", "BindingRemoved", secured=True,
                params=[_path_param("group", "alpha"),
                        _path_param("chat_id", "-1001234567890")],
                tag="telegram", extra={"404": not_found})},
            "/ws/stats": {"get": _op("Services protocol: connection and subscription counts (as "
                                     "reading needs; the client list: admin where "
                                     "anonymous_read is off).", "ServicesStats", secured=True,
                                     tag="services")},
            "/ws/services": {"get": _op("Services protocol: services, intervals and paths.",
                                        "ServicesCatalog", tag="services")},
            "/ws/endpoints": {"get": _op("Services protocol: WebSocket endpoints.",
                                         "ServicesEndpoints", tag="services")},
        },
        "components": {
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            },
            "schemas": SCHEMAS,
        },
    }
