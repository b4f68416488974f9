"""The README as a new user reads it: the two commands first, words a user knows, and its
Python example run as written against a served hub, warning-free on the pinned websockets;
``make run`` narrating its cold start."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"


def fenced_blocks(text: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^ *```[a-z]*\n(.*?)^ *```", text, re.M | re.S)]


def test_first_code_block_is_make_run_and_make_test() -> None:
    first = fenced_blocks(README.read_text())[0]
    assert [line.split("#")[0].strip() for line in first.strip().splitlines()] == [
        "make run", "make test"]


def test_readme_speaks_to_users() -> None:
    text = README.read_text()
    prose = re.sub(r"\]\([^)]*\)", "]", text)  # link targets are not read
    for word in ("seed 0", "seed's", "build machine", "used to return", "fixture"):
        assert word not in prose.lower(), word
    assert "## Compatible clients" in text
    section = text.split("## Compatible clients")[1].split("\n## ")[0]
    for path in ("/ws`", 'server.envelope = "mudrex"', "/ws/master", "/swaps", "/rfq",
                 "/pg/<JWT>"):
        assert path in section, path
    assert "Python 3.11" in text and "chromium" in text and "haproxy" in text


def python_example() -> str:
    text = README.read_text()
    found = re.search(r"python - <<'EOF'\n(.*?)\n *EOF\n", text, re.S)
    assert found, "the README's Python example is gone"
    lines = found.group(1).splitlines()
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return "\n".join(line[indent:] for line in lines) + "\n"


async def test_python_example_runs_without_a_warning(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOWIRE_")}
    env.update(XDG_DATA_HOME=str(tmp_path), CRYPTOWIRE_BYBIT__ENABLED="false",
               CRYPTOWIRE_DEMO__INTERVAL_S="0.05")
    hub = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cryptowire", "serve", "--port", "0", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    client = None
    try:
        assert hub.stdout is not None
        line = (await asyncio.wait_for(hub.stdout.readline(), 60)).decode()
        port = line.split("http://127.0.0.1:")[1].split()[0]
        code = python_example().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-W", "error", "-", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert client.stdin is not None and client.stdout is not None
        client.stdin.write(code.encode())
        client.stdin.close()
        reply = await asyncio.wait_for(client.stdout.readline(), 30)
        assert b'"op":"subscribe","success":true' in reply, reply
        update = await asyncio.wait_for(client.stdout.readline(), 30)
        assert b'"channel":"ticker:BTCUSDT"' in update, update
        client.terminate()
        assert client.stderr is not None
        await client.wait()
        assert (await client.stderr.read()) == b""  # no warning of any kind
    finally:
        for proc in (client, hub):
            if proc is not None and proc.returncode is None:
                proc.kill()
                await proc.wait()


def test_make_run_says_what_it_does_on_a_cold_start(tmp_path: Path) -> None:
    """A dry run of ``make run`` from scratch: an announced step before each command, and pip
    not silenced (it prints what it collects)."""
    make = shutil.which("make")
    if make is None:
        pytest.fail("make is not installed")
    out = subprocess.run([make, "-n", "run", f"VENV={tmp_path / 'venv'}"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    lines = out.splitlines()
    steps = [line for line in lines if line.startswith("echo ")]
    assert len(steps) >= 4, out
    pip = [line for line in lines if "pip install" in line]
    assert len(pip) == 2 and not any(" -q" in line for line in pip), pip
    # every command is preceded by the step that announces it
    for command in (*pip, next(line for line in lines if "cryptowire serve" in line
                               and not line.startswith("echo"))):
        before = lines[:lines.index(command)]
        assert before and before[-1].startswith("echo "), (command, before[-1:])
