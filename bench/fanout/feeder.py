"""Upstream feeder: sends newline-delimited ~360 B JSON messages to the server's feed port.

rate mode: --rate ticks/s, --burst messages per tick (sent in one write), for --duration seconds.
  When the server pushes back (TCP), sends block and the overdue ticks are sent back to back as
  soon as it reads again, as an exchange feed would; but nothing is sent after --duration: the
  ticks left are reported as `unsent` (offered but never sent), which keeps every run bounded in
  time even for a server far slower than the offered rate.
flood mode: as fast as the server reads (TCP backpressure), for --duration seconds.
Each message carries ts = time.monotonic_ns() taken just before it is written, so the measured
latency is upstream-send -> client-receive and includes any queueing inside the server.
--sndbuf keeps the socket's send buffer small so little data is in flight at the deadline.
Ends with an END message (seq 9999999999) and prints FEEDER_DONE <sent> <unsent>.

Adapted from ../shared/bench/fanout/feeder.py (deadline, --sndbuf, unsent count).
"""
import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import END_SEQ, make_message  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--mode", choices=["rate", "flood"], default="rate")
ap.add_argument("--rate", type=float, default=100.0)
ap.add_argument("--burst", type=int, default=1)
ap.add_argument("--duration", type=float, default=5.0)
ap.add_argument("--size", type=int, default=300)
ap.add_argument("--sndbuf", type=int, default=16384, help="SO_SNDBUF (0: kernel default)")
a = ap.parse_args()

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
if a.sndbuf:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, a.sndbuf)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.connect(("127.0.0.1", a.port))
mono = time.monotonic_ns
seq = 0
unsent = 0
t0 = mono()
end = t0 + int(a.duration * 1e9)
if a.mode == "rate":
    interval = 1e9 / a.rate
    ticks = int(a.rate * a.duration)
    for i in range(ticks):
        sched = t0 + int(i * interval)
        now = mono()
        if now >= end:
            unsent = (ticks - i) * a.burst
            break
        if sched > now:
            time.sleep((sched - now) / 1e9)
        parts = []
        for _ in range(a.burst):
            parts.append(make_message(seq, mono(), a.size).encode() + b"\n")
            seq += 1
        s.sendall(b"".join(parts))
else:
    while mono() < end:
        parts = []
        for _ in range(a.burst):
            parts.append(make_message(seq, mono(), a.size).encode() + b"\n")
            seq += 1
        s.sendall(b"".join(parts))
s.sendall(make_message(END_SEQ, mono(), a.size).encode() + b"\n")
print("FEEDER_DONE", seq, unsent, flush=True)
s.close()
