"""Schemas and examples of the OpenAPI document (:mod:`cryptowire.server.openapi`).

``SCHEMAS`` are the ``components.schemas``; ``EXAMPLES`` holds one example per schema a body
or a response uses, taken from a running hub (demo mode). Money and amounts are decimal
strings, as on the sockets.
"""

from __future__ import annotations

from typing import Any


def _obj(props: dict[str, Any], required: list[str] | None = None, **extra: Any,
         ) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, **extra}
    if required:
        out["required"] = required
    return out


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_S = {"type": "string"}
_S_NULL = {"type": ["string", "null"]}
_I = {"type": "integer"}
_I_NULL = {"type": ["integer", "null"]}
_DEC = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "description": "exact decimal"}
_ANY_OBJ = {"type": "object", "additionalProperties": True}

_SOURCE = _obj({"state": {"enum": ["starting", "connecting", "up", "down", "stopped"]},
                "detail": _S, "demo": {"type": "boolean"}, "last_message_ms": _I_NULL})

_TOKEN_PROPS: dict[str, Any] = {
    "chain": _I, "address": _S, "symbol": _S, "name": _S, "decimals": _I, "pair": _S,
    "paired": _S_NULL, "paired_symbol": _S_NULL, "paired_decimals": _I_NULL,
    "isToken0": {"type": "boolean"}, "group": _S_NULL, "added_at": _I_NULL,
}

_KEY_PROPS: dict[str, Any] = {
    "id": _S, "prefix": _S, "name": _S,
    "scopes": {"type": "array", "items": {"enum": ["read", "rfq", "publish", "admin"]}},
    "created_at": _I, "revoked_at": _I_NULL, "last_used_at": _I_NULL,
}

_POSITION = _obj({"channel": _S, "epoch": _S, "offset": _I})


def _envelope(data: dict[str, Any]) -> dict[str, Any]:
    return _obj({"status": {"const": "success"}, "data": data, "timestamp": _S})


SCHEMAS: dict[str, Any] = {
    "Error": _obj({"error": _obj({"code": _S, "message": _S}, ["code", "message"])},
                  ["error"]),
    "Info": _obj({"name": _S, "version": _S, "demo": {"type": "boolean"}, "dashboard": _S,
                  "websocket": _S, "rfq": _S, "docs": _S, "health": _S, "stats": _S,
                  "channels_example": {"type": "array", "items": _S}}),
    "Ready": _obj({"ready": {"type": "boolean"}}, ["ready"]),
    "Health": _obj({
        "status": {"enum": ["ok", "degraded", "down"],
                   "description": "ok and degraded answer 200, down 503"},
        "reasons": {"type": "array", "items": _S,
                    "description": "why the status is not ok (empty when ok)"},
        "demo": {"type": "boolean"}, "store": {"enum": ["ok", "down"]},
        "bus": _obj({"type": _S, "state": {"enum": ["ok", "down"]}}),
        "sources": {"type": "object", "additionalProperties": _SOURCE},
    }, ["status", "reasons", "demo", "store", "bus", "sources"]),
    "Stats": _obj({"uptime_s": {"type": "number"}, "connections": _I,
                   "connections_total": _I, "subscriptions": _I,
                   "channels": {"type": "object", "additionalProperties": _I},
                   "messages_in": _I, "messages_out": _I, "bytes_out": _I,
                   "publications": _I, "slow_consumer_closes": _I, "dropped": _I,
                   "rate_limited": _I,
                   "upstream_topics": {"type": "object", "additionalProperties": _I},
                   "bus": _ANY_OBJ, "sources": {"type": "object",
                                                "additionalProperties": _ANY_OBJ}}),
    "Metrics": {"type": "string", "description": "Prometheus text format 0.0.4"},
    "PublishItem": _obj({"channel": {"type": "string", "pattern": "^app:"}, "data": {}},
                        ["channel", "data"]),
    "PublishBody": {"oneOf": [_ref("PublishItem"),
                              {"type": "array", "items": _ref("PublishItem")}]},
    "Published": _obj({"published": _I, "positions": {"type": "array", "items": _POSITION}}),
    "KeyCreate": _obj({"name": _S, "scopes": _KEY_PROPS["scopes"]}, ["name"]),
    "Key": _obj(_KEY_PROPS),
    "KeyCreated": _obj({"key": {"type": "string", "description": "shown once"},
                        **_KEY_PROPS}),
    "KeyList": _obj({"keys": {"type": "array", "items": _ref("Key")}}),
    "KeyRevoked": _obj({"revoked": _S, "sessions_closed": _I}),
    "TokenAdd": _obj({"chain": {"type": ["string", "integer"]}, "address": _S, "name": _S,
                      "decimals": _I, "pair": _S, "paired": _S_NULL,
                      "isToken0": {"type": "boolean"}, "group": _S},
                     ["chain", "address"]),
    "Token": _obj(_TOKEN_PROPS),
    "TokenList": _obj({"tokens": {"type": "array", "items": _ref("Token")}}),
    "TokenAdded": _obj({"token": _ref("Token")}),
    "TokenRemoved": _obj({"removed": _obj({"chain": _I, "address": _S})}),
    "SwapEvent": _obj({"chain": _I, "pair": _S, "token": _S, "symbol": _S,
                       "side": {"enum": ["buy", "sell"]}, "token_amount": _DEC,
                       "paired_amount": _DEC, "price_in_paired": _DEC, "taker": _S,
                       "tx_hash": _S, "log_index": _I, "block": _I, "time": _I},
                      description="a swap; burns carry amount, from, to instead"),
    "Events": _obj({"channel": _S, "events": {"type": "array", "items": _ref("SwapEvent")}}),
    "TelegramBinding": _obj({"group": _S, "chat_id": {"type": ["string", "integer"]}},
                            ["group", "chat_id"]),
    "BindingList": _obj({"bindings": {"type": "object",
                                      "additionalProperties": {"type": "array",
                                                               "items": _S}}}),
    "BindingCreated": _obj({"group": _S, "chat_id": _S, "created": {"type": "boolean"}}),
    "BindingRemoved": _obj({"group": _S, "chat_id": _S, "removed": {"const": True}}),
    "ServicesStats": _envelope(_obj({"total_connections": _I,
                                     "clients": {"type": "array", "items": _ANY_OBJ},
                                     "subscription_counts": {"type": "object",
                                                             "additionalProperties": _I}})),
    "ServicesCatalog": _envelope(_obj({"services": _ANY_OBJ, "total_services": _I,
                                       "system_services": _ANY_OBJ})),
    "ServicesEndpoints": _envelope(_obj({
        "base_url": _S, "default": _ANY_OBJ,
        "endpoints": {"type": "array", "items": _obj({
            "path": _S, "url": _S, "description": _S,
            "services": {"type": "array", "items": _S},
            "auto_subscribe": {"type": "array", "items": _S}})}})),
}

_TOKEN = {"chain": 1, "address": "0x6982508145454ce325ddbe47a25d4ec3d2311933",
          "symbol": "PEPE", "name": "Pepe", "decimals": 18,
          "pair": "0xa43fe16908251ee70ef74718545e4fe6c5ccec9f",
          "paired": "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2", "paired_symbol": "WETH",
          "paired_decimals": 18, "isToken0": True, "group": "alpha",
          "added_at": 1796177926753}
_KEY = {"id": "7ccfadac8c39", "prefix": "cbg459cl", "name": "ci", "scopes": ["read"],
        "created_at": 1796177926753, "revoked_at": None, "last_used_at": 1796177928776}
_DEMO_SOURCE = {"state": "up", "detail": "synthetic data (demo mode)", "demo": True,
                "last_message_ms": 1796177928766}
_TS = "2026-12-02T02:18:48.788Z"

EXAMPLES: dict[str, Any] = {
    "Info": {"name": "cryptowire", "version": "0.1.0", "demo": True, "dashboard": "/",
             "websocket": "/ws", "rfq": "/rfq", "docs": "/docs", "health": "/health",
             "stats": "/stats",
             "channels_example": ["ticker:BTCUSDT", "kline:1m:ETHUSDT", "swap:eth",
                                  "app:signals"]},
    "Ready": {"ready": True},
    "Health": {"status": "degraded",
               "reasons": ["demo: synthetic data (demo mode)"],
               "demo": True, "store": "ok", "bus": {"type": "memory", "state": "ok"},
               "sources": {"demo": _DEMO_SOURCE}},
    "HealthDown": {"status": "down", "reasons": ["store: down"], "demo": False,
                   "store": "down", "bus": {"type": "redis", "state": "ok"},
                   "sources": {"bybit": {"state": "up", "detail": "1 topic", "demo": False,
                                         "last_message_ms": 1796177928766}}},
    "Stats": {"uptime_s": 2.1, "connections": 1, "connections_total": 1, "subscriptions": 1,
              "channels": {"ticker:BTCUSDT": 1}, "messages_in": 1, "messages_out": 32,
              "bytes_out": 15329, "publications": 32, "slow_consumer_closes": 0,
              "dropped": 0, "rate_limited": 0, "upstream_topics": {"ticker:BTCUSDT": 1},
              "bus": {"type": "memory", "published": 32, "channels_with_history": 1},
              "sources": {"demo": {**_DEMO_SOURCE, "messages": 32, "errors": 0,
                                   "reconnects": 0, "topics": 1}}},
    "Metrics": "# HELP cryptowire_connections Open WebSocket sessions.\n"
               "# TYPE cryptowire_connections gauge\ncryptowire_connections 1\n",
    "PublishBody": {"channel": "app:signals", "data": {"pair": "BTCUSDT", "signal": "buy"}},
    "Published": {"published": 1,
                  "positions": [{"channel": "app:signals", "epoch": "bdf84c5f",
                                 "offset": 1}]},
    "KeyCreate": {"name": "bot", "scopes": ["read", "rfq"]},
    "KeyCreated": {"key": "cw_9ryy5efl_95V_y1hC4SWP7HWOFBfOjIEchuWD3O2vH7GzGagX0QM",
                   **_KEY, "id": "162b03b2fdd6", "prefix": "9ryy5efl", "name": "bot",
                   "scopes": ["read", "rfq"], "last_used_at": None},
    "KeyList": {"keys": [_KEY]},
    "KeyRevoked": {"revoked": "162b03b2fdd6", "sessions_closed": 1},
    "TokenAdd": {"chain": "eth", "address": _TOKEN["address"], "group": "alpha"},
    "Token": _TOKEN,
    "TokenList": {"tokens": [_TOKEN]},
    "TokenAdded": {"token": _TOKEN},
    "TokenRemoved": {"removed": {"chain": 1, "address": _TOKEN["address"]}},
    "Events": {"channel": "swap:eth", "events": [{
        "chain": 1, "pair": _TOKEN["pair"], "token": _TOKEN["address"], "symbol": "PEPE",
        "side": "buy", "token_amount": "177368349.5", "paired_amount": "0.001",
        "price_in_paired": "0.000000000005638", "taker":
        "0x1d0f3c3a0d3e9b6d2f67a0a8ed1b1f8ad0b1d2c3", "tx_hash":
        "0x5f2b7c0e4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b",
        "log_index": 41, "block": 19000001, "time": 1796177928766}]},
    "TelegramBinding": {"group": "alpha", "chat_id": -1001234567890},
    "BindingList": {"bindings": {"alpha": ["-1001234567890"]}},
    "BindingCreated": {"group": "alpha", "chat_id": "-1001234567890", "created": True},
    "BindingRemoved": {"group": "alpha", "chat_id": "-1001234567890", "removed": True},
    "ServicesStats": {"status": "success", "data": {
        "total_connections": 1,
        "clients": [{"client_id": "c1", "connected_at": _TS, "last_activity": _TS,
                     "subscriptions": ["market_data"]}],
        "subscription_counts": {"market_data": 1}}, "timestamp": _TS},
    "ServicesCatalog": {"status": "success", "data": {
        "services": {"data_collection": {"market_data": {
            "name": "market_data",
            "description": "Real-time cryptocurrency prices, volumes and 24h changes",
            "update_interval": 5.0,
            "endpoint": "/ws/data", "channel": "service:market_data"}}},
        "total_services": 12,
        "system_services": {"system": "System messages and connection management "
                                      "(every endpoint)",
                            "all": "Subscribe to all services at once (/ws/all)"}},
        "timestamp": _TS},
    "ServicesEndpoints": {"status": "success", "data": {
        "base_url": "ws://127.0.0.1:8000",
        "endpoints": [{"path": "/ws/all", "url": "ws://127.0.0.1:8000/ws/all",
                       "description": "Auto-subscribes to every service",
                       "services": ["market_data"], "auto_subscribe": ["market_data"]}],
        "default": {"path": "/ws", "url": "ws://127.0.0.1:8000/ws",
                    "description": "Native socket; also understands the action form"}},
        "timestamp": _TS},
}
