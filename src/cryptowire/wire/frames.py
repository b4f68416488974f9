"""RFC 6455 server-to-client frames, built once and shared by every session.

Server frames are not masked (RFC 6455 section 5.1), so the bytes of a text frame are the
same for every client: the hub frames a publication once per dialect and writes the same
bytes to each subscriber's transport. Only unfragmented text and close frames are built here;
aiohttp's own writer handles pings and the close handshake it starts itself.
"""

from __future__ import annotations

import struct

_OP_TEXT = 0x1
_OP_CLOSE = 0x8


def _frame(opcode: int, payload: bytes) -> bytes:
    """FIN + opcode, then the payload length as RFC 6455 section 5.2 encodes it."""
    n = len(payload)
    head = 0x80 | opcode
    if n < 126:
        return bytes((head, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", head, 126, n) + payload
    return struct.pack("!BBQ", head, 127, n) + payload


def text_frame(payload: bytes) -> bytes:
    """One unfragmented text frame carrying ``payload`` (UTF-8 JSON)."""
    return _frame(_OP_TEXT, payload)


def close_frame(code: int, reason: str = "") -> bytes:
    """A close frame with ``code`` and a reason cut to the 123 bytes a control frame allows.

    The cut never splits a character: the reason must be valid UTF-8 (RFC 6455 section
    5.5.1), or the client fails the connection with 1007 instead of seeing our code.
    """
    data = reason.encode()[:123].decode("utf-8", "ignore").encode()
    return _frame(_OP_CLOSE, struct.pack("!H", code) + data)
