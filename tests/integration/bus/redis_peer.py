"""Redis for tests: the shared one (unique key prefix per test, cleaned up), or a private
``redis-server`` that a test may stop and start again (TESTING.md, "Redis and PostgreSQL").

Under ``CI=true`` an unreachable Redis fails the test instead of skipping it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def shared_redis_url() -> str:
    return os.environ.get("CRYPTOWIRE_TEST_REDIS_URL", DEFAULT_REDIS_URL)


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def require_redis(url: str) -> None:
    client = SyncRedis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "not there"
        unavailable(f"Redis unreachable at {url}: {exc.__class__.__name__}: {exc}")
    finally:
        client.close()


def new_prefix() -> str:
    return f"cwtest-{secrets.token_hex(4)}"


def drop_prefix(url: str, prefix: str) -> None:
    """Delete the keys this test created (never FLUSHDB: the Redis is shared)."""
    client = SyncRedis.from_url(url, socket_connect_timeout=2)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
        for i in range(0, len(keys), 500):
            client.unlink(*keys[i:i + 500])
    except Exception:  # noqa: BLE001 - best effort (a private Redis may be gone already)
        pass
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """A ``redis-server`` of this test only, on a fixed port, without persistence."""

    def __init__(self, workdir: Path) -> None:
        self.binary = shutil.which("redis-server")
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        if self.binary is None:
            unavailable("redis-server is not installed")
        assert self.binary is not None
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            for _ in range(100):
                try:
                    await client.ping()
                    return
                except Exception:  # noqa: BLE001
                    await asyncio.sleep(0.05)
        finally:
            await client.aclose()
        raise RuntimeError("private redis-server did not answer PING")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None
