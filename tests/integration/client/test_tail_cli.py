"""``cryptowire tail --json`` run as a user runs it (a subprocess) against a real hub that is
restarted while it runs."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.integration.client.clienthub import RestartableHub

pytestmark = pytest.mark.integration

WAIT = 15.0  # subprocess start (imports) + reconnect, on a busy 2-core box


async def _line(stream: asyncio.StreamReader, timeout: float = WAIT) -> str:
    raw = await asyncio.wait_for(stream.readline(), timeout)
    assert raw, "the tail process ended"
    return raw.decode()


async def _json_until(stdout: asyncio.StreamReader, predicate: Any,
                      timeout: float = WAIT) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while not out or not predicate(out[-1]):
            out.append(json.loads(await _line(stdout)))
    return out


async def test_tail_json_survives_a_hub_restart(hub: RestartableHub, tmp_path: Path) -> None:
    key, _ = await hub.create_key("tail", ["read"])
    env = {**os.environ, "CRYPTOWIRE_API_KEY": key, "COLUMNS": "200"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cryptowire", "tail", "app:test", "--json",
        "--url", hub.ws_url, cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    try:
        async with asyncio.timeout(WAIT):
            while "subscribed" not in (line := await _line(proc.stderr)):
                assert "error" not in line and "not authorized" not in line, line
        for n in range(1, 4):
            await hub.publish("app:test", {"n": n, "price": "0.10"})
        before = await _json_until(proc.stdout, lambda m: m.get("data", {}).get("n") == 3)
        assert [m["offset"] for m in before] == [1, 2, 3]
        assert before[0] == {"channel": "app:test", "type": "update",
                             "epoch": before[0]["epoch"], "offset": 1,
                             "ts": before[0]["ts"], "source": "app",
                             "data": {"n": 1, "price": "0.10"}}

        await hub.restart()
        # The tail reconnects by itself; publish until an event of the new hub shows up.
        got: list[dict[str, Any]] = []

        async def publish_until_seen() -> None:
            n = 100
            while True:
                await hub.publish("app:test", {"n": n})
                n += 1
                await asyncio.sleep(0.1)

        publisher = asyncio.create_task(publish_until_seen())
        try:
            got = await _json_until(proc.stdout,
                                    lambda m: m.get("epoch") not in (None, before[0]["epoch"]))
        finally:
            publisher.cancel()
        gaps = [m for m in got if m.get("event") == "gap"]
        assert len(gaps) == 1 and gaps[0]["channel"] == "app:test"
        assert got.index(gaps[0]) < len(got) - 1
        assert got[-1]["data"]["n"] >= 100
        assert proc.returncode is None  # still running
    finally:
        if proc.returncode is None:
            proc.kill()
        await asyncio.wait_for(proc.wait(), WAIT)
    stderr = (await proc.stderr.read()).decode()
    assert "disconnected" in stderr and "reconnected" in stderr
    assert key not in stderr
