"""Everyday mistakes and questions of a new user, each answered by the ``cryptowire`` command
(a subprocess, as a user runs it) with one clear line and the documented exit code: which
store a command uses, unknown or misspelt settings, a broken TOML file, an unreachable store
or bus, a port in use, negative Telegram chat ids, ``--version``, the drain on SIGTERM and
whole addresses in a piped ``tokens list``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

pytestmark = pytest.mark.integration

PEPE = "0x6982508145454ce325ddbe47a25d4ec3d2311933"
PAIR = "0xa43fe16908251ee70ef74718545e4fe6c5ccec9f"


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment without any CRYPTOWIRE_* setting, a private data directory."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CRYPTOWIRE_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    env.update(extra)
    return env


def cw(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cryptowire", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_keys_use_the_store_next_to_the_config_file_and_say_so(tmp_path: Path) -> None:
    conf, other = tmp_path / "conf", tmp_path / "other"
    conf.mkdir()
    other.mkdir()
    (conf / "cryptowire.toml").write_text("[server]\nport = 8123\n")
    env = clean_env(tmp_path)
    made = cw(["keys", "create", "bot", "-c", str(conf / "cryptowire.toml")], other, env)
    assert made.returncode == 0, made.stderr
    store = f"sqlite+aiosqlite:///{conf / 'cryptowire.db'}"
    assert made.stderr.splitlines()[0] == f"store: {store}"
    assert (conf / "cryptowire.db").is_file()
    assert not (other / "cryptowire.db").exists()
    # The hub (and any command) started in the config file's directory sees the same key.
    listed = cw(["keys", "list", "--json"], conf, env)
    assert [k["name"] for k in json.loads(listed.stdout)] == ["bot"]
    assert listed.stderr.splitlines()[0] == f"store: {store}"


def test_without_a_config_file_the_store_is_per_user_not_per_directory(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    env = clean_env(tmp_path)
    assert cw(["keys", "create", "bot"], one, env).returncode == 0
    listed = cw(["keys", "list", "--json"], two, env)
    assert [k["name"] for k in json.loads(listed.stdout)] == ["bot"]
    db = tmp_path / "xdg" / "cryptowire" / "cryptowire.db"
    assert listed.stderr.splitlines()[0] == f"store: sqlite+aiosqlite:///{db}"
    assert db.is_file()
    assert not list(one.iterdir()) and not list(two.iterdir())


def test_unreachable_store_is_one_line_with_the_password_masked(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://app:hunter22@127.0.0.1:{closed_port()}/cw"
    env = clean_env(tmp_path, CRYPTOWIRE_STORE__URL=url)
    for args in (["keys", "list"], ["tokens", "list"], ["serve", "--port", "0"]):
        out = cw(args, tmp_path, env)
        assert out.returncode == 2, (args, out.stderr)
        masked = url.replace("hunter22", "***")
        lines = out.stderr.splitlines()
        assert lines[0] == f"store: {masked}"
        assert lines[-1].startswith(f"cannot open database {masked}: ")
        assert "hunter22" not in out.stderr + out.stdout
        assert "Traceback" not in out.stderr
        assert "listening" not in out.stdout


def test_unreachable_bus_is_one_line_and_exit_2(tmp_path: Path) -> None:
    url = f"redis://:hunter22@127.0.0.1:{closed_port()}/0"
    out = cw(["serve", "--port", "0"], tmp_path, clean_env(tmp_path, CRYPTOWIRE_BUS__URL=url))
    assert out.returncode == 2
    assert out.stderr.splitlines()[-1].startswith(
        f"cannot reach the bus {url.replace('hunter22', '***')}: ")
    assert "hunter22" not in out.stderr and "Traceback" not in out.stderr
    assert "listening" not in out.stdout


@pytest.mark.parametrize(("toml", "line"), [
    ("[server]\nprot = 8002\n", "cryptowire.toml: unknown setting `server.prot` "
                                "(did you mean `port`?)"),
    ("[bybit]\nenabeld = false\n", "cryptowire.toml: unknown setting `bybit.enabeld` "
                                   "(did you mean `enabled`?)"),
    ('[server]\nport = 8002\nhost "x"\n',
     "cryptowire.toml:3:6: Expected '=' after a key in a key/value pair"),
])
def test_config_check_answers_bad_files_with_one_line(tmp_path: Path, toml: str,
                                                      line: str) -> None:
    (tmp_path / "cryptowire.toml").write_text(toml)
    out = cw(["config", "check"], tmp_path, clean_env(tmp_path))
    assert out.returncode == 2
    assert out.stderr == line + "\n"
    assert out.stdout == ""


def test_unknown_environment_setting_fails_the_command(tmp_path: Path) -> None:
    out = cw(["config", "check"], tmp_path, clean_env(tmp_path, CRYPTOWIRE_SERVER__PROT="1"))
    assert out.returncode == 2
    assert out.stderr == ("CRYPTOWIRE_SERVER__PROT: unknown setting `server.prot` "
                          "(did you mean `port`?)\n")


def test_port_in_use_is_one_line_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = cw(["serve", "--port", str(port)], tmp_path, clean_env(tmp_path))
    assert out.returncode == 2
    assert out.stdout == ""  # never "cryptowire listening on ..."
    assert out.stderr.splitlines()[-1] == f"port {port} is in use; set server.port or --port"
    assert "Traceback" not in out.stderr
    assert "source" not in out.stderr  # no source was started


def test_negative_telegram_chat_ids_are_accepted_as_written(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    bound = cw(["tokens", "bind", "pepe", "-1001234567890"], tmp_path, env)
    assert bound.returncode == 0, bound.stderr
    assert bound.stdout.strip() == "Bound -1001234567890 to group pepe."
    again = cw(["tokens", "bind", "pepe", "-1001234567890"], tmp_path, env)
    assert again.stdout.strip() == "Already bound: -1001234567890 to group pepe."
    gone = cw(["tokens", "unbind", "pepe", "-1001234567890"], tmp_path, env)
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout.strip() == "Unbound -1001234567890 from group pepe."


def test_version(tmp_path: Path) -> None:
    from cryptowire import __version__

    for args in (["--version"], ["version"]):
        out = cw(args, tmp_path, clean_env(tmp_path))
        assert out.returncode == 0
        assert out.stdout == f"cryptowire {__version__}\n"


def test_tokens_list_piped_shows_whole_addresses(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    added = cw(["tokens", "add", "eth", PEPE, "--symbol", "PEPE", "--decimals", "18",
                "--pair", PAIR, "--group", "pepe"], tmp_path, env)
    assert added.returncode == 0, added.stderr
    assert PEPE in added.stdout and PAIR in added.stdout
    listed = cw(["tokens", "list"], tmp_path, env)  # stdout is a pipe here
    assert PEPE in listed.stdout
    assert PAIR in listed.stdout


async def test_sigterm_drains_and_logs_how_many_sessions_closed(tmp_path: Path) -> None:
    env = clean_env(tmp_path, CRYPTOWIRE_BYBIT__ENABLED="false",
                    CRYPTOWIRE_SERVER__SHUTDOWN_GRACE_S="2")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cryptowire", "serve", "--port", "0", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert line.startswith("cryptowire listening on http://127.0.0.1:"), line
        url = line.split("WebSocket: ")[1].split(",")[0]
        async with connect(url) as ws:
            await ws.send('{"op":"ping"}')
            assert json.loads(await ws.recv())["op"] == "pong"
            proc.send_signal(signal.SIGTERM)
            with pytest.raises(Exception):  # noqa: B017,PT011 - the close is all we want
                while True:
                    await asyncio.wait_for(ws.recv(), 30)
            assert ws.close_code == 1001
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        log = (await proc.stderr.read()).decode()
        assert "shutting down: closed 1 sessions with 1001" in log
        assert "seed 0" not in log.lower()  # what a user reads at start speaks their words
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_cli_help_speaks_to_users(tmp_path: Path) -> None:
    """Every command's --help: no reStructuredText markup, no project-internal words."""
    commands = [[], ["serve"], ["version"], ["keys"], ["keys", "create"], ["keys", "list"],
                ["keys", "revoke"], ["config"], ["config", "show"], ["config", "check"],
                ["config", "example"], ["tokens"], ["tokens", "add"], ["tokens", "remove"],
                ["tokens", "list"], ["tokens", "import"], ["tokens", "bind"],
                ["tokens", "unbind"], ["record"], ["tail"]]
    env = clean_env(tmp_path, COLUMNS="200")
    for args in commands:
        out = cw([*args, "--help"], tmp_path, env)
        assert out.returncode == 0, (args, out.stderr)
        text = out.stdout.lower()
        for word in ("``", ":class:", ":func:", ":mod:", "seed 0", "seed's", "build machine",
                     "used to return", "session", "fixture"):
            assert word not in text, f"`cryptowire {' '.join(args)} --help` says {word!r}"


def test_unreadable_tls_files_are_one_line(tmp_path: Path) -> None:
    env = clean_env(tmp_path, CRYPTOWIRE_SERVER__TLS_CERT=str(tmp_path / "missing.pem"),
                    CRYPTOWIRE_SERVER__TLS_KEY=str(tmp_path / "missing.key"))
    out = cw(["serve", "--port", "0"], tmp_path, env)
    assert out.returncode == 2
    assert out.stderr.splitlines()[-1].startswith("cannot load server.tls_cert / "
                                                  "server.tls_key: ")
    assert "Traceback" not in out.stderr and out.stdout == ""
