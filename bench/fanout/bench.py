"""Orchestrator: runs server variants x N x repeats, clients in separate processes, collects metrics.

Example (cryptowire's hub against the two baselines, in one run):
  python bench.py --variants hub,raw_batch,seed003 --n 1000,10000 --mode rate --rate 100 \
                  --burst 5 --duration 5 --repeats 2 --out ../results/fanout.jsonl

Variant `hub` is the real cryptowire stack (hub_server.py: Node + create_app on aiohttp/uvloop,
clients on /ws with the native subscribe op); `hub+<name>` runs it with a bench-only prototype
from experiments.py; every other variant is a baseline in server.py.
The server is pinned to CPU 0 and the client processes (and the feeder) to the other CPUs
(--server-cpu/--client-cpus) so the server has a core of its own. Each run appends one JSON
line to --out.

Adapted from ../shared/bench/fanout/bench.py.
"""
import argparse
import array
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable
sys.path.insert(0, HERE)
from common import msg_len  # noqa: E402

HUB_SUB_MSG = '{"op":"subscribe","args":["app:bench"]}'


def is_hub(variant):
    return variant == "hub" or variant.startswith("hub+")


def size_for(a, variant):
    """--size for the hub; --base-size (default: --size) for the baselines."""
    return a.size if is_hub(variant) or not a.base_size else a.base_size


def server_cmd(a, variant, n, port):
    """The server process of one run, and how its clients talk to it."""
    size = size_for(a, variant)
    if is_hub(variant):
        cmd = [PY, os.path.join(HERE, "hub_server.py"), "--port", str(port), "--n", str(n),
               "--feed-port", str(port + 10000), "--outbound-bytes", str(a.outbound_bytes),
               "--publish-via", a.publish_via]
        if variant.startswith("hub+"):   # a bench-only prototype (experiments.py)
            cmd += ["--experiment", variant[4:]]
        client = ["--path", "/ws", "--sub-msg", HUB_SUB_MSG, "--frame", "native"]
    else:
        cmd = [PY, os.path.join(HERE, "server.py"), "--variant", variant, "--port", str(port),
               "--n", str(n), "--feed-port", str(port + 10000)]
        client = ["--path", "/", "--frame", "raw"]
    if a.mode == "flood":
        cmd += ["--flood", "--duration", str(a.duration), "--burst", str(a.burst)]
    cmd += ["--size", str(size), "--feed-rcvbuf", str(a.feed_buf)]
    return cmd, client + ["--size", str(size)]


WARN = []
RECENT = {}   # name -> last lines read from that process (shown when it fails)


def bindable(port):
    import socket
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def next_ports(port):
    """The next port p after `port` such that p (WebSocket) and p + 10000 (feed) are free."""
    for _ in range(500):
        port += 1
        if bindable(port) and bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair found")


def reader(proc, q):
    for line in proc.stdout:
        q.put(line.rstrip("\n"))
    q.put(None)


def expect(q, prefix, timeout, name):
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{name}: no {prefix!r} within {timeout}s")
        try:
            line = q.get(timeout=left)
        except queue.Empty:
            continue
        if line is None:
            tail = " | ".join(RECENT.get(name, [])[-6:])
            raise RuntimeError(f"{name}: exited before {prefix!r}" + (f": {tail}" if tail else ""))
        RECENT.setdefault(name, []).append(line[:200])
        del RECENT[name][:-20]
        if line.startswith(prefix):
            return line
        if "Traceback" in line or "Exception in" in line:
            WARN.append(f"{name}: {line}")
            continue
        if line.startswith("ERROR"):
            more = [line]
            end = time.monotonic() + 1.0
            while time.monotonic() < end:
                try:
                    l2 = q.get(timeout=0.1)
                except queue.Empty:
                    continue
                if l2 is None:
                    break
                more.append(l2)
            raise RuntimeError(f"{name}: " + " | ".join(more[-6:]))


def proc_stat():
    rows = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu"):
                p = line.split()
                rows[p[0]] = list(map(int, p[1:9]))  # user nice system idle iowait irq softirq steal
    return rows


def busy(a, b):
    """Per-CPU % of wall time: busy total and its split (usr, sys, softirq+irq, steal)."""
    out = {}
    for k in b:
        d = [y - x for x, y in zip(a[k], b[k])]
        tot = sum(d)
        if not tot:
            continue
        f = lambda v: round(100.0 * v / tot, 1)
        out[k] = {"busy": f(tot - d[3] - d[4]), "usr": f(d[0] + d[1]), "sys": f(d[2]),
                  "si": f(d[5] + d[6]), "steal": f(d[7])}
    return out


CLK = os.sysconf("SC_CLK_TCK")


def foreign_snapshot(exclude):
    """CPU ticks of every user-space process on the machine that is not ours (other jobs sharing
    the box would distort the numbers; each run records how much CPU they took)."""
    snap = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        pid = int(d)
        if pid in exclude:
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        rest = st[st.rfind(")") + 2:].split()
        ppid = int(rest[1])
        if pid == 2 or ppid == 2:      # kernel threads (softirq work shows up in machine_busy)
            continue
        snap[pid] = int(rest[11]) + int(rest[12])
    return snap


def foreign_cpu_s(a, b):
    tot = 0
    for pid, t in b.items():
        tot += t - a.get(pid, 0)
    return tot / CLK


def wait_quiet(max_wait, exclude):
    """Wait until nothing else uses more than ~5% CPU (another benchmark on the same machine)."""
    t_end = time.monotonic() + max_wait
    waited = 0.0
    while True:
        a = foreign_snapshot(exclude)
        time.sleep(1.0)
        b = foreign_snapshot(exclude)
        if foreign_cpu_s(a, b) < 0.05 or time.monotonic() > t_end:
            return waited
        waited += 1.0


def pct(sorted_arr, p):
    if not sorted_arr:
        return None
    i = min(len(sorted_arr) - 1, int(round(p / 100.0 * (len(sorted_arr) - 1))))
    return sorted_arr[i]


def run_one(a, variant, n, rep, port):
    WARN.clear()
    RECENT.clear()
    tmp = os.path.join(a.tmpdir, f"{variant}_{n}_{rep}")
    os.makedirs(tmp, exist_ok=True)
    procs = []
    try:
        scmd, client_args = server_cmd(a, variant, n, port)
        if a.server_cmd:
            scmd = a.server_cmd.format(port=port, n=n, feed_port=port + 10000).split()
        if a.server_cpu >= 0:
            scmd = ["taskset", "-c", str(a.server_cpu)] + scmd
        if a.idle_only:
            scmd.append("--idle-only")
        sp = subprocess.Popen(scmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, bufsize=1)
        procs.append(sp)
        sq = queue.Queue()
        threading.Thread(target=reader, args=(sp, sq), daemon=True).start()
        expect(sq, "LISTENING", 30, "server")

        k = a.clients
        per = [n // k + (1 if i < n % k else 0) for i in range(k)]
        cpus = [c for c in a.client_cpus.split(",") if c != ""]
        cqs = []
        for i, m in enumerate(per):
            ccmd = [PY, os.path.join(HERE, "client.py"), "--port", str(port), "--n", str(m),
                    "--sample-every", str(a.sample_every), "--timeout", str(a.client_timeout),
                    "--lat-file", os.path.join(tmp, f"lat{i}.bin")] + client_args
            if a.deflate:
                ccmd.append("--deflate")
            if m > 20000 or a.src_ips:
                ccmd += ["--src-ip", f"127.0.0.{2 + i}"]
            if cpus:
                ccmd = ["taskset", "-c", cpus[i % len(cpus)]] + ccmd
            cp = subprocess.Popen(ccmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
            procs.append(cp)
            q = queue.Queue()
            threading.Thread(target=reader, args=(cp, q), daemon=True).start()
            cqs.append(q)
        for i, q in enumerate(cqs):
            expect(q, "CONNECTED", 240, f"client{i}")
        sub = expect(sq, "SUBSCRIBED", 60, "server").split()
        rss_before, rss_after = int(sub[2]), int(sub[3])
        if a.idle_only:
            sp.stdin.write("STOP\n")
            sp.stdin.flush()
            r = json.loads(expect(sq, "RESULT ", 30, "server")[7:])
            return {"variant": variant, "n": n, "rep": rep, "idle_only": True, "mode": "idle",
                    "rss_before_mb": rss_before / 2**20, "rss_after_mb": rss_after / 2**20,
                    "rss_per_conn_kb": (rss_after - rss_before) / n / 1024}
        fcmd = [PY, os.path.join(HERE, "feeder.py"), "--port", str(port + 10000), "--mode", a.mode,
                "--rate", str(a.rate), "--burst", str(a.burst), "--duration", str(a.duration),
                "--size", str(size_for(a, variant)), "--sndbuf", str(a.feed_buf)]
        if cpus:
            fcmd = ["taskset", "-c", cpus[-1]] + fcmd
        mine = {os.getpid()} | {p.pid for p in procs}
        fsnap0 = foreign_snapshot(mine)
        st0 = proc_stat()
        fq = None
        if a.mode == "rate":
            fp = subprocess.Popen(fcmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
            procs.append(fp)
            fq = queue.Queue()
            threading.Thread(target=reader, args=(fp, fq), daemon=True).start()
        expect(sq, "PUBLISH_START", 30, "server")
        pe = expect(sq, "PUBLISH_END", a.duration + a.drain_timeout, "server").split()
        sent = unsent = None
        if fq is not None:
            fd = expect(fq, "FEEDER_DONE", 30, "feeder").split()
            sent, unsent = int(fd[1]), int(fd[2])
        cres = []
        for i, q in enumerate(cqs):
            cres.append(json.loads(expect(q, "RESULT ", a.client_timeout + 30, f"client{i}")[7:]))
        st1 = proc_stat()
        mine |= {p.pid for p in procs}
        fsnap1 = foreign_snapshot(mine)
        sp.stdin.write("STOP\n")
        sp.stdin.flush()
        sres = json.loads(expect(sq, "RESULT ", 30, "server")[7:])
    finally:
        if procs and procs[0].stdin is not None and not procs[0].stdin.closed:
            try:   # after STOP (or on failure) let the server shut down and clean up by itself
                procs[0].stdin.write("STOP\n")
                procs[0].stdin.flush()
            except OSError:
                pass
        for p in procs[1:]:
            if p.poll() is None:
                p.terminate()
        try:
            procs[0].wait(20)
        except (subprocess.TimeoutExpired, IndexError):
            pass
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()

    lat = array.array("q")
    for i in range(len(per)):
        fn = os.path.join(tmp, f"lat{i}.bin")
        if os.path.exists(fn):
            with open(fn, "rb") as f:
                b = f.read()
            lat.frombytes(b)
            os.unlink(fn)
    lat = sorted(lat)
    frames = sum(c["frames"] for c in cres)
    expected = sres["published"] * n
    t0 = sres["t_start"]
    t_last = max(c["end_last"] or c["t_end"] for c in cres)
    wall = (t_last - t0) / 1e9
    scpu = sres["cpu_user"] + sres["cpu_sys"]
    ccpu = sum(c["cpu_user"] + c["cpu_sys"] for c in cres)
    fcpu = foreign_cpu_s({k: v for k, v in fsnap0.items() if k not in mine}, fsnap1)
    res = {
        "foreign_cpu_frac": round(fcpu / wall, 3) if wall > 0 else None,
        "warnings": len(WARN),
        "variant": variant, "n": n, "rep": rep, "mode": a.mode, "deflate": a.deflate, "rate": a.rate if a.mode == "rate" else None,
        "burst": a.burst, "offered_per_s": a.rate * a.burst * n if a.mode == "rate" else None,
        "duration": a.duration, "published": sres["published"], "frames": frames,
        "delivered_frac": frames / expected if expected else None,
        "feeder_sent": sent, "feeder_unsent": unsent,
        "offered_msgs": int(a.rate * a.duration) * a.burst if a.mode == "rate" else None,
        "delivered_of_offered": (frames / (int(a.rate * a.duration) * a.burst * n)
                                 if a.mode == "rate" else None),
        "wall_s": round(wall, 3), "pub_wall_s": round(sres["pub_wall_s"], 3),
        "deliv_per_s": round(frames / wall) if wall > 0 else None,
        "pub_per_s": round(sres["published"] / wall, 1) if wall > 0 else None,
        "server_cpu_s": round(scpu, 3), "server_sys_frac": round(sres["cpu_sys"] / scpu, 2) if scpu else None,
        "server_cpu_per_M": round(scpu / frames * 1e6, 2) if frames else None,
        "server_util": round(scpu / wall, 2) if wall > 0 else None,
        "client_cpu_s": round(ccpu, 3), "client_util": round(ccpu / wall, 2) if wall > 0 else None,
        "machine_busy": busy(st0, st1),
        "p50_ms": pct(lat, 50) / 1e6 if lat else None, "p99_ms": pct(lat, 99) / 1e6 if lat else None,
        "max_ms": lat[-1] / 1e6 if lat else None, "samples": len(lat),
        "gaps": sum(c["gaps"] for c in cres), "bad": sum(c["bad"] for c in cres),
        "timed_out": any(c["timed_out"] for c in cres), 
        "rss_per_conn_kb": round((rss_after - rss_before) / n / 1024, 2),
        "rss_after_mb": round(rss_after / 2**20, 1), "rss_end_mb": round(sres["rss_end"] / 2**20, 1),
        "msg_bytes": msg_len(size_for(a, variant)),
        "frame_bytes": sres.get("frame_bytes") or msg_len(size_for(a, variant)) + 4,
        "hub": sres.get("hub"), "gc": sres.get("gc"),
        "gc_tracked_objects": sres.get("gc_tracked_objects"),
        "client_replies": sum(c.get("replies", 0) for c in cres),
        "client_errors": sum(c.get("errors", 0) for c in cres),
        "first_error": next((c["first_error"] for c in cres if c.get("first_error")), None),
        "malformed": sum(c.get("malformed", 0) for c in cres),
        "warning_lines": WARN[:5],
    }
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", required=True)
    ap.add_argument("--n", default="1000")
    ap.add_argument("--mode", choices=["rate", "flood"], default="rate")
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--burst", type=int, default=1)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--size", type=int, default=300)
    ap.add_argument("--base-size", type=int, default=None,
                    help="message size for the baselines (e.g. 474 gives the hub's ~478 B frames)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--clients", type=int, default=1)
    ap.add_argument("--client-cpus", default="1")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--sample-every", type=int, default=10)
    ap.add_argument("--client-timeout", type=float, default=90.0)
    ap.add_argument("--server-cmd", default=None,
                    help="run your own server instead of server.py (rate mode), e.g. "
                         "'python my_hub.py --port {port} --feed-port {feed_port} --n {n}'")
    ap.add_argument("--src-ips", action="store_true")
    ap.add_argument("--deflate", action="store_true", help="clients offer permessage-deflate (browser default)")
    ap.add_argument("--idle-only", action="store_true")
    ap.add_argument("--port", type=int, default=18000)
    ap.add_argument("--outbound-bytes", type=int, default=1024 * 1024,
                    help="hub: server.outbound_buffer_bytes")
    ap.add_argument("--publish-via", choices=["sync", "await"], default="sync",
                    help="hub: broker.publish_now (memory broker) or await node.broker.publish")
    ap.add_argument("--phase", default=None, help="a label stored in every record of this invocation")
    ap.add_argument("--feed-buf", type=int, default=16384,
                    help="SO_SNDBUF of the feeder / SO_RCVBUF of the server's feed socket")
    ap.add_argument("--drain-timeout", type=float, default=120.0,
                    help="seconds after --duration to wait for the server's PUBLISH_END")
    ap.add_argument("--retries", type=int, default=0,
                    help="re-run a run that failed or whose foreign_cpu_frac > --max-foreign")
    ap.add_argument("--max-foreign", type=float, default=0.05)
    ap.add_argument("--quiet-wait", type=float, default=30.0,
                    help="max seconds to wait for other CPU users to go quiet before each run")
    ap.add_argument("--tmpdir", default=os.path.join(tempfile.gettempdir(), "fanout_bench"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "results", "fanout.jsonl"))
    a = ap.parse_args()
    os.makedirs(a.tmpdir, exist_ok=True)
    port = a.port
    variants = a.variants.split(",")
    ns = [int(x) for x in a.n.split(",")]
    for rep in range(a.repeats):          # interleave variants inside each repeat
        for n in ns:
            for v in variants:
                for attempt in range(a.retries + 1):
                    port = next_ports(port)
                    waited = wait_quiet(a.quiet_wait, {os.getpid()})
                    t = time.time()
                    try:
                        r = run_one(a, v, n, rep, port)
                    except Exception as e:  # keep going; record the failure
                        r = {"variant": v, "n": n, "rep": rep, "mode": a.mode, "error": repr(e)[:300]}
                    r["phase"] = a.phase
                    r["attempt"] = attempt
                    r["run_s"] = round(time.time() - t, 1)
                    r["time"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(t))
                    r["waited_quiet_s"] = waited
                    with open(a.out, "a") as f:
                        f.write(json.dumps(r) + "\n")
                    keys = ["variant", "n", "rep", "attempt", "deliv_per_s", "delivered_frac", "server_cpu_per_M",
                            "server_util", "client_util", "p50_ms", "p99_ms", "max_ms", "rss_per_conn_kb",
                            "foreign_cpu_frac", "error", "run_s", "waited_quiet_s"]
                    print(" ".join(f"{k}={r.get(k)}" for k in keys if k in r), flush=True)
                    time.sleep(1.0)
                    disturbed = (r.get("foreign_cpu_frac") or 0) > a.max_foreign
                    if "error" not in r and not disturbed:
                        break
                    # disturbed by other processes (or failed): measure this run again; every
                    # attempt stays in the JSONL, report.py uses the least disturbed one


if __name__ == "__main__":
    main()
