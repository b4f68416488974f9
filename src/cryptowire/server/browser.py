"""The browser checks of every socket upgrade: the ``Origin`` and the ``Host``.

Any web page can make a browser open a WebSocket to any address, and the browser says which
page did in ``Origin``: a socket is accepted from the hub's own origin (the dashboard) and
from ``server.allowed_origins``; ``["*"]`` accepts every origin. A request without an
``Origin`` is not from a browser page and is not checked (bots, the CLI, the SDK).

DNS rebinding points a name the attacker controls at the hub's address, so the attacker's
page is "same-origin" with the hub; its requests then carry the attacker's name in ``Host``.
A hub bound to a loopback address therefore accepts only loopback names in ``Host``
(``localhost``, ``127.0.0.1``, ``[::1]``) plus ``server.allowed_hosts``; ``["*"]`` accepts
every name. A hub bound elsewhere accepts every ``Host`` unless ``allowed_hosts`` lists them.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from aiohttp import web

from cryptowire.server.node import ServerNode

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def refusal(node: ServerNode, request: web.Request) -> web.Response | None:
    """HTTP 403 with the reason when ``request`` may not open a socket, else ``None``."""
    cfg = node.settings.server
    host = request.headers.get("Host", "")
    if not host_allowed(host, cfg.allowed_hosts, bound_to=cfg.host):
        return web.json_response(
            {"error": f"Host '{host[:100]}' is not allowed (server.allowed_hosts)"}, status=403)
    origin = request.headers.get("Origin")
    if origin is not None and not origin_allowed(origin, host, request.scheme,
                                                 cfg.allowed_origins):
        return web.json_response({"error": "Origin not allowed"}, status=403)
    return None


def origin_allowed(origin: str, host: str, scheme: str, allowed: list[str]) -> bool:
    """Whether a page of ``origin`` may use a socket of the hub reached as ``host``."""
    if "*" in allowed or origin in allowed:
        return True
    return same_origin(origin, host, scheme)


def same_origin(origin: str, host: str, scheme: str) -> bool:
    """``origin`` names the host and port the request was sent to (``Host``).

    The scheme is not compared: behind a TLS-terminating proxy the hub sees ``http`` for a
    page served over ``https`` from the same name. A missing port is the scheme's default.
    """
    try:
        page = urlsplit(origin)
        page_port = page.port or _DEFAULT_PORTS.get(page.scheme)
        target = urlsplit(f"//{host}")
        target_port = target.port or _DEFAULT_PORTS.get(page.scheme) \
            or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number, an unbalanced bracket
        return False
    if page.scheme not in _DEFAULT_PORTS or not page.hostname or not target.hostname:
        return False  # "null" (sandboxed frames, file://) is nobody's origin
    return page.hostname == target.hostname and page_port == target_port


def host_allowed(host: str, allowed: list[str], *, bound_to: str) -> bool:
    """Whether ``host`` (the ``Host`` header) may be served by a hub bound to ``bound_to``."""
    if "*" in allowed:
        return True
    try:
        name = urlsplit(f"//{host}").hostname
    except ValueError:
        return False
    if not name:
        return not allowed and not is_loopback(bound_to)  # HTTP/1.0 without Host
    if name in (a.lower() for a in allowed) or is_loopback(name):
        return True
    return not allowed and not is_loopback(bound_to)


def is_loopback(name: str) -> bool:
    """``localhost`` (and ``*.localhost``, RFC 6761) or a loopback IP address."""
    name = name.lower().strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
