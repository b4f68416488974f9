"""The seed 004 services dialect (PROTOCOLS.md 2.2), sans I/O.

Client frames are ``{"action": "subscribe"|"unsubscribe"|"get_status"|"ping", ...}``; server
frames are ``{"service": S, "type": T, "data": {...}, "timestamp": ISO}``. This module parses
client frames into :class:`Action`, builds every reply as bytes, and frames ``service:<name>``
publications once for every 004 session (:class:`Services004Encoder`). Timestamps are ISO 8601
UTC with an explicit ``Z`` (*seed bug*: the seed sent naive times).

The catalogue (services, categories, paths) is data here so the socket layer, the
REST endpoints and the docs all read one table.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from cryptowire.clock import iso, now_ms
from cryptowire.core.channels import SERVICES
from cryptowire.events import Publication
from cryptowire.wire.dialect import Invalid
from cryptowire.wire.frames import text_frame

if TYPE_CHECKING:  # the hub is not loaded by a sans-I/O module
    from cryptowire.core.session import Encoder

#: The seed's service catalogue: category -> service -> description. Update intervals are
#: settings (``services.<name>_interval_s``), defined there only.
CATALOG: dict[str, dict[str, str]] = {
    "data_collection": {
        "market_data": "Real-time cryptocurrency prices, volumes and 24h changes",
        "explorers": "Blockchain explorer data and network statistics",
        "news": "Cryptocurrency news aggregation from configured RSS/Atom feeds",
        "sentiment": "Lexicon-based sentiment of the news headlines",
        "whale_tracking": "Large on-chain swaps and burns above a threshold",
        "rpc_nodes": "RPC node status and chain heads",
        "onchain": "On-chain analytics: chain heads, block lag, watched events",
    },
    "monitoring": {
        "health_checker": "Source health: state, latency, last message age",
        "pool_manager": "RPC pools: active URL, benched URLs, failovers",
        "scheduler": "The periodic service jobs: next run, last duration, status",
    },
    "integration": {
        "huggingface": "HuggingFace model registry (when configured)",
        "persistence": "The store: location, size, rows, last write",
    },
}
assert sorted(s for c in CATALOG.values() for s in c) == sorted(SERVICES)

#: Subscribe targets besides the services: ``system`` (always on) and ``all`` (every service).
PSEUDO_SERVICES = ("system", "all")
SUPPORTED_ACTIONS = ("subscribe", "unsubscribe", "get_status", "ping")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One 004 WebSocket path: which services it lists and which it subscribes at connect."""

    path: str
    description: str
    services: tuple[str, ...]
    auto: tuple[str, ...] = ()
    welcome: bool = False


def _endpoints() -> tuple[Endpoint, ...]:
    cat = {name: tuple(services) for name, services in CATALOG.items()}
    single = {
        "market_data": "market_data", "whale_tracking": "whale_tracking", "news": "news",
        "sentiment": "sentiment", "health": "health_checker", "pool_status": "pool_manager",
        "scheduler_status": "scheduler", "huggingface": "huggingface", "ai": "huggingface",
        "persistence": "persistence",
    }  # fmt: skip
    out = [
        Endpoint("/ws/master", "Master endpoint: every service, manual subscription, welcome "
                 "message with the catalogue", SERVICES, welcome=True),
        Endpoint("/ws/all", "Auto-subscribes to every service", SERVICES, auto=SERVICES),
        Endpoint("/ws/data", "Data collection services, manual subscription",
                 cat["data_collection"]),
        Endpoint("/ws/monitoring", "Monitoring services, manual subscription", cat["monitoring"]),
        Endpoint("/ws/integration", "Integration services, manual subscription",
                 cat["integration"]),
    ]
    for path, service in single.items():
        alias = " (alias of /ws/huggingface)" if path == "ai" else ""
        out.append(Endpoint(f"/ws/{path}", f"{service} only, auto-subscribed{alias}",
                            (service,), auto=(service,)))
    return tuple(out)


ENDPOINTS: tuple[Endpoint, ...] = _endpoints()
#: The bare ``/ws`` (the native socket, which understands the action form too): what its
#: ``connection_established`` lists when ``server.greet_004`` is on.
NATIVE_ENDPOINT = Endpoint("/ws", "Native socket; also understands the action form", SERVICES)


def description(service: str) -> str:
    for services in CATALOG.values():
        if service in services:
            return services[service]
    raise KeyError(service)


_client_numbers = itertools.count(1)


def new_client_id(now_ms: int) -> str:
    """``client_<n>_<unix seconds>`` as the seed numbered its clients."""
    return f"client_{next(_client_numbers)}_{now_ms // 1000}"


@dataclass(slots=True)
class ClientState:
    """What 004 tracks per connection (``get_status`` and ``/ws/stats`` report it)."""

    client_id: str
    connected_ms: int
    last_activity_ms: int
    subscriptions: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {"client_id": self.client_id, "connected_at": iso(self.connected_ms),
                "last_activity": iso(self.last_activity_ms),
                "subscriptions": list(self.subscriptions)}


@dataclass(frozen=True, slots=True)
class Action:
    """One parsed client frame."""

    action: str
    service: str | None = None
    data: Any = None


class ActionError(ValueError):
    """A client frame to answer with an ``error`` frame; ``frame`` is that frame's data."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data["message"])
        self.data = data


def parse_action(obj: object) -> Action:
    """Validate a decoded client frame (``orjson.loads`` of its text)."""
    if not isinstance(obj, dict):
        raise ActionError({"message": 'Frame must be a JSON object such as {"action": "ping"}.',
                           "supported_actions": list(SUPPORTED_ACTIONS)})
    action = obj.get("action")
    if action not in SUPPORTED_ACTIONS:
        # Not re-encoded: a value nested too deeply for orjson to write would fail here.
        shown = action[:40] if isinstance(action, str) else f"a JSON {type(action).__name__}"
        raise ActionError({"message": f"Unknown action: {shown}",
                           "supported_actions": list(SUPPORTED_ACTIONS)})
    if action in ("subscribe", "unsubscribe"):
        service = obj.get("service")
        if not isinstance(service, str) or (service not in SERVICES
                                            and service not in PSEUDO_SERVICES):
            raise ActionError({"message": f"Invalid service: {str(service)[:60]}",
                               "available_services": [*SERVICES, *PSEUDO_SERVICES]})
        return Action(action, service)
    data = obj.get("data")
    if action == "ping" and data is not None:
        # The pong echoes ``data``: JSON nested deeper than orjson writes (254 levels) would
        # fail there, once per frame; say so here instead.
        try:
            orjson.dumps(data)
        except orjson.JSONEncodeError:
            raise ActionError({"message": "'data' of a ping is echoed in the pong and cannot "
                                          "be nested this deeply."}) from None
    return Action(action, data=data)


def parse_text(text: str | bytes) -> Action:
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ActionError({"message": f"Invalid JSON: {exc}",
                           "supported_actions": list(SUPPORTED_ACTIONS)}) from exc
    return parse_action(obj)


def expand(service: str) -> tuple[str, ...]:
    """The real services a subscribe target stands for (``all`` -> every one)."""
    if service == "all":
        return SERVICES
    if service == "system":
        return ()
    return (service,)


# -- server frames ----------------------------------------------------------------------


def message(service: str, type_: str, data: Any, ts_ms: int) -> bytes:
    return text_frame(orjson.dumps({"service": service, "type": type_, "data": data,
                                    "timestamp": iso(ts_ms)}))


def connection_established(state: ClientState, endpoint: Endpoint, ts_ms: int) -> bytes:
    """``client_id`` at the top level (as the seed server sent it) and under ``data`` (where
    the seed document's example clients read it)."""
    return text_frame(orjson.dumps({
        "service": "system", "type": "connection_established", "client_id": state.client_id,
        "timestamp": iso(ts_ms), "available_services": list(endpoint.services),
        "data": {"client_id": state.client_id, "endpoint": endpoint.path,
                 "available_services": list(endpoint.services)},
    }))


def welcome(ts_ms: int) -> bytes:
    return message("system", "welcome", {
        "message": "Connected to master WebSocket endpoint",
        "available_services": {cat: list(services) for cat, services in CATALOG.items()},
        "usage": {
            "subscribe": {"action": "subscribe", "service": "service_name"},
            "unsubscribe": {"action": "unsubscribe", "service": "service_name"},
            "get_status": {"action": "get_status"},
            "ping": {"action": "ping", "data": {}},
        },
    }, ts_ms)


def auto_subscribed(ts_ms: int) -> bytes:
    """What the seed's ``/ws/all`` said once it had subscribed the client to everything."""
    return message("system", "auto_subscribed", {
        "message": "Automatically subscribed to all services", "subscription": "all"}, ts_ms)


def subscription_confirmed(service: str, subscriptions: list[str], ts_ms: int,
                           *, auto: bool = False) -> bytes:
    data: dict[str, Any] = {"service": service, "subscriptions": list(subscriptions)}
    if auto:
        data["auto_subscribed"] = True
    return message("system", "subscription_confirmed", data, ts_ms)


def unsubscription_confirmed(service: str, subscriptions: list[str], ts_ms: int) -> bytes:
    return message("system", "unsubscription_confirmed",
                   {"service": service, "subscriptions": list(subscriptions)}, ts_ms)


def status(state: ClientState, total_clients: int, ts_ms: int) -> bytes:
    return message("system", "status", {**state.describe(), "total_clients": total_clients},
                   ts_ms)


def pong(data: Any, ts_ms: int) -> bytes:
    return message("system", "pong", data, ts_ms)


def error(data: dict[str, Any], ts_ms: int) -> bytes:
    return message("system", "error", data, ts_ms)


def envelope(status_: str, data: Any, ts_ms: int) -> dict[str, Any]:
    """The REST shape ``{"status":"success","data":{...},"timestamp":ISO}``."""
    return {"status": status_, "data": data, "timestamp": iso(ts_ms)}


# -- data frames -------------------------------------------------------------------------


class Services004Encoder:
    """Frames ``service:<name>`` publications as ``{"service","type","data","timestamp"}``;
    other channels are framed by ``fallback`` (the native socket) or dropped (``None``)."""

    def __init__(self, fallback: Encoder | None = None) -> None:
        self._fallback = fallback
        self.name = "services004" if fallback is None else f"services004+{fallback.name}"

    def frame_publication(self, pub: Publication) -> bytes | None:
        kind, _, service = pub.channel.partition(":")
        if kind != "service":
            return None if self._fallback is None else self._fallback.frame_publication(pub)
        head = orjson.dumps({"service": service, "type": pub.type})
        tail = orjson.dumps({"timestamp": iso(pub.ts)})
        return text_frame(head[:-1] + b',"data":' + pub.data_json + b"," + tail[1:])


class Services004Dialect:
    """The 004 sockets' frames (:class:`~cryptowire.wire.dialect.Dialect`)."""

    name = "services004"

    def encoder(self) -> Encoder:
        return Services004Encoder()

    def refused(self, code: str, message: str) -> bytes:
        return error({"message": message}, now_ms())

    def no_key(self, timeout_s: float) -> bytes:
        return error({"message": f"No API key within {timeout_s:g} s."}, now_ms())

    def dropped(self, rate: int) -> bytes:
        return error({"message": f"More than {rate} messages per second; this one was "
                                 "dropped."}, now_ms())

    def flooding(self) -> bytes:
        return error({"message": "Flooding: closing."}, now_ms())

    def binary(self) -> bytes:
        return error({"message": "Binary frames are not supported; send JSON text frames."},
                     now_ms())

    def new_state(self) -> ClientState:
        now = now_ms()
        return ClientState(new_client_id(now), now, now)

    def parse(self, text: str, state: object = None) -> Action | Invalid:
        """An :class:`Action`, or the ``error`` frame answering it."""
        try:
            return parse_text(text)
        except ActionError as exc:
            return Invalid(error(exc.data, now_ms()))

    def parse_object(self, obj: object) -> Action | Invalid:
        """:meth:`parse` of a frame already decoded (the native socket's action form)."""
        try:
            return parse_action(obj)
        except ActionError as exc:
            return Invalid(error(exc.data, now_ms()))
