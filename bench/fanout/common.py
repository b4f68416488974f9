"""Shared helpers for the fan-out benchmark: message format and RFC 6455 framing.

Message: a JSON ticker of ``max(size, 360)`` bytes (``msg_len``; 360 for the default 300). It is valid JSON (the
cryptowire hub parses it into an event and re-encodes it with orjson, which gives back the
same bytes), and its first bytes have a fixed layout so the client can read seq and the
send timestamp by slicing, without a JSON parse:

    {"seq":"0000000042","ts":"00000001234567890123","type":"ticker",...}
     bytes [8:18] = seq (10 digits), bytes [26:46] = ts (20 digits, ns)

ts is time.monotonic_ns() just before the message is handed to the socket (CLOCK_MONOTONIC
is system-wide on Linux, so server and client processes share it).
seq == END_SEQ marks the end-of-run message.

(Adapted from ../shared/bench/fanout/common.py, whose seq/ts were zero-padded JSON numbers,
which are not valid JSON.)
"""
import base64
import hashlib
import os
import struct

END_SEQ = 9999999999
SEQ_OFF = 8                    # seq digits: msg[8:18]
TS_OFF = 26                    # ts digits: msg[26:46]
SEQ_SLICE = slice(SEQ_OFF, SEQ_OFF + 10)
TS_SLICE = slice(TS_OFF, TS_OFF + 20)
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# All benchmark clients use the same key, so the expected accept value is a
# constant (the client still checks it on every handshake).
CLIENT_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
EXPECTED_ACCEPT = base64.b64encode(hashlib.sha1(CLIENT_KEY + WS_GUID).digest())

_BODY = ('"type":"ticker","ch":"tickers.BTCUSDT","data":{"symbol":"BTCUSDT",'
         '"lastPrice":"97123.45","bid1Price":"97123.40","bid1Size":"1.234",'
         '"ask1Price":"97123.50","ask1Size":"0.567","volume24h":"12345.678",'
         '"turnover24h":"1198765432.10","price24hPcnt":"0.0123",'
         '"highPrice24h":"98000.00","lowPrice24h":"95000.00"')


def make_message(seq: int, ts_ns: int, size: int = 300) -> str:
    head = '{"seq":"%010d","ts":"%020d",' % (seq, ts_ns)
    s = head + _BODY
    pad = size - len(s) - len(',"pad":""}}')
    if pad < 0:
        pad = 0
    return s + ',"pad":"' + ("x" * pad) + '"}}'


def msg_len(size: int = 300) -> int:
    """Length of every message made with ``size`` (the body is longer than 300 bytes, so
    ``size`` <= ~360 gives the unpadded ~360-byte ticker; all fields are fixed width)."""
    return len(make_message(0, 0, size))


def is_end(line: bytes) -> bool:
    """True for the END message (seq 9999999999; real seqs never start with 9 here)."""
    return line[SEQ_OFF:SEQ_OFF + 1] == b"9"


def accept_for(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key.strip() + WS_GUID).digest())


def server_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """Unmasked server->client frame (FIN set)."""
    n = len(payload)
    b0 = 0x80 | opcode
    if n < 126:
        return bytes((b0, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", b0, 126, n) + payload
    return struct.pack("!BBQ", b0, 127, n) + payload


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """Masked client->server frame (FIN set)."""
    mask = os.urandom(4)
    n = len(payload)
    b0 = 0x80 | opcode
    if n < 126:
        hdr = bytes((b0, 0x80 | n))
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
    m = (mask * (n // 4 + 1))[:n]
    masked = bytes(a ^ b for a, b in zip(payload, m))
    return hdr + mask + masked


def parse_client_frames(buf: bytearray):
    """Parse masked client frames from buf (consumes them). Yields (opcode, payload)."""
    out = []
    while True:
        if len(buf) < 2:
            break
        b0, b1 = buf[0], buf[1]
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            if len(buf) < 4:
                break
            n = struct.unpack_from("!H", buf, 2)[0]
            pos = 4
        elif n == 127:
            if len(buf) < 10:
                break
            n = struct.unpack_from("!Q", buf, 2)[0]
            pos = 10
        masked = b1 & 0x80
        if masked:
            if len(buf) < pos + 4:
                break
            mask = bytes(buf[pos:pos + 4])
            pos += 4
        if len(buf) < pos + n:
            break
        payload = bytes(buf[pos:pos + n])
        if masked:
            m = (mask * (n // 4 + 1))[:n]
            payload = bytes(a ^ b for a, b in zip(payload, m))
        del buf[:pos + n]
        out.append((b0 & 0x0F, payload))
    return out


SUBSCRIBE_MSG = b'{"op":"subscribe","args":["tickers.BTCUSDT"]}'


def feed_listener(port: int, rcvbuf: int = 16384):
    """The server's upstream feed socket (listening on 127.0.0.1), with a small receive buffer
    (inherited by the accepted connection) so that little is in flight when the feeder stops."""
    import socket

    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind(("127.0.0.1", port))
    s.listen(8)
    s.setblocking(False)
    return s
