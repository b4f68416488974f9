"""The ``cryptowire`` command, run as a user runs it (a subprocess), on a temp SQLite store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "cryptowire", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=60, check=check)


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    env = {"CRYPTOWIRE_STORE__URL": f"sqlite+aiosqlite:///{tmp_path}/k.db"}
    out = run(["keys", "create", "bot", "--scope", "read", "--scope", "publish"], tmp_path, env)
    plaintext = out.stdout.strip().splitlines()[-1]
    assert plaintext.startswith("cw_")
    listed = json.loads(run(["keys", "list", "--json"], tmp_path, env).stdout)
    assert len(listed) == 1
    assert listed[0]["scopes"] == ["publish", "read"]
    assert plaintext not in json.dumps(listed)
    assert plaintext[3:11] == listed[0]["prefix"]
    run(["keys", "revoke", listed[0]["id"]], tmp_path, env)
    assert json.loads(run(["keys", "list", "--json"], tmp_path, env).stdout)[0]["revoked"]
    again = run(["keys", "revoke", listed[0]["id"]], tmp_path, env, check=False)
    assert again.returncode == 1
    bad = run(["keys", "create", "x", "--scope", "root"], tmp_path, env, check=False)
    assert bad.returncode == 2


def test_config_show_masks_and_check_refuses(tmp_path: Path) -> None:
    secret = "z" * 48
    (tmp_path / "cryptowire.toml").write_text(f'[auth]\njwt_secret = "{secret}"\n'
                                              "[server]\nport = 9999\n")
    shown = run(["config", "show"], tmp_path)
    assert secret not in shown.stdout
    assert json.loads(shown.stdout)["server"]["port"] == 9999
    assert json.loads(shown.stdout)["auth"]["jwt_secret"] == "**********"
    assert "Settings OK" in run(["config", "check"], tmp_path).stdout
    (tmp_path / "cryptowire.toml").write_text('[auth]\njwt_secret = "short"\n')
    bad = run(["config", "check"], tmp_path, check=False)
    assert bad.returncode == 2
    assert "at least 32" in bad.stderr
