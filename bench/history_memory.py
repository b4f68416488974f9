"""History memory of a running hub (issue #10 item 8): big messages under a TTL, channel churn.

Starts ``python -m cryptowire serve`` from a source tree (``--src``, default this checkout's
``src``) in a temporary directory (SQLite store, memory bus, no upstream, demo off), creates a
publish key with the CLI, and runs, each in a fresh hub process:

  ttl     history.ttl_s = 5: publish 150 events of 1 MB on one app: channel (one POST each),
          then read nothing for 8 s. Prints the hub's RSS before, after publishing, and after
          the wait, and the history bytes the hub reports (/stats ``history_bytes``, when
          the tree has it).
  churn   publish one small event to each of 101,000 fresh app: channels (batches of 1,000 per
          POST), timed; RSS before and after, channels with history, history bytes.

Run it once on the tree before a change and once after, on the same machine:

  .venv/bin/python bench/history_memory.py                       # this checkout
  .venv/bin/python bench/history_memory.py --src /tmp/old/src    # another tree (before)
  .venv/bin/python bench/history_memory.py --set max_channel_bytes=1073741824 ttl

Every process it starts is stopped by its PID; only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
MB = 1_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Hub:
    def __init__(self, src: str, history: dict[str, Any]) -> None:
        self.dir = tempfile.mkdtemp(prefix="cw-histmem-")
        self.port = free_port()
        self.config = os.path.join(self.dir, "cryptowire.toml")
        lines = [
            "[server]", f"port = {self.port}", "",
            "[store]", f'url = "sqlite+aiosqlite:///{self.dir}/cw.db"', "",
            "[demo]", 'mode = "off"', "", "[bybit]", "enabled = false", "",
            "[evm]", "enabled = false", "", "[history]",
            *(f"{k} = {json.dumps(v)}" for k, v in history.items()),
        ]
        with open(self.config, "w") as f:
            f.write("\n".join(lines) + "\n")
        self.env = {**os.environ, "PYTHONPATH": src}
        out = subprocess.run(
            [sys.executable, "-m", "cryptowire", "keys", "create", "bench", "-s", "publish",
             "-c", self.config], env=self.env, cwd=self.dir, capture_output=True, text=True,
            timeout=60, check=True).stdout
        self.key = next(w for w in out.split() if w.startswith("cw_"))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cryptowire", "serve", "-c", self.config],
            env=self.env, cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.get("/ready")
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("hub did not start") from None
                time.sleep(0.1)

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as r:
            return json.loads(r.read())

    def publish(self, body: Any) -> None:
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/v1/publish", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "X-API-Key": self.key})
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.status == 200

    def rss(self) -> float:
        return rss_mb(self.proc.pid)

    def history(self) -> str:
        stats = self.get("/stats")
        held = stats.get("history_bytes")
        channels = stats.get("bus", {}).get("channels_with_history")
        return (f"history {held / MB:.1f} MB" if held is not None else "history n/a") + \
            f", {channels} channels with history"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def ttl(src: str, extra: dict[str, Any]) -> None:
    hub = Hub(src, {"ttl_s": 5.0, **extra})
    try:
        base = hub.rss()
        pad = "x" * (MB - 40)
        for i in range(150):
            hub.publish({"channel": "app:big", "data": {"i": i, "pad": pad}})
        after = hub.rss()
        print(f"ttl: 150 x 1 MB published: RSS {base:.0f} -> {after:.0f} MB "
              f"(+{after - base:.0f}); {hub.history()}")
        time.sleep(8.0)
        later = hub.rss()
        print(f"ttl: 8 s later, nothing read: RSS {later:.0f} MB (+{later - base:.0f} over "
              f"the start); {hub.history()}")
    finally:
        hub.stop()


def churn(src: str, extra: dict[str, Any]) -> None:
    hub = Hub(src, extra)
    try:
        base = hub.rss()
        t0 = time.monotonic()
        for batch in range(101):
            hub.publish([{"channel": f"app:c{batch * 1000 + i}", "data": {"i": i}}
                         for i in range(1000)])
        took = time.monotonic() - t0
        after = hub.rss()
        print(f"churn: 101,000 fresh app: channels in {took:.1f} s: RSS {base:.0f} -> "
              f"{after:.0f} MB (+{after - base:.0f}); {hub.history()}")
    finally:
        hub.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--src", default=os.path.join(ROOT, "src"), help="source tree to run")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="extra [history] setting, e.g. max_channel_bytes=1073741824")
    ap.add_argument("scenarios", nargs="*", default=["ttl", "churn"])
    args = ap.parse_args()
    extra = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    print(f"src: {args.src} {extra or ''}")
    for name in args.scenarios:
        {"ttl": ttl, "churn": churn}[name](args.src, extra)


if __name__ == "__main__":
    main()
