"""A bare WebSocket client on asyncio streams: the scenarios need frames a library would not
send (thousands of PINGs unpaced) and sockets that are opened and then never read."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct

PING, PONG, CLOSE, TEXT = 0x9, 0xA, 0x8, 0x1


def frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame (FIN set)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def text(payload: str | bytes) -> bytes:
    return frame(TEXT, payload.encode() if isinstance(payload, str) else payload)


async def connect(port: int, path: str, headers: dict[str, str] | None = None,
                  timeout: float = 10.0, rcvbuf: int | None = None,
                  limit: int = 1 << 22) -> tuple[int, asyncio.StreamReader,
                                                 asyncio.StreamWriter]:
    """Open ``ws://127.0.0.1:port/path``: ``(http status, reader, writer)``. With ``rcvbuf``
    the socket's receive buffer is set before connecting (a small TCP window); the reader
    stops reading the socket once about ``2 * limit`` bytes wait in it."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port)),
                           timeout)
    reader, writer = await asyncio.open_connection(sock=sock, limit=limit)
    key = base64.b64encode(os.urandom(16)).decode()
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\n{extra}\r\n").encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status = int(head.split(b" ", 2)[1])
    return status, reader, writer


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """``(opcode, payload)`` of the next server frame (unmasked; fragments not joined)."""
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    return b0 & 0x0F, await reader.readexactly(n)


def close_code(payload: bytes) -> int | None:
    return int(struct.unpack("!H", payload[:2])[0]) if len(payload) >= 2 else None
