"""The client's own address behind a balancer: the PROXY protocol and ``X-Forwarded-For``.

With ``server.proxy_protocol`` on, every accepted connection first goes to a
:class:`ProxyHeaderProtocol`, which reads the PROXY header (:mod:`cryptowire.wire.proxy_header`)
and only then hands the connection to aiohttp's own protocol, with a transport whose
``peername`` is the client named in the header and the bytes that followed the header. So
``request.remote``, every session's ``remote`` and each per-address limit see the client, not
the balancer. A connection without a valid header within :data:`HEADER_TIMEOUT_S` is dropped
(the spec's "MUST not try to guess").

``X-Forwarded-For`` (an HTTP proxy's way) is believed only from ``server.trusted_proxies``:
:func:`client_address` walks it from the right, skipping trusted hops, and takes the first
address that is not one of them.

:class:`ProxyHeaderProtocol` is put in front of aiohttp's protocol by the listening socket's
connection gate (``server/listener.py``) when the setting is on.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
from typing import Any, cast

from aiohttp import web

from cryptowire.server.node import ServerNode
from cryptowire.wire.proxy_header import ProxyHeaderError, parse

log = logging.getLogger("cryptowire.server.proxied")

#: The spec asks for "at least 3 seconds to cover a TCP retransmit" before giving up.
HEADER_TIMEOUT_S = 5.0

#: Methods of the socket's transport a :class:`ProxiedTransport` passes straight through
#: (bound as instance attributes: no extra call on the fan-out's write path).
_FORWARDED = (
    "write", "writelines", "write_eof", "can_write_eof", "abort", "close", "is_closing",
    "pause_reading", "resume_reading", "is_reading", "set_write_buffer_limits",
    "get_write_buffer_size", "get_write_buffer_limits", "set_protocol", "get_protocol",
)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ProxiedTransport(asyncio.Transport):
    """The connection's transport, with the PROXY header's client as its ``peername``."""

    def __init__(self, raw: asyncio.Transport, peername: tuple[str, int]) -> None:
        super().__init__()
        self._raw = raw
        self._peername = peername
        for name in _FORWARDED:
            setattr(self, name, getattr(raw, name))

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._peername
        return self._raw.get_extra_info(name, default)


class ProxyHeaderProtocol(asyncio.Protocol):
    """Reads the PROXY header, then gives the connection to ``inner`` and steps aside
    (``set_protocol``): after the header, no byte passes through this object."""

    def __init__(self, inner: asyncio.Protocol) -> None:
        self._inner = inner
        self._transport: asyncio.Transport | None = None
        self._buffer = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._timer = asyncio.get_running_loop().call_later(HEADER_TIMEOUT_S, self._drop,
                                                            "no PROXY header in time")

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._buffer += data
        try:
            header = parse(self._buffer)
        except ProxyHeaderError as exc:
            self._drop(exc.message)
            return
        if header is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        rest, self._buffer = self._buffer[header.length:], b""
        handed: asyncio.Transport = transport
        if header.source is not None:
            handed = ProxiedTransport(transport, header.source)
        transport.set_protocol(self._inner)
        self._inner.connection_made(handed)
        if rest and not transport.is_closing():
            self._inner.data_received(rest)

    def eof_received(self) -> bool | None:
        return None  # closes: the client left before its header was complete

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _drop(self, why: str) -> None:
        if self._transport is not None and not self._transport.is_closing():
            log.debug("dropped a connection from %s: %s",
                      self._transport.get_extra_info("peername"), why)
            self._transport.abort()


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def _trusted(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def forwarded_client(peer: str, forwarded_for: list[str], trusted: list[str]) -> str:
    """The client of a request from ``peer`` carrying these ``X-Forwarded-For`` values:
    ``peer`` itself unless it is a trusted proxy; else the right-most forwarded address that
    is not trusted (hops a trusted proxy appended), stopping at a value that is not an IP."""
    networks = _networks(tuple(trusted))
    if not networks or not _trusted(peer, networks):
        return peer
    client = peer
    hops = [h.strip() for value in forwarded_for for h in value.split(",")]
    for hop in reversed(hops):
        try:
            hop = str(ipaddress.ip_address(hop))
        except ValueError:
            break
        client = hop
        if not _trusted(hop, networks):
            break
    return client


def peer_of(transport: asyncio.BaseTransport | None) -> str:
    """The connection's peer address (after any PROXY header)."""
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"


def client_address(node: ServerNode, request: web.Request) -> str:
    """The address per-address limits count: the peer, or a trusted proxy's client."""
    peer = peer_of(request.transport)
    trusted = node.settings.server.trusted_proxies
    if not trusted:
        return peer
    return forwarded_client(peer, request.headers.getall("X-Forwarded-For", []), trusted)
