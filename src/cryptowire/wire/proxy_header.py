"""The PROXY protocol header (haproxy's ``doc/proxy-protocol.txt``, versions 1 and 2), sans-I/O.

A balancer in TCP mode (haproxy ``send-proxy`` / ``send-proxy-v2``) writes one header before
the client's first byte, naming the client's address. :func:`parse` takes the bytes received
so far and answers ``None`` (need more), a :class:`ProxyHeader` (its ``length`` bytes are the
header; what follows is the client's own stream), or raises :class:`ProxyHeaderError`: the
spec says "any sequence which does not exactly match the protocol must be discarded and cause
the receiver to abort the connection" (section 2.1), as early as possible, so a prefix that
can no longer become a header is refused at once.

Version 1 (section 2.1) is one US-ASCII line of at most 107 bytes including the CRLF:
``PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\\r\\n``. Version 2 (section 2.2) is a 16-byte
block (12-byte signature, version/command, family/protocol, big-endian length) followed by
that many bytes: the addresses, then TLVs, which are skipped.

``source`` is ``None`` when the header says to use the connection's own endpoints: v1
``UNKNOWN``, v2 ``LOCAL`` (a balancer's health check), v2 ``AF_UNSPEC`` and ``AF_UNIX``.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from cryptowire.errors import ProtocolError

#: Section 2.2: the 12-byte signature of a version 2 header.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: Section 2.1: the longest v1 line, CRLF included.
V1_MAX = 107
_V1_PREFIX = b"PROXY "
_V2_FIXED = 16
#: Section 2.2: (family << 4 | protocol) -> (address bytes, port bytes) for TCP/UDP.
_V2_INET = {0x11: (4, 4), 0x12: (4, 4), 0x21: (16, 16), 0x22: (16, 16)}
_V2_FAMILIES = frozenset({0x0, 0x1, 0x2, 0x3})
_V2_PROTOCOLS = frozenset({0x0, 0x1, 0x2})


class ProxyHeaderError(ProtocolError):
    """Not a valid PROXY header: the connection is dropped."""

    def __init__(self, message: str) -> None:
        super().__init__("INVALID_PROXY_HEADER", message)


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    version: int
    #: ``(address, port)`` of the client, or ``None``: use the connection's own peer.
    source: tuple[str, int] | None
    destination: tuple[str, int] | None
    #: Bytes the header took at the start of the stream.
    length: int


def parse(data: bytes) -> ProxyHeader | None:
    """The header at the start of ``data``; ``None`` while it is incomplete."""
    if data[:len(V2_SIGNATURE)] == V2_SIGNATURE[:len(data)]:
        return _parse_v2(data)
    if data[:len(_V1_PREFIX)] == _V1_PREFIX[:len(data)]:
        return _parse_v1(data)
    raise ProxyHeaderError("Not a PROXY protocol header")


def _parse_v1(data: bytes) -> ProxyHeader | None:
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyHeaderError("PROXY v1 line without CRLF in its first 107 bytes")
        if b"\n" in data:  # a lone LF (or CR LF split wrong) never becomes a valid line
            raise ProxyHeaderError("PROXY v1 line not ended by CRLF")
        return None
    line = data[:end]
    if b"\r" in line or b"\n" in line:
        raise ProxyHeaderError("PROXY v1 line not ended by CRLF")
    parts = line.split(b" ")
    length = end + 2
    if len(parts) >= 2 and parts[1] == b"UNKNOWN":
        return ProxyHeader(1, None, None, length)  # "the receiver must ignore anything" after
    if len(parts) != 6 or parts[1] not in (b"TCP4", b"TCP6"):
        raise ProxyHeaderError("PROXY v1 line is not 'PROXY TCP4|TCP6 src dst sport dport'")
    version = 4 if parts[1] == b"TCP4" else 6
    src, dst = (_v1_address(p, version) for p in parts[2:4])
    sport, dport = (_v1_port(p) for p in parts[4:6])
    return ProxyHeader(1, (src, sport), (dst, dport), length)


def _v1_address(raw: bytes, version: int) -> str:
    try:
        text = raw.decode("ascii")
        # ip_address refuses leading zeros in IPv4 (section 2.1: "not permitted").
        address = ipaddress.ip_address(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProxyHeaderError("PROXY v1 address is not canonical") from exc
    if address.version != version:
        raise ProxyHeaderError("PROXY v1 address does not match its family")
    return str(address)


def _v1_port(raw: bytes) -> int:
    if not raw.isdigit() or (len(raw) > 1 and raw[0:1] == b"0") or int(raw) > 65535:
        raise ProxyHeaderError("PROXY v1 port is not 0..65535 without leading zeros")
    return int(raw)


def _parse_v2(data: bytes) -> ProxyHeader | None:
    if len(data) < _V2_FIXED:
        return None
    ver_cmd, fam, size = struct.unpack_from("!BBH", data, len(V2_SIGNATURE))
    if ver_cmd >> 4 != 2:
        raise ProxyHeaderError("PROXY v2 version is not 2")
    command = ver_cmd & 0x0F
    if command not in (0x0, 0x1):
        raise ProxyHeaderError("PROXY v2 command is neither LOCAL nor PROXY")
    if fam >> 4 not in _V2_FAMILIES or fam & 0x0F not in _V2_PROTOCOLS:
        raise ProxyHeaderError("PROXY v2 family or protocol is not defined")
    length = _V2_FIXED + size
    if len(data) < length:
        return None
    inet = _V2_INET.get(fam)
    if command == 0x0 or inet is None:  # LOCAL, AF_UNSPEC, AF_UNIX: the real endpoints
        return ProxyHeader(2, None, None, length)
    width, _ = inet
    if size < 2 * width + 4:
        raise ProxyHeaderError("PROXY v2 address block is shorter than its family needs")
    block = data[_V2_FIXED:_V2_FIXED + 2 * width]
    src = str(ipaddress.ip_address(block[:width]))
    dst = str(ipaddress.ip_address(block[width:]))
    sport, dport = struct.unpack_from("!HH", data, _V2_FIXED + 2 * width)
    return ProxyHeader(2, (src, sport), (dst, dport), length)
