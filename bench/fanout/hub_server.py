"""cryptowire's real stack as a fan-out benchmark server (the harness contract of README.md).

What runs is the product, not a model of it: ``Node(settings)`` + ``create_app(node)`` on
aiohttp with uvloop, the memory broker, the store on a temporary SQLite file (migrations run
at start), the demo source off. Clients connect to ``/ws`` and subscribe with the native op
``{"op":"subscribe","args":["app:bench"]}``. Each upstream message is parsed (orjson) and
published as ``Event(channel="app:bench", data=<the parsed object>, source="bench")`` through
the broker (``broker.publish_now`` on the memory broker, or ``await node.broker.publish`` with
``--publish-via await``), so it takes the real path: history append + encode once ->
``hub.deliver`` -> frame once per dialect -> per-session pending list -> one coalesced
``transport.write`` per session per loop tick.

Protocol with the orchestrator (stdout lines, stdin commands), as server.py:
  prints  LISTENING <port>
  prints  SUBSCRIBED <n> <rss_before> <rss_after>   once --n sessions are live on app:bench
  prints  PUBLISH_START <monotonic_ns>, PUBLISH_END <monotonic_ns> <published>
  reads   STOP   -> prints RESULT {json} and exits

Rate mode: newline-delimited messages arrive on --feed-port from feeder.py; reading the feed
pauses while sampled sessions have more than --pending-limit bytes in their transport's write
buffer (TCP backpressure to the feeder), exactly as server.py does for the baselines.
--flood: an internal task publishes --burst messages per loop iteration for --duration seconds.

Cluster runs (bench/cluster/run.py): ``--bus-url redis://...`` puts the node on the Redis bus
(default ``memory://``, as before; the Redis broker has no ``publish_now``, so the feed is then
published with ``await node.broker.publish``). ``--no-feed`` makes a *receiver* node: no feed socket;
its publications arrive over the bus from the node that has the feed, and PUBLISH_START /
PUBLISH_END mark the first app:bench publication it delivers and the END message (the CPU
window of its RESULT starts there).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import resource
import shutil
import sys
import tempfile
import time

import orjson
import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from common import END_SEQ, feed_listener, is_end, make_message  # noqa: E402

CHANNEL = "app:bench"
PROC = psutil.Process()


def out(*a: object) -> None:
    print(*a, flush=True)


def rss() -> int:
    gc.collect()
    return PROC.memory_info().rss


def build_settings(args: argparse.Namespace, db_url: str):  # -> Settings
    from cryptowire.settings import Settings

    limit = args.n + 1000
    return Settings(
        log_level="WARNING",
        server={
            "host": "127.0.0.1",
            "port": args.port,
            "max_connections": limit,             # >= n
            "max_connections_per_key": limit,     # anonymous clients count per remote IP
            # Every bench client is keyless: no share of the port kept for keyed sessions
            # (older trees ignore the setting).
            "unauthenticated_share": 1.0,
            "max_subscriptions": 100,
            "outbound_buffer_bytes": args.outbound_bytes,
            "shutdown_grace_s": 1.0,
        },
        demo={"mode": "off"},
        store={"url": db_url},
        bus={"url": args.bus_url, "prefix": args.bus_prefix},
        bybit={"enabled": False},
        evm={"enabled": False},
    )


def variant_name(args: argparse.Namespace) -> str:
    return "hub" + (f"+{args.experiment}" if args.experiment else "")


def live_subscribers(hub) -> int:
    """Sessions receiving app:bench live (past the subscribe buffering phase). Sessions the
    hub keeps "ahead" (their subscribe read the stream's top before this node's live feed
    passed it, as on a bus before the channel's first publication) count too: they join
    their group with the next publication."""
    index = getattr(hub, "_index", None)
    if isinstance(index, dict):
        ahead = getattr(hub, "_ahead", None)
        n_ahead = len(ahead.get(CHANNEL, ())) if isinstance(ahead, dict) else 0
        return sum(len(s) for s in index.get(CHANNEL, {}).values()) + n_ahead
    return hub.subscribers(CHANNEL)


class GcWatch:
    """Counts the garbage collector's passes and their pauses while publishing (a full pass
    over the objects of 10k sessions stops the loop for a while)."""

    def __init__(self) -> None:
        self.active = False
        self.t = 0
        self.count = [0, 0, 0]
        self.total_ms = [0.0, 0.0, 0.0]
        self.max_ms = [0.0, 0.0, 0.0]
        gc.callbacks.append(self.cb)

    def cb(self, phase: str, info: dict) -> None:
        if not self.active:
            return
        if phase == "start":
            self.t = time.perf_counter_ns()
        else:
            g = info["generation"]
            ms = (time.perf_counter_ns() - self.t) / 1e6
            self.count[g] += 1
            self.total_ms[g] += ms
            self.max_ms[g] = max(self.max_ms[g], ms)

    def result(self) -> dict:
        return {"collections": self.count, "pause_total_ms": [round(x, 1) for x in self.total_ms],
                "pause_max_ms": [round(x, 1) for x in self.max_ms]}


GC = GcWatch()


class Bench:
    def __init__(self, node, args: argparse.Namespace) -> None:
        from cryptowire.events import Event

        self.Event = Event
        self.node = node
        self.args = args
        self.t0: int | None = None
        self.t1 = 0
        self.ru0 = self.ru1 = None
        self.published = 0
        self.feed_transport: asyncio.Transport | None = None
        self.paused = False
        self.sentinels: list = []
        self.done = asyncio.Event()
        publish_now = getattr(node.broker, "publish_now", None)
        self.sync = args.publish_via == "sync" and publish_now is not None
        self.publish_now = publish_now
        self.q: asyncio.Queue[bytes] | None = None if self.sync else asyncio.Queue()

    def mark_start(self) -> None:
        self.ru0 = resource.getrusage(resource.RUSAGE_SELF)
        self.t0 = time.monotonic_ns()
        out("PUBLISH_START", self.t0)
        GC.active = True
        if self.args.pyspy:
            self.start_profiler()

    def start_profiler(self) -> None:
        """py-spy (pip install py-spy; not a project dependency) on this process while it
        publishes, itself on CPU 1 so that it does not take the server's core."""
        import subprocess

        a = self.args
        cmd = ["taskset", "-c", a.pyspy_cpu, os.path.join(os.path.dirname(sys.executable), "py-spy"),
               "record", "--pid", str(os.getpid()), "--rate", str(a.pyspy_rate),
               "--duration", str(a.pyspy_duration), "--format", a.pyspy_format,
               "-o", os.path.abspath(a.pyspy)]
        if a.pyspy_native:
            cmd.insert(cmd.index("record") + 1, "--native")
        self.profiler = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finish(self) -> None:
        GC.active = False
        self.ru1 = resource.getrusage(resource.RUSAGE_SELF)
        self.t1 = time.monotonic_ns()
        out("PUBLISH_END", self.t1, self.published)
        self.done.set()

    def event(self, line: bytes | str):
        return self.Event(channel=CHANNEL, data=orjson.loads(line), source="bench")

    # -- backpressure (same rule as server.py) -------------------------------------------

    def backlogged(self) -> bool:
        lim = self.args.pending_limit
        for s in self.sentinels:
            t = s.transport
            if not t.is_closing() and t.get_write_buffer_size() > lim:
                return True
        return False

    def pause(self) -> None:
        if not self.paused and self.feed_transport is not None:
            self.paused = True
            self.feed_transport.pause_reading()
            asyncio.get_running_loop().call_later(0.0005, self.maybe_resume)

    def maybe_resume(self) -> None:
        ok = not self.backlogged() if self.sync else self.q.qsize() <= self.args.queue_limit // 4
        if ok:
            self.paused = False
            self.feed_transport.resume_reading()
        else:
            asyncio.get_running_loop().call_later(0.0005, self.maybe_resume)

    # -- rate mode: lines from the feeder ------------------------------------------------

    def on_lines(self, lines: list[bytes]) -> None:
        if self.sync:
            pub = self.publish_now
            for line in lines:
                if not line:
                    continue
                pub(self.event(line))
                if is_end(line):
                    self.finish()
                    return
                self.published += 1
            if self.backlogged():
                self.pause()
        else:
            for line in lines:
                if line:
                    self.q.put_nowait(line)
            if self.q.qsize() > self.args.queue_limit:
                self.pause()

    async def publisher(self) -> None:
        """``--publish-via await``: one task publishes the lines that are waiting, all of
        them at once (``gather`` of ``node.broker.publish``, in order: on the Redis bus they share
        one pipeline), then waits for the next."""
        node, q = self.node, self.q
        while True:
            lines = [await q.get()]
            while not q.empty():
                lines.append(q.get_nowait())
            await asyncio.gather(*(node.broker.publish(self.event(line)) for line in lines))
            for line in lines:
                if is_end(line):
                    self.finish()
                    return
                self.published += 1
            if q.empty():
                await asyncio.sleep(0)
                while self.backlogged():
                    await asyncio.sleep(0.0005)

    # -- flood mode ----------------------------------------------------------------------

    async def flood(self) -> None:
        args, node = self.args, self.node
        self.mark_start()
        end = self.t0 + int(args.duration * 1e9)
        mono = time.monotonic_ns
        seq = 0
        while mono() < end:
            for _ in range(args.burst):
                ev = self.event(make_message(seq, mono(), args.size))
                seq += 1
                if self.sync:
                    self.publish_now(ev)
                else:
                    await node.broker.publish(ev)
            await asyncio.sleep(0)          # the hub's per-tick flush runs here
            while self.backlogged():
                await asyncio.sleep(0.0005)
        self.published = seq
        ev = self.event(make_message(END_SEQ, mono(), args.size))
        if self.sync:
            self.publish_now(ev)
        else:
            await node.broker.publish(ev)
        self.finish()


def receive_via_bus(hub, get_bench) -> None:
    """``--no-feed``: count the app:bench publications this node's hub gets from the bus (the
    broker calls ``hub.deliver``, looked up when the node starts, so this wraps it): the first
    one marks PUBLISH_START, the END message PUBLISH_END; everything is delivered as before."""
    deliver = hub.deliver

    def counting_deliver(pub) -> None:
        bench = get_bench()
        if bench is None or pub.channel != CHANNEL:
            deliver(pub)
            return
        if pub.type == "gap":            # the bus reconnected: messages may be missing
            bench.bus_gaps += 1
            deliver(pub)
            return
        if bench.t0 is None:
            bench.mark_start()
        deliver(pub)
        if is_end(pub.data_json):
            if not bench.done.is_set():
                bench.finish()
        else:
            bench.published += 1

    hub.deliver = counting_deliver


class Feed(asyncio.Protocol):
    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.bench.feed_transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        bench = self.bench
        if bench.t0 is None:
            bench.mark_start()
        buf = self.buf + data if self.buf else data
        lines = buf.split(b"\n")
        self.buf = lines.pop()
        bench.on_lines(lines)


def tracemalloc_snapshot(args: argparse.Namespace):
    if not args.tracemalloc:
        return None
    import tracemalloc

    gc.collect()
    return tracemalloc.take_snapshot()


def tracemalloc_report(args, snap0, snap1, n: int, rss_delta: int) -> None:
    """Python-heap growth per connection by allocation site (--tracemalloc PATH). tracemalloc
    sees what goes through Python's allocators, not libuv/uvloop's own malloc or the kernel."""
    lines = []
    diff = snap1.compare_to(snap0, "traceback")
    total = sum(d.size_diff for d in diff)
    lines.append(f"connections {n}; RSS growth {rss_delta / n / 1024:.2f} KiB/conn; "
                 f"traced Python heap growth {total / n / 1024:.2f} KiB/conn")
    for kind in ("filename", "lineno"):
        lines.append(f"\n-- by {kind} (bytes per connection, objects per connection)")
        for d in snap1.compare_to(snap0, kind)[:args.tracemalloc_top]:
            fr = d.traceback[0]
            where = fr.filename if kind == "filename" else f"{fr.filename}:{fr.lineno}"
            lines.append(f"{d.size_diff / n:9.1f} B {d.count_diff / n:6.2f}  {where}")
    lines.append("\n-- by traceback (largest)")
    for d in diff[:12]:
        lines.append(f"{d.size_diff / n:9.1f} B {d.count_diff / n:6.2f}")
        for fr in d.traceback.format()[-2 * args.tracemalloc_frames:]:
            lines.append("      " + fr)
    with open(args.tracemalloc, "w") as fh:
        fh.write("\n".join(lines) + "\n")


async def run(args: argparse.Namespace, tmp: str) -> None:
    from aiohttp import web

    from cryptowire.app.node import Node
    from cryptowire.server.app import create_app

    loop = asyncio.get_running_loop()
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start(args.tracemalloc_frames)
    settings = build_settings(args, f"sqlite+aiosqlite:///{tmp}/bench.db")
    node = Node(settings)
    bench_ref: list[Bench] = []
    if args.no_feed:
        receive_via_bus(node.hub, lambda: bench_ref[0] if bench_ref else None)
    if args.experiment:
        from experiments import EXPERIMENTS

        EXPERIMENTS[args.experiment](node.hub)
    runner = web.AppRunner(create_app(node), access_log=None, handle_signals=False)
    await runner.setup()                  # on_startup: node.start() (store, broker, sources)
    site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=4096)
    await site.start()
    if node.sources:
        out("WARNING sources running:", [s.name for s in node.sources])
    bench = Bench(node, args)
    bench.bus_gaps = 0
    bench_ref.append(bench)
    feed_server = None
    if not args.no_feed:
        feed_server = await loop.create_server(
            lambda: Feed(bench), sock=feed_listener(args.feed_port, args.feed_rcvbuf))
    rss0 = rss()
    snap0 = tracemalloc_snapshot(args)
    out("LISTENING", args.port)

    hub = node.hub
    deadline = time.monotonic() + args.connect_timeout
    while live_subscribers(hub) < args.n:
        if time.monotonic() > deadline:
            out("ERROR subscribe timeout", live_subscribers(hub), len(hub.sessions))
            await runner.cleanup()
            return
        await asyncio.sleep(0.05)
    await asyncio.sleep(args.settle)
    rss1 = rss()
    if snap0 is not None:
        tracemalloc_report(args, snap0, tracemalloc_snapshot(args), live_subscribers(hub),
                           rss1 - rss0)
    sessions = [s for s in hub.sessions.values() if CHANNEL in s.channels]
    bench.sentinels = sessions[:: max(1, len(sessions) // 16)] + sessions[-1:]
    if bench.q is not None and not args.flood and not args.no_feed:
        asyncio.ensure_future(bench.publisher())
    out("SUBSCRIBED", live_subscribers(hub), rss0, rss1)

    stop = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), lambda: (sys.stdin.readline(), stop.set()))
    try:
        if args.idle_only:
            await stop.wait()
            out("RESULT " + json.dumps({"variant": variant_name(args), "n": len(sessions),
                                        "rss_before": rss0, "rss_after": rss1}))
            return
        if args.flood:
            await bench.flood()
        await stop.wait()
        ru2 = resource.getrusage(resource.RUSAGE_SELF)
        if bench.t0 is None:
            out("ERROR no feed")
            return
        ru0, ru1 = bench.ru0, bench.ru1 or ru2
        st = hub.stats
        res = {
            "variant": variant_name(args), "n": len(sessions), "published": bench.published,
            "t_start": bench.t0, "t_pub_end": bench.t1,
            "pub_wall_s": ((bench.t1 or bench.t0) - bench.t0) / 1e9,
            "cpu_user_pub": ru1.ru_utime - ru0.ru_utime, "cpu_sys_pub": ru1.ru_stime - ru0.ru_stime,
            "cpu_user": ru2.ru_utime - ru0.ru_utime, "cpu_sys": ru2.ru_stime - ru0.ru_stime,
            "rss_before": rss0, "rss_after": rss1, "rss_end": PROC.memory_info().rss,
            "subs_end": live_subscribers(hub), "sessions_end": len(hub.sessions),
            "publish_via": "sync" if bench.sync else "await",
            "hub": {"publications": st.publications, "messages_out": st.messages_out,
                    "bytes_out": st.bytes_out, "writes": st.writes,
                    "slow_consumer_closes": st.slow_consumer_closes, "dropped": st.dropped},
            "frame_bytes": round(st.bytes_out / st.messages_out, 1) if st.messages_out else None,
            "gc": GC.result(), "gc_tracked_objects": len(gc.get_objects()),
        }
        if args.no_feed or not args.bus_url.startswith("memory"):
            res["role"] = "receiver" if args.no_feed else "feed"
            res["bus_gaps"] = bench.bus_gaps
            res["bus"] = node.broker.stats()
        out("RESULT " + json.dumps(res))
    finally:
        prof = getattr(bench, "profiler", None)
        if prof is not None:
            try:
                prof.wait(30)
            except Exception:
                prof.kill()
        loop.remove_reader(sys.stdin.fileno())
        if feed_server is not None:
            feed_server.close()
        try:
            await asyncio.wait_for(runner.cleanup(), 15)
        except Exception as exc:  # the orchestrator kills us anyway; say why we were slow
            out("WARNING cleanup:", repr(exc)[:200])


async def main(args: argparse.Namespace) -> None:
    tmp = tempfile.mkdtemp(prefix="cw_fanout_")
    try:
        os.chdir(tmp)                     # no stray ./cryptowire.toml is picked up
        await run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--feed-port", type=int, default=None, help="default: port + 10000")
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--connect-timeout", type=float, default=180.0)
    ap.add_argument("--pending-limit", type=int, default=64 * 1024)
    ap.add_argument("--outbound-bytes", type=int, default=1024 * 1024,
                    help="server.outbound_buffer_bytes (slow-consumer bound per session)")
    ap.add_argument("--publish-via", choices=["sync", "await"], default="sync",
                    help="sync: broker.publish_now (memory broker); await: await node.broker.publish")
    ap.add_argument("--queue-limit", type=int, default=8,
                    help="--publish-via await: pause the feed while more lines are queued")
    ap.add_argument("--feed-rcvbuf", type=int, default=16384, help="SO_RCVBUF of the feed socket")
    ap.add_argument("--tracemalloc", metavar="PATH", default=None,
                    help="write the Python-heap growth per connection by allocation site to PATH")
    ap.add_argument("--tracemalloc-frames", type=int, default=6)
    ap.add_argument("--tracemalloc-top", type=int, default=30)
    ap.add_argument("--pyspy", metavar="PATH", default=None,
                    help="profile the publishing phase with py-spy into PATH (raw = collapsed stacks)")
    ap.add_argument("--pyspy-rate", type=int, default=200)
    ap.add_argument("--pyspy-duration", type=int, default=4)
    ap.add_argument("--pyspy-format", default="raw", choices=["raw", "flamegraph", "speedscope"])
    ap.add_argument("--pyspy-native", action="store_true", help="include native (C) frames")
    ap.add_argument("--pyspy-cpu", default="1")
    ap.add_argument("--experiment", default=None, choices=["group-tick"],
                    help="run a bench-only prototype of a hub change (experiments.py)")
    ap.add_argument("--idle-only", action="store_true")
    ap.add_argument("--flood", action="store_true", help="publish internally, unthrottled")
    ap.add_argument("--duration", type=float, default=5.0, help="flood mode only")
    ap.add_argument("--burst", type=int, default=1, help="flood mode: messages per loop iteration")
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--bus-url", default="memory://",
                    help="bus.url: memory:// (default) or redis://host:port/db (cluster runs)")
    ap.add_argument("--bus-prefix", default="cw", help="bus.prefix (Redis key prefix)")
    ap.add_argument("--no-feed", action="store_true",
                    help="receiver node: no feed socket; publications arrive over the bus")
    a = ap.parse_args()
    if a.no_feed and (a.flood or a.idle_only):
        ap.error("--no-feed receives over the bus; it cannot be combined with --flood/--idle-only")
    if a.feed_port is None:
        a.feed_port = a.port + 10000
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    import uvloop

    uvloop.run(main(a))
