"""Latency benchmark clients: ``--clients`` WebSocket connections to the hub's ``/ws`` in one
process (raw ``asyncio.Protocol``, minimal RFC 6455 client), each subscribed to
``--per-client`` of ``--symbols`` channels of ``--kind`` (``ticker:<SYMBOL>`` or
``book:<depth>:<SYMBOL>``; connection i takes symbols i, i+1, ..), with ``"interval_ms"`` in
the subscribe request when ``--interval-ms`` is given (conflation, PROTOCOLS.md 4.3).

Every data frame is counted (by ``type``), every byte read is counted, and each connection
checks that the offsets it receives are contiguous (``offset`` = the previous one + 1, or
``offsets: [from, to]`` of a batch with ``from`` = previous + 1): a jump forward is counted
in ``offset_skips`` (``offsets_skipped`` offsets in all; expected with conflation), a step
back in ``offset_back``. On every ``--sample-every``-th connection, while measuring, each
frame's latency is ``time.time_ns()`` at receipt (taken once per read) minus the peer's send
stamp in ns: ``data.nextFundingTime`` of a ticker, the stamped level size of a book delta
(books.py; snapshots carry no fresh stamp and are not measured). The frame's ``ts`` (the
peer's send time in ms) gives a second, 1 ms resolution figure (``ts_p50_ms``..).

Prints ``SUBSCRIBED <n>`` once every connection has its subscribe reply; stdin ``MEASURE``
starts recording, ``STOP`` prints ``RESULT {json}`` (percentiles in ms) and exits.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import hashlib
import json
import os
import struct
import sys
import time

from books import stamp_of
from common import SYMBOLS
from topbook import stamp_of_pair

try:
    from orjson import loads
except ImportError:  # pragma: no cover
    from json import loads  # type: ignore[assignment]

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
STAMP = b'"nextFundingTime":"'
LAT = array.array("q")
LAT_TS = array.array("q")  # from the frame's ts (ms): receive ms - send ms
LAT_VENUE: dict[str, array.array] = {}  # type: ignore[type-arg]  # bbo: per venue
BBO = {"changes": 0, "frames": 0, "multi": 0, "unattributed": 0}
TYPES: dict[str, int] = {}
STATE = {"frames": 0, "bytes": 0, "replies": 0, "rejected": 0, "errors": 0, "gaps": 0,
         "lost": 0, "close_codes": {}, "measuring": False, "measured_frames": 0,
         "offset_skips": 0, "offsets_skipped": 0, "offset_back": 0, "book": False,
         "bbo": False}
now_ns = time.time_ns


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    else:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    return head + b"\x00\x00\x00\x00" + payload  # zero mask: payload unchanged


class Client(asyncio.Protocol):
    __slots__ = ("t", "buf", "open", "sampled", "sub", "key", "accept", "opened", "subscribed",
                 "last", "stamps")

    def __init__(self, sub: bytes, sampled: bool, opened: asyncio.Future[None],
                 subscribed: asyncio.Future[None]) -> None:
        self.sub = sub
        self.sampled = sampled
        self.buf = b""
        self.open = False
        self.key = base64.b64encode(os.urandom(16))
        self.accept = base64.b64encode(hashlib.sha1(self.key + GUID).digest())
        self.opened = opened
        self.subscribed = subscribed
        self.last = -1  # the offset of the last data frame
        self.stamps: dict[str, int] = {}  # bbo: the newest stamp seen per venue

    def connection_made(self, t):  # type: ignore[no-untyped-def]
        self.t = t
        t.write(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: " + self.key +
                b"\r\nSec-WebSocket-Version: 13\r\n\r\n")

    def connection_lost(self, exc):  # type: ignore[no-untyped-def]
        STATE["lost"] += 1
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("lost during handshake"))

    def data_received(self, data: bytes) -> None:
        STATE["bytes"] += len(data)
        buf = self.buf + data if self.buf else data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            head = buf[:end]
            if not head.startswith(b"HTTP/1.1 101") or self.accept not in head:
                self.opened.set_exception(ConnectionError(f"bad handshake {head[:120]!r}"))
                self.t.close()
                return
            self.open = True
            self.opened.set_result(None)
            self.t.write(client_frame(self.sub))
            buf = buf[end + 4:]
        size = len(buf)
        pos = 0
        now = 0
        # bbo: a sampled connection follows every frame (the venues' stamps it has seen)
        measure = self.sampled and (STATE["measuring"] or STATE["bbo"])
        while size - pos >= 2:
            n = buf[pos + 1] & 0x7F
            hl = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                hl = 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2:pos + 10], "big")
                hl = 10
            end = pos + hl + n
            if end > size:
                break
            op = buf[pos] & 0x0F
            p = pos + hl
            if op == 1:
                if buf[p + 2] == 0x63:  # {"c...: a data frame {"channel":..
                    STATE["frames"] += 1
                    kind = self._data(buf, p, end)
                    if measure:
                        if not now:
                            now = now_ns()
                        self._latency(buf, p, end, now, kind)
                else:
                    self._reply(bytes(buf[p:end]))
            elif op == 9:
                self.t.write(client_frame(bytes(buf[p:end]), 0xA))
            elif op == 8:
                code = struct.unpack("!H", buf[p:p + 2])[0] if n >= 2 else 1005
                codes = STATE["close_codes"]
                codes[code] = codes.get(code, 0) + 1  # type: ignore[index,union-attr]
                self.t.close()
            pos = end
        self.buf = buf[pos:] if pos < size else b""

    def _data(self, buf: bytes, p: int, end: int) -> str:
        """Count the frame's type and check its offsets follow the previous frame's."""
        t = buf.find(b'"type":"', p, end) + 8
        j = buf.find(b'"', t, end)
        kind = buf[t:j].decode()
        TYPES[kind] = TYPES.get(kind, 0) + 1
        if kind == "gap":
            STATE["gaps"] += 1
        i = buf.find(b'"offset', j, end) + 7
        if buf[i] == 0x22:  # "offset":N
            k = buf.find(b",", i + 2, end)
            first = last = int(buf[i + 2:k])
        else:  # "offsets":[from,to]
            k = buf.find(b"]", i + 4, end)
            a, _, b = buf[i + 4:k].partition(b",")
            first, last = int(a), int(b)
        prev = self.last
        if prev >= 0 and first != prev + 1:
            if first > prev:
                STATE["offset_skips"] += 1
                STATE["offsets_skipped"] += first - prev - 1
            else:
                STATE["offset_back"] += 1
        self.last = last
        return kind

    def _latency(self, buf: bytes, p: int, end: int, now: int, kind: str) -> None:
        if STATE["bbo"]:
            self._bbo(loads(buf[p:end])["data"]["venues"], now)
            return
        if STATE["book"]:
            if kind != "delta":
                return
            msg = loads(buf[p:end])
            data = msg["data"]
            stamp = stamp_of(data["bids"]) or stamp_of(data["asks"])
            if stamp is None:
                return
            LAT.append(now - stamp)
            LAT_TS.append((now // 1_000_000 - msg["ts"]) * 1_000_000)
            STATE["measured_frames"] += 1
            return
        i = buf.find(STAMP, p, end)
        if i >= 0:
            i += len(STAMP)
            j = buf.find(b'"', i, end)
            LAT.append(now - int(buf[i:j]))
            k = buf.find(b'"ts":', p, end) + 5
            LAT_TS.append((now // 1_000_000 - int(buf[k:buf.find(b",", k, end)])) * 1_000_000)
            STATE["measured_frames"] += 1

    def _bbo(self, venues: dict[str, dict[str, object]], now: int) -> None:
        """A bbo frame: each venue whose stamp is newer than in this connection's previous
        frame changed its top for this frame: one sample, now - that stamp (a venue's first
        appearance on the connection only sets its stamp)."""
        seen = self.stamps
        measuring = STATE["measuring"]
        changed = 0
        for venue, entry in venues.items():
            stamp = max(stamp_of_pair(entry["bid"]), stamp_of_pair(entry["ask"]))  # type: ignore[arg-type]
            before = seen.get(venue)
            if before is not None and stamp <= before:
                continue
            seen[venue] = stamp
            if before is None or not measuring:
                continue
            changed += 1
            LAT.append(now - stamp)
            lat = LAT_VENUE.get(venue)
            if lat is None:
                lat = LAT_VENUE[venue] = array.array("q")
            lat.append(now - stamp)
        if measuring:
            BBO["frames"] += 1
            BBO["changes"] += changed
            if changed > 1:
                BBO["multi"] += 1
            elif not changed:
                BBO["unattributed"] += 1
            STATE["measured_frames"] += 1

    def _reply(self, payload: bytes) -> None:
        msg = json.loads(payload)
        if msg.get("op") == "subscribe":
            STATE["replies"] += 1
            if msg.get("rejected"):
                STATE["rejected"] += 1
            if not self.subscribed.done():
                self.subscribed.set_result(None)
        elif msg.get("op") == "error":
            STATE["errors"] += 1


def percentiles(values: array.array) -> dict[str, float | int | None]:  # type: ignore[type-arg]
    if not values:
        return {"samples": 0}
    ordered = sorted(values)
    n = len(ordered)

    def at(q: float) -> float:
        return round(ordered[min(n - 1, int(q * n))] / 1e6, 3)

    return {"samples": n, "p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99),
            "p999_ms": at(0.999), "max_ms": round(ordered[-1] / 1e6, 3),
            "min_ms": round(ordered[0] / 1e6, 3)}


async def main(a: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    symbols = SYMBOLS[: a.symbols]
    sem = asyncio.Semaphore(200)
    subscribed: list[asyncio.Future[None]] = []
    transports = []

    prefix = {"book": f"book:{a.depth}:", "bbo": "bbo:"}.get(a.kind, "ticker:")
    STATE["book"] = a.kind == "book"
    STATE["bbo"] = a.kind == "bbo"

    async def one(i: int) -> None:
        args = [prefix + symbols[(i + k) % len(symbols)] for k in range(a.per_client)]
        request: dict[str, object] = {"op": "subscribe", "args": args}
        if a.interval_ms:
            request["interval_ms"] = a.interval_ms
        sub = json.dumps(request).encode()
        opened = loop.create_future()
        done = loop.create_future()
        subscribed.append(done)
        async with sem:
            t, _ = await loop.create_connection(
                lambda: Client(sub, i % a.sample_every == 0, opened, done),
                "127.0.0.1", a.port)
            transports.append(t)
            await asyncio.wait_for(opened, 30)

    await asyncio.gather(*(one(i) for i in range(a.clients)))
    await asyncio.wait_for(asyncio.gather(*subscribed), 60)
    print(f"SUBSCRIBED {a.clients} rejected={STATE['rejected']}", flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    measured_from = 0.0
    at_start: dict[str, int] = {}
    types_at_start: dict[str, int] = {}
    while True:
        line = (await reader.readline()).decode().strip()
        if line == "MEASURE":
            STATE["measuring"] = True
            measured_from = time.monotonic()
            at_start = {k: STATE[k] for k in ("frames", "bytes")}  # type: ignore[misc]
            types_at_start = dict(TYPES)
        elif line in ("STOP", ""):
            break
    STATE["measuring"] = False
    window = time.monotonic() - measured_from if measured_from else 0.0
    frames = STATE["frames"] - at_start.get("frames", 0)  # type: ignore[operator]
    nbytes = STATE["bytes"] - at_start.get("bytes", 0)  # type: ignore[operator]
    ts = {f"ts_{k}": v for k, v in percentiles(LAT_TS).items() if k in ("p50_ms", "p99_ms")}
    result = {
        "clients": a.clients, "symbols": a.symbols, "per_client": a.per_client,
        "kind": a.kind, "interval_ms": a.interval_ms,
        "sampled_clients": len(range(0, a.clients, a.sample_every)),
        "window_s": round(window, 3),
        "frames_received": frames,
        "frames_per_s": round(frames / window, 1) if window else None,
        "bytes_received": nbytes,
        "bytes_per_s": round(nbytes / window, 1) if window else None,
        "types": {k: v - types_at_start.get(k, 0) for k, v in TYPES.items()},
        **percentiles(LAT), **ts,
        "gaps": STATE["gaps"], "lost": STATE["lost"], "close_codes": STATE["close_codes"],
        "errors": STATE["errors"], "rejected": STATE["rejected"],
        "offset_skips": STATE["offset_skips"], "offsets_skipped": STATE["offsets_skipped"],
        "offset_back": STATE["offset_back"],
    }
    if a.kind == "bbo":
        result["bbo"] = {**BBO, "per_venue": {v: percentiles(lat)
                                             for v, lat in sorted(LAT_VENUE.items())}}
    print("RESULT " + json.dumps(result), flush=True)
    for t in transports:
        t.abort()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--per-client", type=int, default=1)
    parser.add_argument("--sample-every", type=int, default=10)
    parser.add_argument("--kind", choices=("ticker", "book", "bbo"), default="ticker")
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--interval-ms", type=int, default=0,
                        help="send \"interval_ms\" in the subscribe request (0: not sent)")
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(parser.parse_args()))
