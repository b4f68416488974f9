"""Baseline fan-out servers: one channel, N subscribers, a publisher inside the process.

Variants (--variant):
  raw              minimal RFC 6455 server on asyncio.Protocol; frame once, transport.write(frame)
                   per client per message (no coalescing)
  raw_batch        baseline (a): as raw, but the messages published in one loop tick are joined
                   and written once per client (per-tick coalescing, what cryptowire's hub does)
  seed003          baseline (b): the seed 003 pattern on `websockets` (new asyncio API):
                   await asyncio.gather(*(asyncio.wait_for(ws.send(m), 5) for ws in clients))
                   per message (alias of ws_gather_waitfor)
  ws_gather        websockets, await asyncio.gather(ws.send(m) for each client)
  ws_broadcast     websockets.asyncio.server.broadcast(clients, m)
  aiohttp          aiohttp WebSocketResponse, `for ws in clients: await ws.send_str(m)`

cryptowire's own hub is not here: it runs from hub_server.py (same stdout/stdin contract).

Upstream: in rate mode messages arrive on a TCP feed port (--feed-port, default port+10000) from
feeder.py, one message per line; with --flood the server generates them itself, unthrottled.

Protocol with the orchestrator (stdout lines, stdin commands):
  prints  LISTENING <port>
  prints  SUBSCRIBED <n> <rss_before> <rss_after>   once --n clients subscribed
  prints  PUBLISH_START <monotonic_ns>, PUBLISH_END <monotonic_ns> <published>
  reads   STOP   -> prints RESULT {json} and exits

Adapted from ../shared/bench/fanout/server.py (the picows and Starlette variants were left out;
rss_before is now taken after the server started listening, as hub_server.py does).
"""
import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import time

import psutil

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import (  # noqa: E402
    END_SEQ,
    accept_for,
    feed_listener,
    is_end,
    make_message,
    parse_client_frames,
    server_frame,
)

SUBS = {}          # connection object -> True (insertion ordered)
PROC = psutil.Process()


def rss():
    gc.collect()
    return PROC.memory_info().rss


# ----------------------------------------------------------------------------- variants

class Variant:
    sync = True            # publish() is a plain function (no await)

    async def start(self, host, port):
        raise NotImplementedError

    def pending(self, conn) -> int:
        return 0

    def publish(self, s: str, b: bytes):
        raise NotImplementedError


class WebsocketsBase(Variant):
    async def start(self, host, port):
        from websockets.asyncio.server import serve

        async def handler(ws):
            try:
                await ws.recv()            # the subscribe message
            except Exception:
                return
            SUBS[ws] = True
            try:
                async for _ in ws:
                    pass
            except Exception:
                pass
            finally:
                SUBS.pop(ws, None)

        self.server = await serve(handler, host, port, backlog=4096, max_size=2**16)

    def pending(self, ws):
        t = ws.transport
        return t.get_write_buffer_size() if t is not None else 0


class WsGather(WebsocketsBase):
    sync = False

    async def publish(self, s, b):
        await asyncio.gather(*[ws.send(s) for ws in SUBS], return_exceptions=True)


class WsGatherWaitFor(WebsocketsBase):
    sync = False

    async def publish(self, s, b):
        # the seed 003 broadcast loop, verbatim in shape: one send per client, each under a
        # 5 s timeout, all gathered (a task per client per message)
        await asyncio.gather(*(asyncio.wait_for(ws.send(s), 5) for ws in list(SUBS)),
                             return_exceptions=True)


class WsBroadcast(WebsocketsBase):
    def publish(self, s, b):
        from websockets.asyncio.server import broadcast
        broadcast(SUBS, s)


class Aiohttp(Variant):
    sync = False

    async def start(self, host, port):
        from aiohttp import web

        async def handler(request):
            ws = web.WebSocketResponse(autoping=True, max_msg_size=2**16)
            await ws.prepare(request)
            await ws.receive()
            ws._bench_transport = request.transport
            SUBS[ws] = True
            try:
                async for _ in ws:
                    pass
            finally:
                SUBS.pop(ws, None)
            return ws

        app = web.Application()
        app.router.add_get("/", handler)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port, backlog=4096)
        await site.start()

    def pending(self, ws):
        t = ws._bench_transport
        return t.get_write_buffer_size() if t is not None else 0

    async def publish(self, s, b):
        for ws in SUBS:
            try:
                await ws.send_str(s)
            except Exception:
                pass


class RawProto(asyncio.Protocol):
    __slots__ = ("transport", "buf", "upgraded")

    def connection_made(self, transport):
        self.transport = transport
        self.buf = bytearray()
        self.upgraded = False

    def data_received(self, data):
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 8192:
                    self.transport.close()
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[:end + 4]
            key = None
            for line in head.split("\r\n")[1:]:
                k, _, v = line.partition(":")
                if k.strip().lower() == "sec-websocket-key":
                    key = v.strip().encode()
            if key is None:
                self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                self.transport.close()
                return
            self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                                 accept_for(key) + b"\r\n\r\n")
            self.upgraded = True
        for opcode, payload in parse_client_frames(buf):
            if opcode == 0x1:
                SUBS[self.transport] = True
            elif opcode == 0x9:
                self.transport.write(server_frame(payload, 0xA))
            elif opcode == 0x8:
                self.transport.write(server_frame(payload[:2], 0x8))
                self.transport.close()

    def connection_lost(self, exc):
        SUBS.pop(self.transport, None)


class Raw(Variant):
    async def start(self, host, port):
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(RawProto, host, port, backlog=4096)

    def pending(self, t):
        return t.get_write_buffer_size()

    def publish(self, s, b):
        frame = server_frame(b)
        for t in SUBS:
            t.write(frame)


class RawBatch(Raw):
    """Coalesce all messages published within one event-loop tick into one write per client."""

    def __init__(self):
        self.frames = []
        self.loop = None

    def publish(self, s, b):
        if not self.frames:
            if self.loop is None:
                self.loop = asyncio.get_running_loop()
            self.loop.call_soon(self.flush)
        self.frames.append(server_frame(b))

    def flush(self):
        frames, self.frames = self.frames, []
        blob = frames[0] if len(frames) == 1 else b"".join(frames)
        for t in SUBS:
            t.write(blob)


VARIANTS = {
    "ws_gather": WsGather,
    "ws_gather_waitfor": WsGatherWaitFor,
    "seed003": WsGatherWaitFor,
    "ws_broadcast": WsBroadcast,
    "aiohttp": Aiohttp,
    "raw": Raw,
    "raw_batch": RawBatch,
}


# ----------------------------------------------------------------------------- driver

def out(*a):
    print(*a, flush=True)


class Feed(asyncio.Protocol):
    """Upstream feed: newline-delimited messages from feeder.py (stands in for Redis / an exchange).

    Sync variants publish inside data_received; async variants go through a queue drained by one
    publisher task that awaits each fan-out in turn (the seed's pattern). Backpressure: reading
    from the feed pauses while the sentinel clients' write buffers are above --pending-limit (sync)
    or the queue is long (async), so the upstream socket absorbs the excess, as TCP would.
    """

    def __init__(self, hub):
        self.hub = hub
        self.buf = b""

    def connection_made(self, t):
        self.hub.feed_transport = t

    def data_received(self, data):
        hub = self.hub
        if hub.t0 is None:
            hub.mark_start()
        buf = self.buf + data if self.buf else data
        lines = buf.split(b"\n")
        self.buf = lines.pop()
        hub.on_lines(lines)


class Hub:
    def __init__(self, v, args):
        self.v = v
        self.args = args
        self.t0 = None
        self.ru0 = None
        self.published = 0
        self.end_event = asyncio.Event()
        self.feed_transport = None
        self.paused = False
        self.q = None if v.sync else asyncio.Queue()
        self.sentinels = []

    def mark_start(self):
        self.ru0 = resource.getrusage(resource.RUSAGE_SELF)
        self.t0 = time.monotonic_ns()
        out("PUBLISH_START", self.t0)

    def backlogged(self):
        lim = self.args.pending_limit
        for c in self.sentinels:
            try:
                if self.v.pending(c) > lim:
                    return True
            except Exception:
                pass
        return False

    def on_lines(self, lines):
        v = self.v
        if v.sync:
            for line in lines:
                if is_end(line):
                    v.publish(line.decode(), line)
                    self.finish()
                    return
                v.publish(line.decode(), line)
                self.published += 1
            if self.backlogged():
                self.pause()
        else:
            for line in lines:
                self.q.put_nowait(line)
            if self.q.qsize() > self.args.queue_limit:
                self.pause()

    def pause(self):
        if not self.paused and self.feed_transport is not None:
            self.paused = True
            self.feed_transport.pause_reading()
            asyncio.get_running_loop().call_later(0.0005, self.maybe_resume)

    def maybe_resume(self):
        if self.v.sync:
            ok = not self.backlogged()
        else:
            ok = self.q.qsize() <= self.args.queue_limit // 4
        if ok:
            self.paused = False
            self.feed_transport.resume_reading()
        else:
            asyncio.get_running_loop().call_later(0.0005, self.maybe_resume)

    async def publisher(self):
        v, q = self.v, self.q
        while True:
            line = await q.get()
            await v.publish(line.decode(), line)
            if is_end(line):
                self.finish()
                return
            self.published += 1

    def finish(self):
        self.ru1 = resource.getrusage(resource.RUSAGE_SELF)
        self.t1 = time.monotonic_ns()
        out("PUBLISH_END", self.t1, self.published)
        self.end_event.set()


async def flood(hub, args):
    """Unthrottled mode: the publisher lives in the server and publishes as fast as the fan-out
    absorbs it: `burst` messages per event-loop iteration, then a yield, then wait while the
    sentinel connections have more than --pending-limit bytes queued (async variants are
    throttled by their own awaits)."""
    v = hub.v
    hub.mark_start()
    end = hub.t0 + int(args.duration * 1e9)
    seq = 0
    mono = time.monotonic_ns
    while mono() < end:
        for _ in range(args.burst):
            m = make_message(seq, mono(), args.size)
            seq += 1
            b = m.encode()
            if v.sync:
                v.publish(m, b)
            else:
                await v.publish(m, b)
        await asyncio.sleep(0)
        while hub.backlogged():
            await asyncio.sleep(0.0005)
    hub.published = seq
    m = make_message(END_SEQ, mono(), args.size)
    if v.sync:
        v.publish(m, m.encode())
    else:
        await v.publish(m, m.encode())
    hub.finish()


async def main(args):
    loop = asyncio.get_running_loop()
    v = VARIANTS[args.variant]()
    await v.start("127.0.0.1", args.port)
    rss0 = rss()
    hub = Hub(v, args)
    feed_server = await loop.create_server(lambda: Feed(hub),
                                           sock=feed_listener(args.feed_port, args.feed_rcvbuf))
    out("LISTENING", args.port)

    deadline = time.monotonic() + args.connect_timeout
    while len(SUBS) < args.n:
        if time.monotonic() > deadline:
            out("ERROR subscribe timeout", len(SUBS))
            return
        await asyncio.sleep(0.05)
    await asyncio.sleep(args.settle)
    rss1 = rss()
    conns = list(SUBS)
    hub.sentinels = conns[:: max(1, len(conns) // 16)] + [conns[-1]]
    if hub.q is not None and not args.flood:
        asyncio.ensure_future(hub.publisher())
    out("SUBSCRIBED", len(SUBS), rss0, rss1)

    stop = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), lambda: (sys.stdin.readline(), stop.set()))
    if args.idle_only:
        await stop.wait()
        out("RESULT " + json.dumps({"variant": args.variant, "n": len(SUBS), "rss_before": rss0,
                                     "rss_after": rss1}))
        return
    if args.flood:
        await flood(hub, args)
    await stop.wait()
    ru2 = resource.getrusage(resource.RUSAGE_SELF)
    if hub.t0 is None:
        out("ERROR no feed")
        return
    ru0, ru1 = hub.ru0, getattr(hub, "ru1", ru2)
    res = {
        "variant": args.variant, "n": len(conns), "published": hub.published,
        "t_start": hub.t0, "t_pub_end": getattr(hub, "t1", 0),
        "pub_wall_s": (getattr(hub, "t1", hub.t0) - hub.t0) / 1e9,
        "cpu_user_pub": ru1.ru_utime - ru0.ru_utime, "cpu_sys_pub": ru1.ru_stime - ru0.ru_stime,
        "cpu_user": ru2.ru_utime - ru0.ru_utime, "cpu_sys": ru2.ru_stime - ru0.ru_stime,
        "rss_before": rss0, "rss_after": rss1, "rss_end": PROC.memory_info().rss,
        "subs_end": len(SUBS),
    }
    out("RESULT " + json.dumps(res))
    feed_server.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--feed-port", type=int, default=None, help="default: port + 10000")
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--connect-timeout", type=float, default=180.0)
    ap.add_argument("--pending-limit", type=int, default=64 * 1024)
    ap.add_argument("--queue-limit", type=int, default=8,
                    help="async variants: pause the feed while more lines than this are queued")
    ap.add_argument("--feed-rcvbuf", type=int, default=16384, help="SO_RCVBUF of the feed socket")
    ap.add_argument("--idle-only", action="store_true")
    ap.add_argument("--flood", action="store_true", help="publish internally, unthrottled")
    ap.add_argument("--duration", type=float, default=5.0, help="flood mode only")
    ap.add_argument("--burst", type=int, default=1, help="flood mode: messages per loop iteration")
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--asyncio", action="store_true", help="use the stock asyncio loop, not uvloop")
    a = ap.parse_args()
    if a.feed_port is None:
        a.feed_port = a.port + 10000
    if a.asyncio:
        asyncio.run(main(a))
    else:
        import uvloop
        uvloop.run(main(a))
