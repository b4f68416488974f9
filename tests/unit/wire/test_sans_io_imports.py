"""Every ``wire/`` module is sans-I/O: importing it alone loads no server, bus, store or
settings machinery (each checked in a fresh interpreter, so nothing else loaded it first)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import cryptowire.wire

FORBIDDEN = ("aiohttp", "redis", "pydantic", "sqlalchemy", "cryptowire.bus",
             "cryptowire.core.hub", "cryptowire.server", "cryptowire.store")
MODULES = sorted(f"cryptowire.wire.{m.name}" for m in pkgutil.iter_modules(
    cryptowire.wire.__path__))


def test_the_wire_package_has_its_dialects() -> None:
    for name in ("dialect", "native", "mudrex003", "services004", "swaps000", "rfq001",
                 "pg002", "frames"):
        assert f"cryptowire.wire.{name}" in MODULES


@pytest.mark.parametrize("module", MODULES)
def test_importing_a_wire_module_loads_no_io(module: str) -> None:
    code = (f"import sys, {module}\n"
            f"bad = [m for m in {FORBIDDEN!r} if m in sys.modules]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "", f"{module} loads {out.stdout.strip()}"
