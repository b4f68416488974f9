"""Exchange latency benchmark: Bybit replay peer -> cryptowire hub -> 1k WebSocket clients.

Three processes: the replay peer (peer.py), the real hub (``python -m cryptowire serve`` with
Bybit pointed at the peer, ``demo.mode = "off"``) and the clients (client.py). The hub is
pinned to ``--hub-cpu``, peer and clients share ``--client-cpu``. Latency is peer send ->
client receive of each ticker frame or book delta (the peer stamps its send time into fields
the hub passes through unchanged; see peer.py and books.py), which bounds "hub received the
upstream frame -> client received it" from above (it adds one loopback hop and the peer's own
send queue).

``--kind ticker,book`` and ``--interval-ms 0,250`` take lists: each combination is a run of
its own (fresh peer, hub and clients), interleaved within each repeat and rate, so the rows
being compared were measured minutes apart on the same machine.

Sequence: start peer and hub, connect and subscribe every client, ``GO`` to the peer, wait
``--warmup`` s, measure for ``--duration`` s, then stop everything. One JSON line per run is
appended to ``--out`` and a summary is printed.

    .venv/bin/python bench/latency/run.py --clients 1000 --symbols 20 --rate 0 \
        --duration 10 --out bench/latency/results/latency.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PY = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Proc:
    """A child process whose stdout lines are read by a thread."""

    def __init__(self, name: str, cmd: list[str], cpu: int | None, **kwargs: Any) -> None:
        self.name = name
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, bufsize=1, **kwargs)
        if cpu is not None:
            os.sched_setaffinity(self.p.pid, {cpu})
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.ps = psutil.Process(self.p.pid)

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            self.log.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if line is None:
                raise RuntimeError(f"{self.name} exited:\n" + "\n".join(self.log[-30:]))
            if line.startswith(prefix):
                return line
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: no {prefix!r} in {timeout} s:\n"
                                   + "\n".join(self.log[-30:]))

    def send(self, line: str) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def hub_config(directory: Path, hub_port: int, ports: dict[str, int],
               venues: str | None = None) -> Path:
    """The hub's settings: Bybit (and, for bbo, Binance and OKX) pointed at the peers,
    ``bbo.venues`` = ``venues`` if given, nothing else running."""
    peer_port = ports["bybit"]
    extra = ""
    if "binance" in ports:
        b = f"ws://127.0.0.1:{ports['binance']}"
        extra += f"""[binance]
futures_public_url = "{b}/public/stream"
futures_market_url = "{b}/market/stream"
futures_rest_url = "http://127.0.0.1:{ports['binance']}"
spot_url = "{b}/stream"
spot_rest_url = "http://127.0.0.1:{ports['binance']}"
"""
    if "okx" in ports:
        o = f"ws://127.0.0.1:{ports['okx']}"
        extra += f"""[okx]
public_url = "{o}/ws/v5/public"
business_url = "{o}/ws/v5/business"
rest_url = "http://127.0.0.1:{ports['okx']}"
"""
    if venues:
        extra += "[bbo]\nvenues = [" + ", ".join(f'"{v}"' for v in venues.split(",")) + "]\n"
    path = directory / "cryptowire.toml"
    path.write_text(f"""log_level = "WARNING"
[server]
host = "127.0.0.1"
port = {hub_port}
max_connections = 100000
max_connections_per_key = 100000
[store]
url = "sqlite+aiosqlite:///{directory / 'bench.db'}"
[demo]
mode = "off"
[bybit]
linear_url = "ws://127.0.0.1:{peer_port}/v5/public/linear"
spot_url = "ws://127.0.0.1:{peer_port}/v5/public/spot"
rest_url = "http://127.0.0.1:{peer_port}"
[services]
enabled = false
[evm]
enabled = false
""" + extra)
    return path


def run(a: argparse.Namespace) -> dict[str, Any]:
    procs: list[Proc] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "PYTHONPATH": str(a.src.resolve())}
            peer = start_peer(a, env)
            procs.append(peer)
            ports = peer_ports(peer.expect("LISTENING", 30))
            hub_port = free_port()
            config = hub_config(Path(tmp), hub_port, ports,
                                a.venues if a.kind == "bbo" else None)
            hub = Proc("hub", [PY, "-m", "cryptowire", "serve", "--config", str(config)],
                       a.hub_cpu, cwd=tmp, env=env)
            procs.append(hub)
            deadline = time.monotonic() + 60
            while True:
                try:
                    if get_json(f"http://127.0.0.1:{hub_port}/ready")["ready"]:
                        break
                except OSError:
                    pass
                if hub.p.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("hub did not start:\n" + "\n".join(hub.log[-30:]))
                time.sleep(0.1)
            client = Proc("client", [PY, str(HERE / "client.py"), "--port", str(hub_port),
                                     "--clients", str(a.clients), "--symbols", str(a.symbols),
                                     "--per-client", str(a.per_client),
                                     "--sample-every", str(a.sample_every),
                                     "--kind", a.kind, "--depth", str(a.depth),
                                     "--interval-ms", str(a.interval_ms)],
                          a.client_cpu, cwd=HERE)
            procs.append(client)
            client.expect("SUBSCRIBED", a.connect_timeout)
            peer.send("GO")
            peer.expect("GOING", 10)
            time.sleep(a.warmup)
            before = get_json(f"http://127.0.0.1:{hub_port}/stats")
            cpu0 = {p.name: p.cpu() for p in procs}
            sys0 = psutil.cpu_times()
            wall0 = time.monotonic()
            client.send("MEASURE")
            time.sleep(a.duration)
            wall = time.monotonic() - wall0
            cpu = {p.name: round((p.cpu() - cpu0[p.name]) / wall, 3) for p in procs}
            sys1 = psutil.cpu_times()
            after = get_json(f"http://127.0.0.1:{hub_port}/stats")
            client.send("STOP")
            result = json.loads(client.expect("RESULT", 60).split(" ", 1)[1])
            peer.send("STOP")
            peer_result = json.loads(peer.expect("RESULT", 30).split(" ", 1)[1])
            busy = sum((getattr(sys1, f) - getattr(sys0, f))
                       for f in ("user", "system", "nice", "irq", "softirq", "steal"))
            ours = sum(cpu[name] * wall for name in cpu)  # CPU seconds of our processes
            bybit0, bybit1 = before["sources"]["bybit"], after["sources"]["bybit"]
            upstream = {name: round((src["messages"] - before["sources"][name]["messages"])
                                    / wall, 1)
                        for name, src in after["sources"].items() if name in before["sources"]}
            return {
                "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "kind": a.kind, "channel": channel_of(a), "interval_ms": a.interval_ms,
                "book_stamp": a.book_stamp if a.kind == "book" else None,
                "rate_per_topic": bbo_rates(a) if a.kind == "bbo" else a.rate or "full",
                "venues": a.venues if a.kind == "bbo" else None, "clients": a.clients,
                "symbols": a.symbols, "per_client": a.per_client,
                "latency": {k: result[k] for k in result
                            if k.endswith("_ms") and k != "interval_ms" or k == "samples"},
                "bbo": result.get("bbo"),
                "client": {k: result[k] for k in (
                    "frames_received", "frames_per_s", "bytes_received", "bytes_per_s",
                    "types", "gaps", "offset_skips", "offsets_skipped", "offset_back", "lost",
                    "close_codes", "errors", "rejected", "sampled_clients", "window_s")},
                "per_client_s": per_client_second(result, cpu["hub"], a.clients),
                "hub": {
                    "upstream_frames_per_s": round(
                        (bybit1["messages"] - bybit0["messages"]) / wall, 1),
                    "source_messages_per_s": upstream,
                    "messages_out_per_s": round(
                        (after["messages_out"] - before["messages_out"]) / wall, 1),
                    "bytes_out_per_s": round(
                        (after["bytes_out"] - before["bytes_out"]) / wall, 1),
                    "cpu_us_per_delivery": round(
                        cpu["hub"] * wall * 1e6
                        / (after["messages_out"] - before["messages_out"]), 2)
                    if after["messages_out"] > before["messages_out"] else None,
                    "slow_consumer_closes": after["slow_consumer_closes"],
                    "connections": after["connections"],
                    "bybit_errors": bybit1["errors"], "bybit_reconnects": bybit1["reconnects"],
                },
                "peer": peer_result,
                "cpu_util": cpu,
                "foreign_cpu_frac": round(max(0.0, busy - ours) / (wall * psutil.cpu_count()),
                                          3),
                "machine": {"cpus": psutil.cpu_count(), "model": cpu_model(),
                            "python": platform.python_version(),
                            "kernel": platform.release(),
                            "loadavg_before": os.getloadavg()},
                "window_s": round(wall, 2),
                "src": str(a.src), "commit": commit_of(a.src),
            }
    finally:
        for p in reversed(procs):
            p.stop()


def commit_of(src: Path) -> str | None:
    """The commit of the tree the hub ran (``+dirty`` when it had uncommitted changes)."""
    try:
        head = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "."],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def channel_of(a: argparse.Namespace) -> str:
    if a.kind == "bbo":
        return "bbo:<SYMBOL>"
    return f"book:{a.depth}:<SYMBOL>" if a.kind == "book" else "ticker:<SYMBOL>"


def bbo_rates(a: argparse.Namespace) -> dict[str, float]:
    """Frames/s per symbol each bbo peer sends (of the venues in ``--venues``)."""
    rates = {"bybit": a.bybit_rate, "binance": a.binance_rate, "okx": a.okx_rate}
    names = {"linear": "bybit", "bybit": "bybit", "binance": "binance", "okx": "okx"}
    return {names[v]: rates[names[v]] for v in a.venues.split(",")}


def start_peer(a: argparse.Namespace, env: dict[str, str]) -> Proc:
    """peer.py (ticker, book) or bbo_peer.py (bbo: Bybit, Binance and OKX peers)."""
    if a.kind == "bbo":
        cmd = [PY, str(HERE / "bbo_peer.py"), "--symbols", str(a.symbols),
               "--bybit-rate", str(a.bybit_rate), "--binance-rate", str(a.binance_rate),
               "--okx-rate", str(a.okx_rate)]
    else:
        cmd = [PY, str(HERE / "peer.py"), "--symbols", str(a.symbols), "--rate", str(a.rate),
               "--book-stamp", a.book_stamp]
    return Proc("peer", cmd, a.client_cpu, cwd=ROOT, env=env)


def peer_ports(line: str) -> dict[str, int]:
    """``LISTENING <port>`` (peer.py) or ``LISTENING bybit=<port> binance=..`` (bbo_peer.py)."""
    words = line.split()[1:]
    if len(words) == 1 and "=" not in words[0]:
        return {"bybit": int(words[0])}
    return {k: int(v) for k, v in (w.split("=") for w in words)}


def per_client_second(result: dict[str, Any], hub_cpu: float, clients: int) -> dict[str, Any]:
    """What one client costs and gets per second of the window: hub CPU (us), bytes and
    frames received; and hub CPU per frame the clients received (the hub's ``messages_out``
    does not count conflated frames)."""
    window = result["window_s"] or 1.0
    frames = result["frames_received"]
    return {"hub_cpu_us": round(hub_cpu * 1e6 / clients, 2),
            "bytes": round(result["bytes_received"] / clients / window, 1),
            "frames": round(frames / clients / window, 2),
            "hub_cpu_us_per_frame": round(hub_cpu * window * 1e6 / frames, 2) if frames
            else None}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--per-client", type=int, default=1,
                        help="channels per client (connection i takes symbols i..)")
    parser.add_argument("--kind", default="ticker",
                        help="ticker, book, bbo, or a comma list run in turn (ticker,book)")
    parser.add_argument("--depth", type=int, default=50, help="book depth (book:<depth>:..)")
    parser.add_argument("--venues", default="linear,binance,okx",
                        help="bbo: bbo.venues of the hub (linear = Bybit); sets separated by "
                             "';' run in turn (linear,binance,okx;linear)")
    parser.add_argument("--bybit-rate", type=float, default=100.0,
                        help="bbo: orderbook.1 frames/s per symbol (Bybit: every 10 ms)")
    parser.add_argument("--binance-rate", type=float, default=10.0,
                        help="bbo: depth@100ms events/s per symbol")
    parser.add_argument("--okx-rate", type=float, default=10.0,
                        help="bbo: books updates/s per symbol (OKX: every 100 ms)")
    parser.add_argument("--interval-ms", default="0",
                        help="interval_ms in the subscribe request, 0 = none (unconflated); "
                             "a comma list runs each in turn (0,250)")
    parser.add_argument("--book-stamp", choices=("size", "none"), default="size",
                        help="stamp book deltas in ns in one level's size (books.py); none: "
                             "only ts (ms), the frames as the fixture has them")
    parser.add_argument("--connect-timeout", type=float, default=300.0)
    parser.add_argument("--src", type=Path, default=ROOT / "src",
                        help="the cryptowire source tree the hub runs (default: this checkout)")
    parser.add_argument("--rate", default="0",
                        help="peer frames/s per topic, 0 = the peer's full speed; a comma "
                             "list runs each in turn (e.g. 10,100,0)")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--sample-every", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--hub-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "latency.jsonl")
    a = parser.parse_args()
    rates = [float(r) for r in str(a.rate).split(",")]
    kinds = str(a.kind).split(",")
    intervals = [int(i) for i in str(a.interval_ms).split(",")]
    assert all(k in ("ticker", "book", "bbo") for k in kinds), kinds
    venue_sets = str(a.venues).split(";")
    for _, rate, kind, interval, venues in [
            (i, r, k, n, v) for i in range(a.repeats) for r in rates for k in kinds
            for n in intervals for v in (venue_sets if k == "bbo" else venue_sets[:1])]:
        a.rate, a.kind, a.interval_ms, a.venues = rate, kind, interval, venues
        row = run(a)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        with a.out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        report(row)


def report(row: dict[str, Any]) -> None:
    lat, hub, cl = row["latency"], row["hub"], row["client"]
    print(f"{row['channel']} interval_ms={row['interval_ms']} rate={row['rate_per_topic']} "
          f"clients={row['clients']} symbols={row['symbols']}: p50 {lat.get('p50_ms')} ms, "
          f"p99 {lat.get('p99_ms')} ms, max {lat.get('max_ms')} ms over {lat.get('samples')} "
          f"samples; upstream {hub['upstream_frames_per_s']} frames/s, "
          f"{hub['messages_out_per_s']} deliveries/s, {hub['cpu_us_per_delivery']} us hub CPU "
          f"per delivery; per client-s {row['per_client_s']}; offset skips "
          f"{cl['offset_skips']} back {cl['offset_back']}, gaps {cl['gaps']}, slow closes "
          f"{hub['slow_consumer_closes']}, cpu {row['cpu_util']}, foreign "
          f"{row['foreign_cpu_frac']}", flush=True)
    if row.get("bbo"):
        print(f"  venues={row['venues']} sources/s {hub.get('source_messages_per_s')}; "
              f"bbo {row['bbo']}; peer {row['peer']}", flush=True)


if __name__ == "__main__":
    main()
