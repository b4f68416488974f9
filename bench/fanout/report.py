"""Summary table and target check for a fan-out comparison run (run_fanout.sh's JSONL).

Usage: python report.py RESULTS.jsonl [more.jsonl ...] [--markdown]

Every repeat counts, whatever it measured (unlike summarize.py, which drops runs that lost a
message): when bench.py re-measured a disturbed repeat (--retries), the attempt with the least
CPU taken by other processes is used. The table shows medians with [min-max] over the repeats,
the worst delivered fraction (of what was offered, in rate mode), and the largest share of a
CPU that other processes took during a run (`foreign max`; above ~0.05 the run was disturbed).
Repeats that failed in every attempt are listed separately.

Targets (benchmark targets from issue #2 item 7, not tests):
  T1  hub deliveries/s >= 80% of baseline (a) raw_batch, with bursts, at 1k and 10k clients
  T2  1k clients x 100 msg/s offered: hub p99 <= 25 ms and >= 99.9% of offered delivered
  T3  hub deliveries/s >= 25x baseline (b) seed003 at 10k clients
  T4  hub RSS per idle connection <= 15 KiB at 10k
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict

BASE_A = "raw_batch"
BASE_B = "seed003"


def phase_of(r: dict) -> str:
    if r.get("phase"):
        return r["phase"]
    if r.get("idle_only") or r.get("mode") == "idle":
        return "idle"
    if r.get("mode") == "flood":
        return f"flood b{r.get('burst', 1)}"
    return f"rate {int(r.get('rate') or 0)}x{r.get('burst', 1)}"


def med(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return statistics.median(xs)


def span(xs, nd=1, scale=1.0):
    xs = [x * scale for x in xs if x is not None]
    if not xs:
        return "-"
    f = "%%.%df" % nd
    m = statistics.median(xs)
    if len(xs) == 1:
        return f % m
    return f"{f % m} [{f % min(xs)}-{f % max(xs)}]"


def load(files):
    """Per (phase, N, variant, repeat) the attempt that finished and was least disturbed by
    other processes (bench.py --retries re-measures disturbed runs); the choice never looks at
    the measured figures. Returns (runs, failed repeats, number of attempts set aside)."""
    attempts = defaultdict(list)
    for i, fn in enumerate(files):
        with open(fn) as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                r = json.loads(line)
                if "variant" not in r:
                    continue
                r["_file"] = i
                attempts[(i, phase_of(r), r["n"], r["variant"], r.get("rep"))].append(r)
    runs, failed, set_aside = [], [], 0
    for rs in attempts.values():
        ok = [r for r in rs if "error" not in r]
        if not ok:
            failed.append(rs[-1])
            continue
        best = min(ok, key=lambda r: r.get("foreign_cpu_frac") or 0.0)
        runs.append(best)
        set_aside += len(rs) - 1
    return runs, failed, set_aside


def table(runs):
    groups = defaultdict(list)
    for r in runs:
        groups[(phase_of(r), r["n"], r["variant"])].append(r)
    order = {"idle": 0}
    hdr = ["phase", "N", "variant", "runs", "deliv/s (k)", "delivered min %", "srv CPU s/1M",
           "srv util", "client util", "p50 ms", "p99 ms", "max ms", "RSS KiB/conn",
           "frame B", "foreign max"]
    rows = []
    for key in sorted(groups, key=lambda k: (order.get(k[0], 1), k[0], k[1], k[2])):
        rs = groups[key]
        phase, n, v = key
        idle = phase == "idle"
        fr = [r.get("delivered_of_offered") if r.get("delivered_of_offered") is not None
              else r.get("delivered_frac") for r in rs]
        fr = [x for x in fr if x is not None]
        frame = next((r.get("frame_bytes") for r in rs if r.get("frame_bytes")), None)
        if frame is None and not idle and not v.startswith("hub"):
            frame = 364   # older records: baselines forward the 360 B message + 4 B header
        foreign = [r.get("foreign_cpu_frac") for r in rs if r.get("foreign_cpu_frac") is not None]
        rows.append([
            phase, n, v, len(rs),
            "-" if idle else span([r.get("deliv_per_s") for r in rs], 1, 1e-3),
            "-" if idle or not fr else "%.2f" % (100 * min(fr)),
            "-" if idle else span([r.get("server_cpu_per_M") for r in rs], 2),
            "-" if idle else span([r.get("server_util") for r in rs], 2),
            "-" if idle else span([r.get("client_util") for r in rs], 2),
            "-" if idle else span([r.get("p50_ms") for r in rs], 1),
            "-" if idle else span([r.get("p99_ms") for r in rs], 1),
            "-" if idle else span([r.get("max_ms") for r in rs], 1),
            span([r.get("rss_per_conn_kb") for r in rs], 1),
            "-" if frame is None else "%g" % round(frame),
            "-" if not foreign else "%.2f" % max(foreign),
        ])
    return hdr, rows


def by(runs, phase, n, variant):
    return [r for r in runs if phase_of(r) == phase and r["n"] == n and r["variant"] == variant]


def ratio_check(runs, phase, n, base, factor):
    """(median hub / median base, paired per-repeat ratios) for deliv_per_s."""
    hub = by(runs, phase, n, "hub")
    ref = by(runs, phase, n, base)
    mh = med([r.get("deliv_per_s") for r in hub])
    mb = med([r.get("deliv_per_s") for r in ref])
    if not mh or not mb:
        return None
    reps = {(r["_file"], r["rep"]): r["deliv_per_s"] for r in ref if r.get("deliv_per_s")}
    paired = [round(r["deliv_per_s"] / reps[(r["_file"], r["rep"])], 2) for r in hub
              if r.get("deliv_per_s") and (r["_file"], r["rep"]) in reps]
    ch = med([r.get("server_cpu_per_M") for r in hub])
    cb = med([r.get("server_cpu_per_M") for r in ref])
    return mh, mb, mh / mb, paired, ch, cb


def targets(runs):
    lines = []
    verdicts = {}
    phases = sorted({phase_of(r) for r in runs})
    burst_phases = [p for p in phases if p != "idle" and not p.endswith("x1") and
                    not p.endswith("b1")]
    # T1
    t1 = []
    for ph in burst_phases:
        for n in (1000, 10000):
            c = ratio_check(runs, ph, n, BASE_A, 0.8)
            if c is None:
                continue
            mh, mb, q, paired, ch, cb = c
            ok = q >= 0.8
            t1.append(ok)
            lines.append(f"T1 [{ph}, N={n}] hub {mh / 1e3:.1f}k/s vs {BASE_A} {mb / 1e3:.1f}k/s "
                         f"= {100 * q:.0f}% (per repeat: {', '.join(f'{100 * x:.0f}%' for x in paired)})"
                         f" -> {'met' if ok else 'NOT met'} (target >= 80%); server CPU per "
                         f"million deliveries {ch:.2f} s vs {cb:.2f} s")
    verdicts["T1"] = (all(t1) if t1 else None)
    # T2
    t2 = []
    for ph in phases:
        if not (ph.startswith("rate 100x1")):
            continue
        rs = by(runs, ph, 1000, "hub")
        if not rs:
            continue
        p99 = med([r.get("p99_ms") for r in rs])
        worst_p99 = max(r.get("p99_ms") or 0 for r in rs)
        dl = [r.get("delivered_of_offered") if r.get("delivered_of_offered") is not None
              else r.get("delivered_frac") for r in rs]
        dmin = min(x for x in dl if x is not None)
        ok_lat = p99 is not None and p99 <= 25.0
        ok_del = dmin >= 0.999
        t2.append(ok_lat and ok_del)
        base = by(runs, ph, 1000, BASE_A)
        bp99 = med([r.get("p99_ms") for r in base])
        lines.append(f"T2 [{ph}, N=1000] hub p99 {p99:.1f} ms (median of {len(rs)}; worst "
                     f"{worst_p99:.1f} ms), delivered >= {100 * dmin:.2f}% of offered -> "
                     f"p99 {'met' if ok_lat else 'NOT met'} (<= 25 ms), delivery "
                     f"{'met' if ok_del else 'NOT met'} (>= 99.9%)"
                     + (f"; {BASE_A} p99 {bp99:.1f} ms in the same run" if bp99 else ""))
    verdicts["T2"] = (all(t2) if t2 else None)
    # T3
    t3 = []
    for ph in burst_phases:
        c = ratio_check(runs, ph, 10000, BASE_B, 25)
        if c is None:
            continue
        mh, mb, q, paired, ch, cb = c
        ok = q >= 25
        t3.append(ok)
        lines.append(f"T3 [{ph}, N=10000] hub {mh / 1e3:.1f}k/s vs {BASE_B} {mb / 1e3:.1f}k/s "
                     f"= {q:.1f}x (per repeat: {', '.join(f'{x:.1f}x' for x in paired)}) -> "
                     f"{'met' if ok else 'NOT met'} (target >= 25x)")
    verdicts["T3"] = (all(t3) if t3 else None)
    # T4
    rs = by(runs, "idle", 10000, "hub")
    if rs:
        kb = med([r.get("rss_per_conn_kb") for r in rs])
        ok = kb <= 15.0
        base = {v: med([r.get("rss_per_conn_kb") for r in by(runs, "idle", 10000, v)])
                for v in (BASE_A, BASE_B)}
        extra = ", ".join(f"{v} {k:.1f} KiB" for v, k in base.items() if k is not None)
        lines.append(f"T4 [idle, N=10000] hub {kb:.1f} KiB per idle connection "
                     f"(runs: {', '.join('%.1f' % r['rss_per_conn_kb'] for r in rs)}) -> "
                     f"{'met' if ok else 'NOT met'} (target <= 15 KiB)"
                     + (f"; {extra}" if extra else ""))
        verdicts["T4"] = ok
    else:
        verdicts["T4"] = None
    return lines, verdicts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--markdown", action="store_true")
    a = ap.parse_args()
    runs, failed, set_aside = load(a.files)
    hdr, rows = table(runs)
    if a.markdown:
        print("| " + " | ".join(hdr) + " |")
        print("|" + "---|" * len(hdr))
        for r in rows:
            print("| " + " | ".join(str(x) for x in r) + " |")
    else:
        w = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(hdr)]
        print("  ".join(str(h).ljust(w[i]) for i, h in enumerate(hdr)))
        for r in rows:
            print("  ".join(str(x).ljust(w[i]) for i, x in enumerate(r)))
    if set_aside:
        print()
        print(f"({set_aside} disturbed or failed attempt(s) were re-measured and set aside)")
    if failed:
        print()
        for r in failed:
            print(f"FAILED {phase_of(r)} N={r['n']} {r['variant']} rep {r.get('rep')}: "
                  f"{r['error']}")
    lines, verdicts = targets(runs)
    print()
    for line in lines:
        print(("- " if a.markdown else "") + line)
    print()
    print("targets: " + ", ".join(
        f"{k} {'met' if v else ('NOT met' if v is not None else 'not measured')}"
        for k, v in verdicts.items()))


if __name__ == "__main__":
    main()
