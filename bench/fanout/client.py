"""Fan-out benchmark client: many WebSocket connections in one process, raw asyncio.Protocol.

Each connection does a real RFC 6455 handshake (checks 101 + Sec-WebSocket-Accept), sends one
masked subscribe text frame (--sub-msg, on --path), then parses server frames with a minimal
parser: counts data frames, answers pings, and on sampled connections records latency = now - ts
(ts is carried in the message) and checks that seq numbers arrive without gaps. Stops when every
connection has seen the END message (seq 9999999999) or on --timeout.

--frame raw: the data frame payload is the feeder's message itself (harness baselines).
--frame native: the payload is cryptowire's native frame
    {"channel":..,"type":..,"epoch":..,"offset":..,"ts":..,"source":..,"data":<message>}
  whose last bytes are the message followed by "}"; the message has a fixed length
  (common.msg_len), so it is found by offset from the end, without a JSON parse.
Text frames whose payload starts with {"op" (the subscribe reply, errors) are not data: they
are counted as `replies` (and `errors` for {"op":"error"}, the first one kept in `first_error`).

Prints: CONNECTED <n>, then RESULT {json}; latency samples (ns, int64) go to --lat-file.
(Adapted from ../shared/bench/fanout/client.py.)
"""
import argparse
import array
import asyncio
import json
import os
import resource
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    CLIENT_KEY,
    EXPECTED_ACCEPT,
    SEQ_OFF,
    SUBSCRIBE_MSG,
    TS_OFF,
    client_frame,
    msg_len,
)

mono = time.monotonic_ns
LAT = array.array("q")
STATE = {"first": 0, "done": 0, "end_last": 0, "bad": 0, "gaps": 0, "checked": 0,
         "replies": 0, "errors": 0, "first_error": None, "malformed": 0}
SUB_MSG = SUBSCRIBE_MSG
MLEN = msg_len(300)   # set from --size in main
TAIL = 0              # bytes after the message in a data frame payload (1 for native)
S0, S1 = SEQ_OFF, SEQ_OFF + 10
T0, T1 = TS_OFF, TS_OFF + 20
E0 = SEQ_OFF
ALL_DONE = None


class C(asyncio.Protocol):
    __slots__ = ("t", "buf", "open", "count", "sampled", "next_seq", "ready", "done", "path",
                 "deflate", "inflate")

    def __init__(self, ready, sampled, path, deflate=False):
        self.deflate = deflate
        self.inflate = None
        self.buf = b""
        self.open = False
        self.count = 0
        self.sampled = sampled
        self.next_seq = -1
        self.ready = ready
        self.done = False
        self.path = path

    def connection_made(self, t):
        self.t = t
        t.write(b"GET " + self.path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: " + CLIENT_KEY +
                b"\r\nSec-WebSocket-Version: 13\r\n" +
                (b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
                 if self.deflate else b"") + b"\r\n")

    def connection_lost(self, exc):
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("lost during handshake"))
        if not self.done:
            self.done = True
            STATE["bad"] += 1
            STATE["done"] += 1
            if STATE["done"] >= TOTAL and not ALL_DONE.done():
                ALL_DONE.set_result(True)

    def data_received(self, data):
        if not self.open:
            buf = self.buf + data
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            head = buf[:end]
            if not head.startswith(b"HTTP/1.1 101") or EXPECTED_ACCEPT not in head:
                self.ready.set_exception(ConnectionError("bad handshake: %r" % head[:200]))
                self.t.close()
                return
            self.open = True
            if b"permessage-deflate" in head.lower():
                self.inflate = zlib.decompressobj(-15)
            self.t.write(client_frame(SUB_MSG))
            self.ready.set_result(True)
            data = buf[end + 4:]
            self.buf = b""
            if not data:
                return
        buf = self.buf + data if self.buf else data
        L = len(buf)
        pos = 0
        sampled = self.sampled
        now = 0
        while L - pos >= 2:
            b1 = buf[pos + 1]
            n = b1 & 0x7F
            hl = 2
            if n == 126:
                if L - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                hl = 4
            elif n == 127:
                if L - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2:pos + 10], "big")
                hl = 10
            if L - pos < hl + n:
                break
            op = buf[pos] & 0x0F
            p = pos + hl
            if op == 1 or op == 2:
                if buf[pos] & 0x40:   # RSV1: permessage-deflate
                    m = self.inflate.decompress(buf[p:p + n] + b"\x00\x00\xff\xff")
                    s0, e0 = 0, len(m)
                else:
                    m, s0, e0 = buf, p, p + n
                d = e0 - TAIL - MLEN           # where the message starts
                if m[s0 + 2] == 111:           # payload starts {"op : a reply, not data
                    self._reply(bytes(m[s0:e0]))
                elif m[d + E0] == 57:  # '9' -> END marker
                    self._end()
                else:
                    self.count += 1
                    if sampled:
                        if not now:
                            now = mono()
                            if not STATE["first"]:
                                STATE["first"] = now
                        if m[d:d + 8] != b'{"seq":"':
                            STATE["malformed"] += 1
                        else:
                            LAT.append(now - int(m[d + T0:d + T1]))
                            seq = int(m[d + S0:d + S1])
                            if self.next_seq >= 0 and seq != self.next_seq:
                                STATE["gaps"] += 1
                            self.next_seq = seq + 1
            elif op == 9:
                self.t.write(client_frame(buf[p:p + n], 0xA))
            elif op == 8:
                self.t.close()
            pos = p + n
        self.buf = buf[pos:] if pos < L else b""

    def _reply(self, payload):
        STATE["replies"] += 1
        if payload.startswith(b'{"op":"error"') or b'"success":false' in payload:
            STATE["errors"] += 1
            if STATE["first_error"] is None:
                STATE["first_error"] = payload[:300].decode("utf-8", "replace")

    def _end(self):
        if not self.done:
            self.done = True
            STATE["end_last"] = mono()
            STATE["done"] += 1
            if STATE["done"] >= TOTAL and not ALL_DONE.done():
                ALL_DONE.set_result(True)


async def main(a):
    global ALL_DONE, TOTAL, SUB_MSG, MLEN, TAIL
    SUB_MSG = a.sub_msg.encode()
    MLEN = msg_len(a.size)
    TAIL = 1 if a.frame == "native" else 0
    loop = asyncio.get_running_loop()
    ALL_DONE = loop.create_future()
    TOTAL = a.n
    sem = asyncio.Semaphore(a.conc)
    conns = []
    path = a.path.encode()

    async def one(i):
        async with sem:
            ready = loop.create_future()
            sampled = (i % a.sample_every) == 0
            for attempt in range(5):
                try:
                    tr, pr = await loop.create_connection(
                        lambda: C(ready, sampled, path, a.deflate), "127.0.0.1", a.port,
                        local_addr=(a.src_ip, 0) if a.src_ip else None)
                    break
                except OSError:
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.2)
            await asyncio.wait_for(ready, 30)
            conns.append(pr)

    await asyncio.gather(*[one(i) for i in range(a.n)])
    print("CONNECTED", len(conns), flush=True)
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    try:
        await asyncio.wait_for(ALL_DONE, a.timeout)
        timed_out = False
    except TimeoutError:
        timed_out = True
    t_end = mono()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    counts = [c.count for c in conns]
    if a.lat_file:
        with open(a.lat_file, "wb") as f:
            LAT.tofile(f)
    res = {
        "n": len(conns), "frames": sum(counts), "min_count": min(counts), "max_count": max(counts),
        "first": STATE["first"], "end_last": STATE["end_last"], "t_end": t_end,
        "done": STATE["done"], "bad": STATE["bad"], "gaps": STATE["gaps"],
        "timed_out": timed_out, "samples": len(LAT), "replies": STATE["replies"],
        "errors": STATE["errors"], "first_error": STATE["first_error"],
        "malformed": STATE["malformed"],
        "cpu_user": ru1.ru_utime - ru0.ru_utime, "cpu_sys": ru1.ru_stime - ru0.ru_stime,
    }
    print("RESULT " + json.dumps(res), flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--path", default="/")
    ap.add_argument("--sub-msg", default=SUBSCRIBE_MSG.decode(),
                    help="the text frame each connection sends after the handshake")
    ap.add_argument("--frame", choices=["raw", "native"], default="raw",
                    help="raw: payload is the message; native: cryptowire native frame")
    ap.add_argument("--size", type=int, default=300, help="as given to the feeder/server")
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--conc", type=int, default=200)
    ap.add_argument("--sample-every", type=int, default=10)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--lat-file", default=None)
    ap.add_argument("--src-ip", default=None)
    ap.add_argument("--cpu", type=int, default=None)
    ap.add_argument("--deflate", action="store_true", help="offer permessage-deflate (as browsers do)")
    a = ap.parse_args()
    if a.cpu is not None:
        os.sched_setaffinity(0, {a.cpu})
    import uvloop
    uvloop.run(main(a))
