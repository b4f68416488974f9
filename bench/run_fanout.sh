#!/usr/bin/env bash
# The whole fan-out comparison in one command: cryptowire's hub against baseline (a) raw_batch
# (frame once, one coalesced transport.write per client per tick) and baseline (b) seed003
# (websockets, gather(wait_for(ws.send(m), 5)) per message), interleaved in the same run.
#
#   bench/run_fanout.sh     # ~7 min on a quiet 2-core box (more when other jobs force re-runs);
#                           # JSONL, machine info and summary in bench/results/
#
# Knobs (environment): VARIANTS (default hub,raw_batch,seed003), REPEATS (2), LAT_REPEATS (3),
# DURATION (5 s), QUIET_WAIT (10 s: max wait per run for other processes to go quiet),
# RETRIES (1: a run during which other processes took > 5% of a CPU is measured again),
# PY (default .venv/bin/python). The server runs on CPU 0, clients and feeder on CPU 1.
# Every phase is bounded in time (bench.py timeouts, `timeout` below); processes are stopped by
# the orchestrator by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
VARIANTS=${VARIANTS:-hub,raw_batch,seed003}
REPEATS=${REPEATS:-2}
LAT_REPEATS=${LAT_REPEATS:-3}
DURATION=${DURATION:-5}
QUIET_WAIT=${QUIET_WAIT:-10}
RETRIES=${RETRIES:-1}
STAMP=$(date +%Y%m%d-%H%M%S)
OUT=bench/results/fanout-$STAMP.jsonl
mkdir -p bench/results

# seed003 at 10k clients delivers ~1 message/s per client: in rate mode its in-flight backlog
# alone takes minutes to drain, so it is measured at 10k in flood mode only.
NO_B=$(echo "$VARIANTS" | tr ',' '\n' | grep -vx seed003 | paste -sd, -)

"$PY" - "$OUT" <<'EOF'
import json, os, platform, subprocess, sys
import aiohttp, orjson, uvloop, websockets
model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
def sh(*a):
    try:
        return subprocess.run(a, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return None
info = {"nproc": os.cpu_count(), "cpu_model": model, "kernel": platform.release(),
        "python": platform.python_version(), "aiohttp": aiohttp.__version__,
        "uvloop": uvloop.__version__, "websockets": websockets.__version__,
        "orjson": orjson.__version__, "nofile": __import__("resource").getrlimit(7)[0],
        "commit": sh("git", "rev-parse", "--short", "HEAD"),
        "src_uncommitted_files": len((sh("git", "status", "--porcelain", "--", "src") or "").splitlines()),
        "hot_path_sha1": {f: __import__("hashlib").sha1(open(f, "rb").read()).hexdigest()[:12]
                          for f in ("src/cryptowire/core/hub.py", "src/cryptowire/core/fanout.py",
                                    "src/cryptowire/core/session.py", "src/cryptowire/wire/native.py",
                                    "src/cryptowire/wire/frames.py", "src/cryptowire/server/connection.py",
                                    "src/cryptowire/server/ws_native.py", "src/cryptowire/bus/memory.py")
                          if os.path.exists(f)}}
out = sys.argv[1].replace(".jsonl", ".machine.json")
json.dump(info, open(out, "w"), indent=1)
print("machine:", json.dumps(info))
EOF

run() {  # run PHASE ARGS...: one bench.py invocation, bounded in time
    local phase=$1; shift
    echo "== $phase: $*"
    timeout 1200 "$PY" bench/fanout/bench.py --phase "$phase" --duration "$DURATION" \
        --quiet-wait "$QUIET_WAIT" --retries "$RETRIES" --max-foreign 0.05 --out "$OUT" "$@"
}

run "idle"        --variants "$VARIANTS" --n 10000 --idle-only --repeats "$REPEATS"
run "flood b5"    --variants "$VARIANTS" --n 1000,10000 --mode flood --burst 5 --repeats "$REPEATS"
run "rate 100x5"  --variants "$VARIANTS" --n 1000 --mode rate --rate 100 --burst 5 --repeats "$REPEATS"
run "rate 100x5"  --variants "$NO_B" --n 10000 --mode rate --rate 100 --burst 5 --repeats "$REPEATS"
run "rate 100x1"  --variants "$VARIANTS" --n 1000 --mode rate --rate 100 --burst 1 --repeats "$LAT_REPEATS"

echo
echo "results: $OUT"
"$PY" bench/fanout/report.py "$OUT" | tee "${OUT%.jsonl}.summary.txt"
