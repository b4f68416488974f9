"""Adversarial figures of issue 10, measured on a hub subprocess of a given source tree.

    python bench/adversarial/run.py --target . [--only rfq_pairs,ws_pings]

Each scenario starts its own hub (``python -m cryptowire serve``, PYTHONPATH=<target>/src,
a private SQLite file; mirror_cpu a private Postgres database and NOTIFY channel), runs as
a client, stops the hub, and prints one JSON line of figures. Scenarios run one after the
other (never two hubs at once). Scales are set by ``ADV_*`` environment variables (see
README.md); ``ADV_EXTRA_SETTINGS`` (JSON ``{"section": {"field": value}}``) is merged into
every hub's config, for settings only a newer tree knows.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scenarios_mem  # noqa: E402
import scenarios_net  # noqa: E402

SCENARIOS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "rfq_pairs": scenarios_mem.rfq_pairs,
    "history_bytes": scenarios_mem.history_bytes,
    "app_churn": scenarios_mem.app_churn,
    "slow_readers": scenarios_mem.slow_readers,
    "silent_sockets": scenarios_net.silent_sockets,
    "slow_http": scenarios_net.slow_http,
    "ws_pings": scenarios_net.ws_pings,
    "deep_ping_log": scenarios_net.deep_ping_log,
    "mirror_cpu": scenarios_net.mirror_cpu,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", required=True, type=Path,
                        help="source tree whose src/ is served")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    args = parser.parse_args()
    target = args.target.resolve()
    if not (target / "src" / "cryptowire").is_dir():
        parser.error(f"{target} has no src/cryptowire")
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    failed = 0
    limit = int(os.environ.get("ADV_SCENARIO_TIMEOUT_S", "120"))

    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"scenario took more than {limit} s (ADV_SCENARIO_TIMEOUT_S)")

    signal.signal(signal.SIGALRM, expired)
    for name in names:
        t0 = time.monotonic()
        signal.alarm(limit)  # the hub is stopped by its context manager on the way out
        try:
            figures = SCENARIOS[name](target)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            figures = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            failed += 1
        finally:
            signal.alarm(0)
        line = {"scenario": name, "wall_s": round(time.monotonic() - t0, 1), **figures}
        print(json.dumps(line), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
