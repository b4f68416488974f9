"""Summary table of a cross-node fan-out run (bench/cluster/run.py's JSONL).

Usage: python bench/cluster/report.py RESULTS.jsonl [more.jsonl ...] [--markdown]

Per (load, config): medians with [min-max] over the repeats. When run.py re-measured a run
(--retries: it failed, or other processes took > --max-foreign of a CPU), the attempt that
finished and was least disturbed is used; repeats that failed in every attempt are listed.

Columns: deliv/s (k) = data frames received by all clients / (first publish -> last END at a
client); deliv % = the worst run's frames / (offered messages x clients) in rate mode (messages
the feeder could not send in time count as lost), / (published x clients) in flood mode;
p50/p99/max = upstream send -> client receive (ms, sampled connections, all nodes pooled);
node CPU = each node's CPU (user+sys) as a share of one core over the run, node 0 first (the
node with the feed); srv s/1M = all nodes' CPU seconds per million deliveries; redis = the
Redis server's CPU share (INFO cpu; includes any other Redis client on the machine); client =
the client processes' CPU share (near 1.0 per client core: the clients limit the run);
closed = sessions the hubs closed as slow consumers (outbound buffer full), all repeats;
bus gaps/warn = gap notices the nodes got from the bus / WARNING+ERROR lines the bus logged
(0/0 expected; "Redis unavailable" warnings while clients subscribe mean the broker's
connection pool ran out, see README); foreign = most CPU other
processes took in a run (above ~0.05 the run was disturbed).
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict

CONFIG_ORDER = {"mem": 0, "redis": 1}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def span(xs, nd=1, scale=1.0) -> str:
    xs = [x * scale for x in xs if x is not None]
    if not xs:
        return "-"
    m = statistics.median(xs)
    if len(xs) == 1:
        return f"{m:.{nd}f}"
    return f"{m:.{nd}f} [{min(xs):.{nd}f}-{max(xs):.{nd}f}]"


def load(files):
    """``(chosen, failed)``: per (load, config, rep) the least disturbed finished attempt."""
    best, failed = {}, {}
    for fn in files:
        with open(fn) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                r = json.loads(line)
                if r.get("bench") != "cluster":
                    continue
                k = (r["load"], r["config"], r.get("rep", 0))
                if "error" in r:
                    failed.setdefault(k, r)
                    continue
                cur = best.get(k)
                if cur is None or (r.get("foreign_cpu_frac") or 0) < (
                        cur.get("foreign_cpu_frac") or 0):
                    best[k] = r
    for k in best:
        failed.pop(k, None)
    return list(best.values()), list(failed.values())


def config_key(cfg: str):
    bus, shape = cfg.split("-", 1)
    nodes = int(shape.split("x")[0])
    return (CONFIG_ORDER.get(bus, 9), nodes, cfg)


def load_key(ld: str):
    kind, rest = ld.split(" ", 1)
    try:
        rate, burst = rest.lstrip("x").split("x") if kind == "rate" else ("0", rest.lstrip("x"))
        return (kind != "rate", float(rate) * int(burst))
    except ValueError:
        return (True, 0.0)


def delivered_pct(r) -> float | None:
    v = r.get("delivered_of_offered") if r.get("mode") == "rate" else r.get("delivered_frac")
    return None if v is None else 100.0 * v


def node_cpu_cell(rows) -> str:
    per = [r.get("node_util") or [] for r in rows]
    width = max((len(p) for p in per), default=0)
    if not width:
        return "-"
    cols = [med([p[i] for p in per if i < len(p)]) for i in range(width)]
    return "+".join("-" if c is None else f"{c:.2f}" for c in cols)


HEADER = ["load", "config", "runs", "deliv/s (k)", "deliv %", "p50 ms", "p99 ms", "max ms",
          "node CPU (node0+..)", "srv s/1M", "redis", "client", "closed", "bus gaps/warn",
          "foreign"]


def table_rows(chosen):
    groups = defaultdict(list)
    for r in chosen:
        groups[(r["load"], r["config"])].append(r)
    out = []
    for (ld, cfg) in sorted(groups, key=lambda k: (load_key(k[0]), config_key(k[1]))):
        rs = groups[(ld, cfg)]
        dp = [delivered_pct(r) for r in rs]
        dp = [x for x in dp if x is not None]
        out.append([
            ld, cfg, str(len(rs)),
            span([r.get("deliv_per_s") for r in rs], 1, 1e-3),
            f"{min(dp):.2f}" if dp else "-",
            span([r.get("p50_ms") for r in rs]),
            span([r.get("p99_ms") for r in rs]),
            span([r.get("max_ms") for r in rs]),
            node_cpu_cell(rs),
            span([r.get("server_cpu_per_M") for r in rs], 2),
            span([r.get("redis_util") for r in rs], 2),
            span([r.get("client_util") for r in rs], 2),
            str(sum(r.get("slow_consumer_closes") or 0 for r in rs)),
            f"{sum(r.get('bus_gaps') or 0 for r in rs)}/"
            f"{sum(r.get('bus_warnings') or 0 for r in rs)}",
            f"{max((r.get('foreign_cpu_frac') or 0) for r in rs):.2f}",
        ])
    return out


NODE_HEADER = ["load", "config", "node", "role", "deliv/s (k)", "of published %", "p50 ms",
               "p99 ms", "max ms", "CPU", "CPU s/1M", "msgs/write"]


def node_rows(chosen):
    """Per node of every configuration (medians over the repeats): where the time goes."""
    groups = defaultdict(list)
    for r in chosen:
        for nd in r.get("per_node") or []:
            groups[(r["load"], r["config"], nd["node"])].append(nd)
    out = []
    for k in sorted(groups, key=lambda k: (load_key(k[0]), config_key(k[1]), k[2])):
        ns = groups[k]
        hubs = [nd.get("hub") or {} for nd in ns]
        mpw = [h["messages_out"] / h["writes"] for h in hubs if h.get("writes")]
        dfr = [nd.get("delivered_frac") for nd in ns if nd.get("delivered_frac") is not None]
        out.append([k[0], k[1], str(k[2]), ns[0].get("role") or "-",
                    span([nd.get("deliv_per_s") for nd in ns], 1, 1e-3),
                    f"{100 * min(dfr):.2f}" if dfr else "-",
                    span([nd.get("p50_ms") for nd in ns]), span([nd.get("p99_ms") for nd in ns]),
                    span([nd.get("max_ms") for nd in ns]), span([nd.get("util") for nd in ns], 2),
                    span([nd.get("cpu_per_M") for nd in ns], 2), span(mpw, 2)])
    return out


def fmt_table(header, rows, markdown: bool) -> list[str]:
    if markdown:
        return (["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
                + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    return (["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
            + ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows])


def comparisons(chosen) -> list[str]:
    """Per load: the 3-node cluster against 1 node on the same bus and on the memory bus."""
    by = defaultdict(list)
    for r in chosen:
        by[(r["load"], r["config"])].append(r)
    lines = []
    for ld in sorted({k[0] for k in by}, key=load_key):
        cfgs = sorted({k[1] for k in by if k[0] == ld}, key=config_key)
        multi = [c for c in cfgs if c.startswith("redis-") and config_key(c)[1] > 1]
        for c in multi:
            for ref in [x for x in cfgs if config_key(x)[1] == 1]:
                d1, d0 = (med([r.get("deliv_per_s") for r in by[(ld, c)]]),
                          med([r.get("deliv_per_s") for r in by[(ld, ref)]]))
                p1, p0 = (med([r.get("p99_ms") for r in by[(ld, c)]]),
                          med([r.get("p99_ms") for r in by[(ld, ref)]]))
                if d1 is None or d0 is None or not d0:
                    continue
                s = f"[{ld}] {c} vs {ref}: deliveries/s {d1 / 1e3:.1f}k vs {d0 / 1e3:.1f}k " \
                    f"({100 * d1 / d0:.0f}%)"
                if p1 is not None and p0 is not None:
                    s += f"; p99 {p1:.1f} ms vs {p0:.1f} ms ({p1 - p0:+.1f} ms)"
                lines.append(s)
    return lines


def render(data, markdown: bool = False, brief: bool = False) -> str:
    chosen, failed = data
    lines = fmt_table(HEADER, table_rows(chosen), markdown)
    comp = comparisons(chosen)
    if comp:
        lines += [""] + comp
    if not brief:
        lines += ["", "per node (node 0 has the feed; of published % = frames / (messages node 0"
                      " published x the node's clients); msgs/write = frames per"
                      " transport.write: how much the hub could coalesce):"]
        lines += fmt_table(NODE_HEADER, node_rows(chosen), markdown)
    for r in failed:
        lines.append(f"FAILED {r['load']} {r['config']} rep {r.get('rep')}: {r.get('error')}")
    return "\n".join(lines)


def one_line(r) -> str:
    """The progress line run.py prints after each run."""
    if "error" in r:
        return (f"{r.get('load')} {r.get('config')} rep={r.get('rep')} "
                f"attempt={r.get('attempt')} ERROR {r['error']} run_s={r.get('run_s')}"
                + "".join(f" ({n})" for n in r.get("notes") or []))
    dp = delivered_pct(r)
    return (f"{r['load']} {r['config']} rep={r['rep']} attempt={r.get('attempt')} "
            f"deliv/s={r['deliv_per_s']} deliv%={'-' if dp is None else f'{dp:.2f}'} "
            f"p50={r['p50_ms']} p99={r['p99_ms']} max={r['max_ms']} "
            f"node_util={r['node_util']} redis_util={r['redis_util']} "
            f"client_util={r['client_util']} bus_gaps={r['bus_gaps']} "
            f"bus_warnings={r.get('bus_warnings')} gaps={r['gaps']} "
            f"closed={r.get('slow_consumer_closes')} "
            f"unsent={r['feeder_unsent']} foreign={r['foreign_cpu_frac']} run_s={r.get('run_s')}")

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--brief", action="store_true", help="without the per-node table")
    a = ap.parse_args()
    print(render(load(a.files), a.markdown, a.brief))


if __name__ == "__main__":
    main()
