"""PROXY protocol headers, from the literal examples of haproxy's doc/proxy-protocol.txt."""

from __future__ import annotations

import struct

import pytest

from cryptowire.wire.proxy_header import V2_SIGNATURE, ProxyHeader, ProxyHeaderError, parse

HTTP = b"GET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n"


def test_v1_the_specs_example_before_an_http_request() -> None:
    data = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n" + HTTP  # section 2.1
    header = parse(data)
    assert header == ProxyHeader(1, ("192.168.0.1", 56324), ("192.168.0.11", 443), 47)
    assert data[header.length:] == HTTP


@pytest.mark.parametrize(("line", "source"), [
    (b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
     ("255.255.255.255", 65535)),
    (b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:"
     b"ffff 65535 65535\r\n", ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535)),
    (b"PROXY TCP6 2001:db8::1 ::1 1 0\r\n", ("2001:db8::1", 1)),
    (b"PROXY UNKNOWN\r\n", None),
    (b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:"
     b"ffff:ffff 65535 65535\r\n", None),  # the 107-byte worst case
])
def test_v1_the_specs_longest_lines(line: bytes, source: tuple[str, int] | None) -> None:
    assert len(line) <= 107
    header = parse(line)
    assert header is not None and header.source == source and header.length == len(line)


def test_v1_incomplete_waits_for_the_crlf() -> None:
    line = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"
    for n in range(len(line)):
        assert parse(line[:n]) is None, n


@pytest.mark.parametrize("data", [
    b"GET / HTTP/1.1\r\n",  # no header at all: dropped, never guessed (section 2)
    b"G",
    b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\n",  # a lone LF
    b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\r\n",
    b"PROXY TCP4 192.168.0.01 192.168.0.11 56324 443\r\n",  # heading zero
    b"PROXY TCP4 192.168.0.1 192.168.0.11 056324 443\r\n",
    b"PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",
    b"PROXY TCP4 ::1 192.168.0.11 56324 443\r\n",  # family mismatch
    b"PROXY TCP4 192.168.0.1  192.168.0.11 56324 443\r\n",  # two spaces
    b"PROXY UDP4 192.168.0.1 192.168.0.11 56324 443\r\n",
    b"PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n",
    b"PROXY UNKNOWN" + b" " * 100,  # no CRLF in the first 107 bytes
    b"proxy TCP4 192.168.0.1 192.168.0.11 56324 443\r\n",
])
def test_v1_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse(data)


def v2(ver_cmd: int, fam: int, block: bytes) -> bytes:
    """Section 2.2's ``struct proxy_hdr_v2`` followed by ``block``."""
    return V2_SIGNATURE + struct.pack("!BBH", ver_cmd, fam, len(block)) + block


def test_v2_signature_is_the_specs_bytes() -> None:
    assert V2_SIGNATURE == bytes([0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A,
                                  0x51, 0x55, 0x49, 0x54, 0x0A])


def test_v2_tcp4_with_a_tlv_then_the_stream() -> None:
    block = bytes([192, 168, 0, 1, 192, 168, 0, 11]) + struct.pack("!HH", 56324, 443)
    tlv = bytes([0x04, 0x00, 0x02]) + b"\x00\x00"  # PP2_TYPE_NOOP, skipped
    data = v2(0x21, 0x11, block + tlv) + HTTP
    header = parse(data)
    assert header == ProxyHeader(2, ("192.168.0.1", 56324), ("192.168.0.11", 443),
                                 16 + 12 + 5)
    assert data[header.length:] == HTTP
    for n in range(header.length):  # "must not start to parse an address before the whole
        assert parse(data[:n]) is None, n  # address block is received"


def test_v2_tcp6() -> None:
    src = bytes(15) + b"\x01"
    dst = b"\x20\x01\x0d\xb8" + bytes(11) + b"\x02"
    header = parse(v2(0x21, 0x21, src + dst + struct.pack("!HH", 1234, 8000)))
    assert header is not None and header.source == ("::1", 1234)
    assert header.destination == ("2001:db8::2", 8000)


@pytest.mark.parametrize(("ver_cmd", "fam", "block"), [
    (0x20, 0x00, b""),  # LOCAL, no address: a balancer's health check
    (0x20, 0x11, bytes(12)),  # LOCAL with an address: "must use the real endpoints"
    (0x21, 0x00, b""),  # AF_UNSPEC
    (0x21, 0x31, bytes(216)),  # AF_UNIX stream
])
def test_v2_real_endpoints(ver_cmd: int, fam: int, block: bytes) -> None:
    header = parse(v2(ver_cmd, fam, block))
    assert header is not None and header.source is None and header.length == 16 + len(block)


@pytest.mark.parametrize("data", [
    v2(0x11, 0x11, bytes(12)),  # version 1 in the binary format
    v2(0x22, 0x11, bytes(12)),  # unassigned command
    v2(0x21, 0x41, bytes(12)),  # unassigned family
    v2(0x21, 0x13, bytes(12)),  # unassigned protocol
    v2(0x21, 0x11, bytes(8)),  # shorter than two IPv4 addresses and ports
    V2_SIGNATURE[:5] + b"X",
])
def test_v2_invalid_is_refused(data: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse(data)
