"""Cross-node fan-out benchmark (issue #7): 1 node x 3k clients vs 3 nodes x 1k, same load.

In ONE invocation, interleaved inside each repeat, the same offered load (feeder.py at a fixed
rate with bursts, optionally flood) goes to:

  mem-1x3000     1 node, memory bus, 3000 clients        (reference: the fan-out harness path)
  redis-1x3000   1 node, Redis bus, 3000 clients         (the bus round trip, no cross-node)
  redis-3x1000   3 nodes on one Redis, 1000 clients each (the feed goes to node 0 only; nodes
                 1 and 2 get every message through Redis pub/sub)

Every node is bench/fanout/hub_server.py (the real stack: Node + create_app, aiohttp/uvloop)
with ``--bus-url redis://127.0.0.1:6379/<db>`` (receivers with ``--no-feed``); clients are
bench/fanout/client.py processes (``--frame native``, latency from the send timestamp inside
the message), the same number of client processes and connections per process in every
configuration. The Redis db (not 0) is flushed before every run, after every Redis run and at
the end. Every phase waits with a timeout, a watchdog ends a run that overruns --run-timeout,
and every process this script started is stopped by its PID on success, failure, Ctrl-C or
SIGTERM. See README.md for the method and how to read the output.

One JSON line per run goes to --out (default bench/results/cluster-<stamp>.jsonl); the summary
table (report.py) is printed and written next to it as .summary.txt.

  .venv/bin/python bench/cluster/run.py                       # the full comparison
  .venv/bin/python bench/cluster/run.py --clients 300 --duration 3 --repeats 1 \\
      --loads 20x1 --out /tmp/smoke.jsonl                     # a smoke test
"""

from __future__ import annotations

import argparse
import array
import importlib.util
import json
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FANOUT = os.path.join(HERE, "..", "fanout")
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PY = sys.executable


def _load(name: str, path: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


sys.path.insert(0, FANOUT)                 # fanout modules import `common` by name
fb = _load("fanout_bench", os.path.join(FANOUT, "bench.py"))   # process helpers, CPU accounting
report = _load("cluster_report", os.path.join(HERE, "report.py"))

HUB_SUB_MSG = '{"op":"subscribe","args":["app:bench"]}'


# -- configuration -------------------------------------------------------------------------


def parse_configs(spec: str, total: int) -> list[dict]:
    """``mem-1,redis-1,redis-3`` -> configurations with ``total`` clients split over nodes."""
    out = []
    for tok in spec.split(","):
        bus, nodes = tok.strip().split("-")
        nodes = int(nodes)
        if bus not in ("mem", "redis") or nodes < 1 or (bus == "mem" and nodes != 1):
            raise SystemExit(f"--configs: bad {tok!r} (mem-1, redis-<nodes>)")
        if total % nodes:
            raise SystemExit(f"--clients {total} is not divisible by {nodes} nodes")
        out.append({"config": f"{bus}-{nodes}x{total // nodes}", "bus": bus, "nodes": nodes,
                    "n_per_node": total // nodes})
    return out


def parse_loads(spec: str) -> list[dict]:
    """``100x1,100x2,flood`` (rate ticks/s x burst; ``flood`` or ``floodxB``)."""
    out = []
    for tok in spec.split(","):
        tok = tok.strip()
        if tok.startswith("flood"):
            burst = int(tok.split("x")[1]) if "x" in tok else 5
            out.append({"load": f"flood x{burst}", "mode": "flood", "rate": None, "burst": burst})
        else:
            rate, burst = tok.split("x")
            out.append({"load": f"rate {rate}x{burst}", "mode": "rate", "rate": float(rate),
                        "burst": int(burst)})
    return out


# -- Redis ---------------------------------------------------------------------------------


class RedisCtl:
    """The benchmark's Redis db: flush, CPU counters, the server's PID (for CPU accounting)."""

    def __init__(self, url: str) -> None:
        from redis import Redis

        self.url = url
        self.r = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=3)
        db = self.r.connection_pool.connection_kwargs.get("db", 0)
        if int(db) == 0:
            raise SystemExit(f"--redis-url {url}: use a db index other than 0 (it is flushed)")
        self.db = int(db)
        info = self.r.info("server")
        self.version = info.get("redis_version")
        self.pid = self._local_pid(int(info.get("process_id", 0)))

    @staticmethod
    def _local_pid(pid: int) -> int | None:
        try:
            with open(f"/proc/{pid}/comm") as f:
                return pid if "redis" in f.read() else None
        except OSError:
            return None

    def flush(self) -> int:
        self.r.flushdb()
        return int(self.r.dbsize())

    def cpu(self) -> float:
        i = self.r.info("cpu")
        return float(i["used_cpu_user"]) + float(i["used_cpu_sys"])

    def stats(self) -> dict:
        i = self.r.info("stats")
        return {k: int(i.get(k, 0)) for k in ("total_commands_processed", "total_net_output_bytes",
                                              "total_net_input_bytes")}


# -- one run -------------------------------------------------------------------------------


class Procs:
    """Every process of one run, stopped by PID however the run ends."""

    def __init__(self) -> None:
        self.nodes: list[subprocess.Popen] = []
        self.others: list[subprocess.Popen] = []
        self.killed_by_watchdog = False
        # a node reads STOP only once its clients are subscribed; before that, don't wait long
        self.stop_grace = 3.0

    def all(self) -> list[subprocess.Popen]:
        return self.nodes + self.others

    def pids(self) -> set[int]:
        return {p.pid for p in self.all()}

    def watchdog(self) -> None:
        self.killed_by_watchdog = True
        for p in self.all():
            if p.poll() is None:
                p.kill()

    def stop(self) -> None:
        for p in self.nodes:                 # STOP lets a node shut down and clean up by itself
            if p.poll() is None and p.stdin is not None and not p.stdin.closed:
                try:
                    p.stdin.write("STOP\n")
                    p.stdin.flush()
                except OSError:
                    pass
        for p in self.others:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + self.stop_grace
        for p in self.nodes:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in self.all():
            if p.poll() is None:
                p.terminate()
        for p in self.all():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)


BUS_WARNINGS: dict[int, int] = {}   # pid -> WARNING/ERROR lines logged by cryptowire.bus.redis


def reader(proc, q, log_path: str) -> None:
    """fb.reader that also keeps the process's whole output in ``log_path`` and counts the
    bus's warnings (e.g. "position of app:bench unknown: Redis unavailable")."""
    with open(log_path, "w") as log:
        for line in proc.stdout:
            log.write(line)
            if line.startswith(("WARNING cryptowire.bus.redis", "ERROR cryptowire.bus.redis")):
                BUS_WARNINGS[proc.pid] = BUS_WARNINGS.get(proc.pid, 0) + 1
            q.put(line.rstrip("\n"))
    q.put(None)


def spawn(cmd: list[str], procs_list: list, log_path: str, stdin: bool = False):
    # TMPDIR: a node's temporary store (hub_server's mkdtemp) lands in the run's directory,
    # removed with it even when the node had to be killed
    env = {**os.environ, "TMPDIR": os.path.dirname(log_path)}
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                         cwd=ROOT, env=env)
    procs_list.append(p)
    q: queue.Queue = queue.Queue()
    t = threading.Thread(target=reader, args=(p, q, log_path), daemon=True)
    t.start()
    return p, q


def pinned(cpus: list[str], i: int, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", cpus[i % len(cpus)]] + cmd if cpus else cmd


def node_cmd(a, cfg, load, i: int, port: int, n: int) -> list[str]:
    cmd = [PY, os.path.join(FANOUT, "hub_server.py"), "--port", str(port), "--n", str(n),
           "--feed-port", str(port + 10000), "--outbound-bytes", str(a.outbound_bytes),
           "--size", str(a.size), "--feed-rcvbuf", str(a.feed_buf),
           "--connect-timeout", str(a.connect_timeout)]
    if cfg["bus"] == "redis":
        cmd += ["--bus-url", a.redis_url, "--bus-prefix", a.prefix]
        if i > 0:
            cmd.append("--no-feed")
    else:
        cmd += ["--publish-via", a.mem_publish_via]
    return cmd


def lat_stats(lat) -> dict:
    lat = sorted(lat)
    if not lat:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None, "samples": 0}
    return {"p50_ms": round(fb.pct(lat, 50) / 1e6, 3), "p99_ms": round(fb.pct(lat, 99) / 1e6, 3),
            "max_ms": round(lat[-1] / 1e6, 3), "samples": len(lat)}


def read_lat(path: str) -> array.array:
    lat = array.array("q")
    if os.path.exists(path):
        with open(path, "rb") as f:
            lat.frombytes(f.read())
        os.unlink(path)
    return lat


NEXT_PORT = [19000]   # the next run's ports are searched from here (--port)


def run_one(a, cfg, load, rep, rctl: RedisCtl) -> dict:
    fb.WARN.clear()
    fb.RECENT.clear()
    tmp = tempfile.mkdtemp(prefix=f"{cfg['config']}_", dir=a.tmpdir)
    nodes, per = cfg["nodes"], cfg["n_per_node"]
    node_cpus = [c for c in a.node_cpus.split(",") if c]
    client_cpus = [c for c in a.client_cpus.split(",") if c]
    procs = Procs()
    dur = a.duration
    budget = a.run_timeout or (a.connect_timeout + dur + a.drain_timeout + 90)
    timer = threading.Timer(budget, procs.watchdog)
    timer.daemon = True
    keys_left = rctl.flush()     # a clean db for every run (also the memory runs); 0 expected
    timer.start()
    ports, nqs, cqs, cmeta = [], [], [], []
    try:
        for i in range(nodes):
            port = fb.next_ports(NEXT_PORT[0])
            NEXT_PORT[0] = port
            ports.append(port)
            _, q = spawn(pinned(node_cpus, i, node_cmd(a, cfg, load, i, port, per)),
                         procs.nodes, os.path.join(tmp, f"node{i}.log"), stdin=True)
            nqs.append(q)
            # one at a time: nodes starting together on one core can stall a loop for > 2 s,
            # which the Redis broker's watchdog (PING, 2 s timeout) takes for a dead bus
            fb.expect(q, "LISTENING", 60, f"node{i}")
        # the same client processes in every configuration: --client-procs in all, split
        # evenly over the nodes (1 node x 3000: 3 x 1000 to node 0; 3 x 1000: one per node)
        k = max(1, a.client_procs // nodes)
        for i in range(nodes):
            for j in range(k):
                m = per // k + (1 if j < per % k else 0)
                c = len(cqs)
                lat_file = os.path.join(tmp, f"lat{c}.bin")
                ccmd = [PY, os.path.join(FANOUT, "client.py"), "--port", str(ports[i]),
                        "--n", str(m), "--path", "/ws", "--sub-msg", HUB_SUB_MSG,
                        "--frame", "native", "--size", str(a.size),
                        "--conc", str(a.connect_conc),
                        "--sample-every", str(a.sample_every),
                        "--timeout", str(a.client_timeout), "--lat-file", lat_file]
                _, q = spawn(pinned(client_cpus, c, ccmd), procs.others,
                             os.path.join(tmp, f"client{c}.log"))
                cqs.append(q)
                cmeta.append({"node": i, "n": m, "lat_file": lat_file})
        for c, q in enumerate(cqs):
            fb.expect(q, "CONNECTED", a.connect_timeout, f"client{c}")
        subs = [fb.expect(q, "SUBSCRIBED", 60, f"node{i}").split() for i, q in enumerate(nqs)]
        procs.stop_grace = 20.0

        if load["mode"] == "rate":
            fmode = ["--mode", "rate", "--rate", str(load["rate"]), "--burst", str(load["burst"])]
        else:
            fmode = ["--mode", "flood", "--burst", str(load["burst"])]
        fcmd = [PY, os.path.join(FANOUT, "feeder.py"), "--port", str(ports[0] + 10000),
                "--duration", str(dur), "--size", str(a.size), "--sndbuf", str(a.feed_buf)] + fmode
        mine = {os.getpid()} | procs.pids()
        exclude = mine | ({rctl.pid} if rctl.pid else set())
        fsnap0 = fb.foreign_snapshot(exclude)
        st0 = fb.proc_stat()
        rcpu0, rstat0 = rctl.cpu(), rctl.stats()
        _, fq = spawn(pinned(client_cpus, len(client_cpus) - 1, fcmd), procs.others,
                      os.path.join(tmp, "feeder.log"))
        fb.expect(nqs[0], "PUBLISH_START", 30, "node0")
        fb.expect(nqs[0], "PUBLISH_END", dur + a.drain_timeout, "node0")
        fd = fb.expect(fq, "FEEDER_DONE", 30, "feeder").split()
        sent, unsent = int(fd[1]), int(fd[2])
        cres = [json.loads(fb.expect(q, "RESULT ", a.client_timeout + 30, f"client{c}")[7:])
                for c, q in enumerate(cqs)]
        st1 = fb.proc_stat()
        rcpu1, rstat1 = rctl.cpu(), rctl.stats()
        exclude |= procs.pids()
        fsnap1 = fb.foreign_snapshot(exclude)
        sres = []
        for i, (p, q) in enumerate(zip(procs.nodes, nqs, strict=True)):
            p.stdin.write("STOP\n")
            p.stdin.flush()
            sres.append(json.loads(fb.expect(q, "RESULT ", 30, f"node{i}")[7:]))
    except BaseException as exc:
        if procs.killed_by_watchdog and isinstance(exc, Exception):
            err = TimeoutError(f"run exceeded --run-timeout {budget:.0f}s, in: {exc!r}"[:300])
            err.add_note(f"process logs kept in {tmp}")
            raise err from exc
        exc.add_note(f"process logs kept in {tmp}")
        raise
    finally:
        procs.stop()
        timer.cancel()
        if cfg["bus"] == "redis" or a.flush_after_each:
            rctl.flush()
    if procs.killed_by_watchdog:
        raise TimeoutError(f"run exceeded --run-timeout {budget:.0f}s")

    # -- metrics --------------------------------------------------------------------------
    n = nodes * per
    lat_all = array.array("q")
    lat_node = [array.array("q") for _ in range(nodes)]
    for meta in cmeta:
        lat = read_lat(meta["lat_file"])
        lat_all.extend(lat)
        lat_node[meta["node"]].extend(lat)
    if not a.keep_logs:
        shutil.rmtree(tmp, ignore_errors=True)
    frames = sum(c["frames"] for c in cres)
    published = sres[0]["published"]
    t0 = sres[0]["t_start"]
    t_last = max(c["end_last"] or c["t_end"] for c in cres)
    wall = (t_last - t0) / 1e9
    offered_msgs = int(load["rate"] * dur) * load["burst"] if load["mode"] == "rate" else None
    per_node = []
    for i, s in enumerate(sres):
        cs = [c for c, m in zip(cres, cmeta, strict=True) if m["node"] == i]
        nframes = sum(c["frames"] for c in cs)
        cpu = s["cpu_user"] + s["cpu_sys"]
        rss_before, rss_after = int(subs[i][2]), int(subs[i][3])
        row = {"node": i, "role": s.get("role", "feed"), "port": ports[i], "n": s["n"],
               "received": s["published"], "frames": nframes,
               "delivered_frac": round(nframes / (published * s["n"]), 5) if published else None,
               "deliv_per_s": round(nframes / wall) if wall > 0 else None,
               "cpu_s": round(cpu, 3), "util": round(cpu / wall, 3) if wall > 0 else None,
               "sys_frac": round(s["cpu_sys"] / cpu, 2) if cpu else None,
               "cpu_per_M": round(cpu / nframes * 1e6, 2) if nframes else None,
               "rss_after_mb": round(rss_after / 2**20, 1),
               "rss_per_conn_kb": round((rss_after - rss_before) / max(1, s["n"]) / 1024, 2),
               "hub": s.get("hub"), "bus": s.get("bus"), "bus_gaps": s.get("bus_gaps"),
               "bus_warnings": BUS_WARNINGS.get(procs.nodes[i].pid, 0),
               "publish_via": s.get("publish_via"), "gc": s.get("gc")}
        row.update(lat_stats(lat_node[i]))
        per_node.append(row)
    scpu = sum(r["cpu_s"] for r in per_node)
    ccpu = sum(c["cpu_user"] + c["cpu_sys"] for c in cres)
    fcpu = fb.foreign_cpu_s({k: v for k, v in fsnap0.items() if k not in exclude}, fsnap1)
    rcpu = rcpu1 - rcpu0
    res = {
        "bench": "cluster", "config": cfg["config"], "bus": cfg["bus"], "nodes": nodes,
        "n_per_node": per, "n": n, "load": load["load"], "mode": load["mode"],
        "rate": load["rate"], "burst": load["burst"], "duration": dur, "rep": rep,
        "offered_msgs": offered_msgs,
        "offered_deliv_per_s": (round(load["rate"] * load["burst"] * n)
                                if load["mode"] == "rate" else None),
        "published": published, "feeder_sent": sent, "feeder_unsent": unsent, "frames": frames,
        "delivered_frac": round(frames / (published * n), 5) if published else None,
        "delivered_of_offered": (round(frames / (offered_msgs * n), 5)
                                 if offered_msgs else None),
        "wall_s": round(wall, 3), "deliv_per_s": round(frames / wall) if wall > 0 else None,
        "server_cpu_s": round(scpu, 3), "server_util": round(scpu / wall, 3) if wall > 0 else None,
        "server_cpu_per_M": round(scpu / frames * 1e6, 2) if frames else None,
        "node_cpu_s": [r["cpu_s"] for r in per_node],
        "node_util": [r["util"] for r in per_node],
        "redis_cpu_s": round(rcpu, 3), "redis_util": round(rcpu / wall, 3) if wall > 0 else None,
        "redis_commands": rstat1["total_commands_processed"] - rstat0["total_commands_processed"],
        "redis_out_mb": round((rstat1["total_net_output_bytes"]
                               - rstat0["total_net_output_bytes"]) / 2**20, 2),
        "client_cpu_s": round(ccpu, 3), "client_util": round(ccpu / wall, 2) if wall > 0 else None,
        "machine_busy": fb.busy(st0, st1),
        "foreign_cpu_frac": round(fcpu / wall, 3) if wall > 0 else None,
        "gaps": sum(c["gaps"] for c in cres), "bad": sum(c["bad"] for c in cres),
        "timed_out": any(c["timed_out"] for c in cres),
        "client_errors": sum(c.get("errors", 0) for c in cres),
        "first_error": next((c["first_error"] for c in cres if c.get("first_error")), None),
        "malformed": sum(c.get("malformed", 0) for c in cres),
        "bus_gaps": sum(r["bus_gaps"] or 0 for r in per_node),
        "bus_warnings": sum(r["bus_warnings"] for r in per_node),
        "slow_consumer_closes": sum((r["hub"] or {}).get("slow_consumer_closes", 0)
                                    for r in per_node),
        "redis_keys_after_flush": keys_left, "per_node": per_node,
        "warnings": len(fb.WARN), "warning_lines": fb.WARN[:5],
    }
    res.update(lat_stats(lat_all))
    return res


# -- main ----------------------------------------------------------------------------------


def machine_info(rctl: RedisCtl) -> dict:
    import aiohttp
    import redis
    import uvloop

    def sh(*cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10,
                                  cwd=ROOT).stdout.strip()
        except Exception:  # noqa: BLE001
            return None

    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo")
                  if ln.startswith("model name")), "?")
    return {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
            "python": platform.python_version(), "aiohttp": aiohttp.__version__,
            "uvloop": uvloop.__version__, "redis_py": redis.__version__,
            "redis_server": rctl.version, "redis_pid_local": rctl.pid,
            "commit": sh("git", "rev-parse", "--short", "HEAD"),
            "src_uncommitted_files": len((sh("git", "status", "--porcelain", "--", "src")
                                          or "").splitlines())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=3000, help="clients in total, every config")
    ap.add_argument("--configs", default="mem-1,redis-1,redis-3",
                    help="bus-nodes list: mem-1 (memory bus reference), redis-<nodes>")
    ap.add_argument("--loads", default="20x1,20x5,100x5",
                    help="rate ticks/s x burst, comma-separated; add flood or floodxB")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--retries", type=int, default=1,
                    help="re-run a failed run or one with foreign_cpu_frac > --max-foreign")
    ap.add_argument("--max-foreign", type=float, default=0.05)
    ap.add_argument("--quiet-wait", type=float, default=10.0,
                    help="max seconds to wait for other CPU users to go quiet before each run")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/7",
                    help="the benchmark's Redis db (not 0): FLUSHDB before and after each run")
    ap.add_argument("--prefix", default="cwbench", help="bus.prefix of the nodes")
    ap.add_argument("--node-cpus", default="0",
                    help="CPUs for the nodes, round-robin ('' = no pinning)")
    ap.add_argument("--client-cpus", default="1",
                    help="CPUs for clients and feeder, round-robin ('' = no pinning)")
    ap.add_argument("--client-procs", type=int, default=3,
                    help="client processes in every config (split evenly over the nodes)")
    ap.add_argument("--connect-conc", type=int, default=20,
                    help="client.py --conc: handshakes in flight per client process. Kept low:"
                         " the Redis broker's pool (redis-py default, 100 connections) fails"
                         " position() and the watchdog PING under a burst of subscribes")
    ap.add_argument("--sample-every", type=int, default=10)
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--outbound-bytes", type=int, default=1024 * 1024)
    ap.add_argument("--mem-publish-via", choices=["sync", "await"], default="sync",
                    help="memory-bus node: broker.publish_now (as the fan-out harness) or await")
    ap.add_argument("--feed-buf", type=int, default=16384)
    ap.add_argument("--connect-timeout", type=float, default=120.0)
    ap.add_argument("--drain-timeout", type=float, default=60.0,
                    help="seconds after --duration to wait for the feed node's PUBLISH_END")
    ap.add_argument("--client-timeout", type=float, default=None,
                    help="client wait for END after connecting (default duration + 90)")
    ap.add_argument("--run-timeout", type=float, default=None,
                    help="hard bound per run (default connect + duration + drain + 90 s)")
    ap.add_argument("--flush-after-each", action="store_true",
                    help="FLUSHDB after memory-bus runs too (Redis runs always are)")
    ap.add_argument("--keep-logs", action="store_true",
                    help="keep every run's process logs in --tmpdir (failed runs' always are)")
    ap.add_argument("--port", type=int, default=19000)
    ap.add_argument("--tmpdir", default=os.path.join(tempfile.gettempdir(), "cluster_bench"))
    ap.add_argument("--out", default=None, help="default bench/results/cluster-<stamp>.jsonl")
    a = ap.parse_args()
    if a.client_timeout is None:
        a.client_timeout = a.duration + 90
    configs = parse_configs(a.configs, a.clients)
    loads = parse_loads(a.loads)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if a.out is None:
        a.out = os.path.join(ROOT, "bench", "results", f"cluster-{stamp}.jsonl")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    os.makedirs(a.tmpdir, exist_ok=True)

    # SIGTERM/SIGHUP -> SystemExit, so that the finally blocks stop every child by PID
    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGHUP, _exit)

    rctl = RedisCtl(a.redis_url)
    info = machine_info(rctl)
    with open(a.out.replace(".jsonl", "") + ".machine.json", "w") as f:
        json.dump(info, f, indent=1)
    print("machine:", json.dumps(info), flush=True)
    total = a.repeats * len(loads) * len(configs)
    print(f"{total} runs: {', '.join(c['config'] for c in configs)} x "
          f"{', '.join(ld['load'] for ld in loads)} x {a.repeats} repeats, "
          f"{a.duration:g} s each -> {a.out}", flush=True)
    NEXT_PORT[0] = a.port
    exclude_quiet = {os.getpid()} | ({rctl.pid} if rctl.pid else set())
    try:
        for rep in range(a.repeats):
            for load in loads:
                for cfg in configs:            # interleaved inside each repeat
                    for attempt in range(a.retries + 1):
                        waited = fb.wait_quiet(a.quiet_wait, exclude_quiet)
                        t = time.time()
                        try:
                            r = run_one(a, cfg, load, rep, rctl)
                        except Exception as e:  # noqa: BLE001 - record the failure, go on
                            r = {"bench": "cluster", "config": cfg["config"], "bus": cfg["bus"],
                                 "nodes": cfg["nodes"], "n": a.clients, "load": load["load"],
                                 "mode": load["mode"], "rep": rep, "error": repr(e)[:400],
                                 "notes": getattr(e, "__notes__", None)}
                        r["attempt"] = attempt
                        r["run_s"] = round(time.time() - t, 1)
                        r["time"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t))
                        r["waited_quiet_s"] = waited
                        with open(a.out, "a") as f:
                            f.write(json.dumps(r) + "\n")
                        print(report.one_line(r), flush=True)
                        time.sleep(1.0)
                        disturbed = (r.get("foreign_cpu_frac") or 0) > a.max_foreign
                        if "error" not in r and not disturbed:
                            break
    finally:
        try:
            rctl.flush()
        except Exception:  # noqa: BLE001
            pass
    text = report.render(report.load([a.out]))
    summary = a.out.replace(".jsonl", "") + ".summary.txt"
    with open(summary, "w") as f:
        f.write(text + "\n")
    print()
    print(text)
    print(f"\nresults: {a.out}\nsummary: {summary}")


if __name__ == "__main__":
    main()
