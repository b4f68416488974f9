"""A hub subprocess served from a given source tree, and what is measured on it.

The hub runs ``python -m cryptowire serve --config <tmp>/cryptowire.toml`` with
``PYTHONPATH=<tree>/src``; its stdout and stderr go to ``<tmp>/hub.log`` (the log size is one
figure). Only settings the tree under test knows are written: each scenario passes the
sections it needs; ``ADV_EXTRA_SETTINGS`` (JSON ``{"section": {"field": value}}``) is merged
into every hub's config, for settings only a newer tree knows.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
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

MB = 1024 * 1024


def tcp_mem_mb() -> float | None:
    """Kernel memory of all TCP sockets of the machine (``/proc/net/sockstat``, pages):
    machine-wide, so only indicative on a shared box."""
    try:
        for line in Path("/proc/net/sockstat").read_text().splitlines():
            if line.startswith("TCP:"):
                fields = line.split()
                return round(int(fields[fields.index("mem") + 1]) * 4096 / MB, 1)
    except (OSError, ValueError):
        pass
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def toml(sections: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, fields in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in fields.items()]
        lines.append("")
    return "\n".join(lines)


def merge(base: dict[str, dict[str, Any]], *more: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out = {k: dict(v) for k, v in base.items()}
    for extra in more:
        for section, fields in extra.items():
            out.setdefault(section, {}).update(fields)
    return out


class Hub:
    """One hub process of the tree at ``target``; use as a context manager."""

    def __init__(self, target: Path, sections: dict[str, dict[str, Any]], *,
                 nofile: int | None = None, store_url: str | None = None,
                 keys: dict[str, list[str]] | None = None) -> None:
        self.target = target
        self.tmp = Path(tempfile.mkdtemp(prefix="cw-adv-"))
        self.port = free_port()
        self.config = self.tmp / "cryptowire.toml"
        self.log_path = self.tmp / "hub.log"
        store = store_url or f"sqlite+aiosqlite:///{self.tmp / 'hub.db'}"
        base: dict[str, dict[str, Any]] = {
            "server": {"host": "127.0.0.1", "port": self.port},
            "store": {"url": store},
            "bybit": {"enabled": False},
            "demo": {"mode": "on"},
        }
        extra = json.loads(os.environ.get("ADV_EXTRA_SETTINGS") or "{}")
        self.sections = merge(base, sections, extra)
        self.nofile = nofile
        self.keys_wanted = keys or {}
        self.keys: dict[str, str] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None
        self._peak = 0
        self._sampling = False
        self._sampler: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOWIRE_")}
        env["PYTHONPATH"] = str(self.target / "src")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _cli(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "cryptowire", *args, "--config",
                              str(self.config)], env=self._env(), cwd=self.tmp,
                             capture_output=True, text=True, timeout=60, check=True)
        return out.stdout

    def __enter__(self) -> Hub:
        self.config.write_text(toml(self.sections))
        for name, scopes in self.keys_wanted.items():
            args = ["keys", "create", name]
            for s in scopes:
                args += ["--scope", s]
            self.keys[name] = self._cli(*args).strip().splitlines()[-1].strip()
        limit = self.nofile

        def preexec() -> None:
            os.setsid()
            if limit is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cryptowire", "serve", "--config", str(self.config)],
            env=self._env(), cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=preexec)
        log.close()
        self.ps = psutil.Process(self.proc.pid)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/ready", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError(f"hub not ready: {self.log_path.read_text()[-2000:]}")
        self._sampling = True
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sampling = False
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self._sampler is not None:
            self._sampler.join(2)
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- measures ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _sample(self) -> None:
        while self._sampling:
            with contextlib.suppress(psutil.Error):
                assert self.ps is not None
                self._peak = max(self._peak, self.ps.memory_info().rss)
            time.sleep(0.1)

    def reset_peak(self) -> None:
        self._peak = self.rss()

    def peak_mb(self) -> float:
        return round(max(self._peak, self.rss()) / MB, 1)

    def rss(self) -> int:
        assert self.ps is not None
        return int(self.ps.memory_info().rss)

    def rss_mb(self) -> float:
        return round(self.rss() / MB, 1)

    def cpu_s(self) -> float:
        assert self.ps is not None
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def established(self) -> int:
        """TCP connections of the hub on its port in state ESTABLISHED."""
        assert self.ps is not None
        return sum(1 for c in self.ps.net_connections(kind="tcp")
                   if c.laddr and c.laddr.port == self.port
                   and c.status == psutil.CONN_ESTABLISHED)

    def fds(self) -> int:
        assert self.ps is not None
        return int(self.ps.num_fds())

    def log_bytes(self) -> int:
        return self.log_path.stat().st_size

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")
