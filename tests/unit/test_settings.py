"""Settings: defaults, TOML + env precedence, validation, masking, the example file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from cryptowire.errors import ConfigError
from cryptowire.settings import Settings, load_settings
from cryptowire.settings.example import render_example

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_embedded() -> None:
    s = load_settings(None)
    assert s.store.url.startswith("sqlite+aiosqlite:///")
    assert s.bus.url == "memory://"
    assert s.server.port == 8000
    assert {c.name: c.id for c in s.evm.chains} == {"eth": 1, "bsc": 56}


def test_toml_file_then_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\nport = 9100\nhost = "0.0.0.0"\n[history]\nsize = 5\n')
    monkeypatch.setenv("CRYPTOWIRE_SERVER__PORT", "9200")
    s = load_settings(cfg)
    assert s.server.port == 9200  # env wins over the file
    assert s.server.host == "0.0.0.0"
    assert s.history.size == 5


def test_invalid_settings_raise_config_error(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[server]\nport = 'not a number'\n")
    with pytest.raises(ConfigError, match="port"):
        load_settings(cfg)
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="max_block_range"):
        load_settings(None, evm={"chains": [{"id": 1, "name": "eth", "max_block_range": 20000}]})
    with pytest.raises(ConfigError, match="at least 32"):
        load_settings(None, auth={"jwt_secret": "short"})
    with pytest.raises(ConfigError, match="unique"):
        load_settings(None, evm={"chains": [{"id": 1, "name": "a"}, {"id": 2, "name": "a"}]})


def test_unknown_field_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "typo.toml"
    cfg.write_text("prot = 1\n")
    with pytest.raises(ConfigError):
        load_settings(cfg)


def test_secrets_are_masked() -> None:
    secret = "s" * 40
    s = load_settings(None, auth={"jwt_secret": secret})
    dumped = str(s.masked())
    assert secret not in dumped
    assert "**********" in dumped
    assert secret not in repr(s)


def test_masked_redacts_rpc_urls() -> None:
    """``config show`` prints ``masked()``: RPC URLs only as scheme://host[:port]/***."""
    chain = {"id": 1, "name": "eth", "rpc_urls": [
        "https://eth-mainnet.g.alchemy.com/v2/ALCHEMYKEY123456", "https://eth.llamarpc.com",
        "https://user:PASSWORD99@rpc.example:8545/?apikey=QUERYKEY123456"]}
    s = load_settings(None, evm={"chains": [chain]})
    dumped = s.masked()
    assert dumped["evm"]["chains"][0]["rpc_urls"] == [
        "https://eth-mainnet.g.alchemy.com/***", "https://eth.llamarpc.com",
        "https://rpc.example:8545/***"]
    for key in ("ALCHEMYKEY123456", "PASSWORD99", "QUERYKEY123456"):
        assert key not in str(dumped)
    assert s.evm.chains[0].rpc_urls == chain["rpc_urls"]  # the settings themselves unchanged


def test_every_field_has_a_doc_line() -> None:
    from pydantic import BaseModel

    def walk(model: type[BaseModel], path: str) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                walk(ann, f"{path}.{name}")
                continue
            if path == "" and name in ("server", "history", "store", "bus", "demand", "demo",
                                       "bybit", "evm", "auth"):
                continue
            assert field.description, f"{path}.{name} has no description"

    walk(Settings, "")


def test_example_file_is_current_and_loads() -> None:
    example = ROOT / "cryptowire.example.toml"
    assert example.read_text() == render_example(), (
        "cryptowire.example.toml is stale: run `cryptowire config example > "
        "cryptowire.example.toml`"
    )
    data = tomllib.loads(example.read_text())
    assert Settings(**data).model_dump() == Settings().model_dump()


def test_masked_hides_database_and_redis_passwords() -> None:
    s = load_settings(None, store={"url": "postgresql://app:DBPASS123@db:5432/cw"},
                      bus={"url": "redis://:REDISPASS9@cache:6379/0"},
                      pgnotify={"url": "postgresql://listener:PGPASS77@db/events"})
    dumped = s.masked()
    assert dumped["store"]["url"] == "postgresql://app:***@db:5432/cw"
    assert dumped["bus"]["url"] == "redis://:***@cache:6379/0"
    assert dumped["pgnotify"]["url"] == "postgresql://listener:***@db/events"
    for secret in ("DBPASS123", "REDISPASS9", "PGPASS77"):
        assert secret not in str(dumped)
    assert load_settings(None).masked()["store"]["url"] == load_settings(None).store.url


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.upper().startswith("CRYPTOWIRE_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(("toml", "reason"), [
    ("[server]\nprot = 8002\n", "unknown setting `server.prot` (did you mean `port`?)"),
    ("[bybit]\nenabeld = false\n", "unknown setting `bybit.enabeld` (did you mean `enabled`?)"),
    ("[[evm.chains]]\nid = 1\nname = 'eth'\nrpc_url = ['x']\n",
     "unknown setting `evm.chains[0].rpc_url` (did you mean `rpc_urls`?)"),
    ("[sever]\nport = 1\n", "unknown setting `sever` (did you mean `server`?)"),
    ("[server]\nzzz = 1\n", "unknown setting `server.zzz`"),
])
def test_unknown_names_in_the_file_are_refused_with_the_closest_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, reason: str) -> None:
    _clean_env(monkeypatch)
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert info.value.message == f"{cfg}: {reason}"


@pytest.mark.parametrize(("name", "reason"), [
    ("CRYPTOWIRE_SERVER__PROT", "unknown setting `server.prot` (did you mean `port`?)"),
    ("CRYPTOWIRE_BYBIT__ENABELD", "unknown setting `bybit.enabeld` (did you mean `enabled`?)"),
    ("CRYPTOWIRE_SERVER_PORT", "nested settings take a double underscore: "
                               "`CRYPTOWIRE_SERVER__PORT`"),
    ("CRYPTOWIRE_LOG_LEVL", "did you mean `CRYPTOWIRE_LOG_LEVEL`?"),
])
def test_unknown_environment_settings_are_refused(
        monkeypatch: pytest.MonkeyPatch, name: str, reason: str) -> None:
    _clean_env(monkeypatch)
    monkeypatch.setenv(name, "1")
    with pytest.raises(ConfigError) as info:
        load_settings(None)
    assert info.value.message.startswith(f"{name}: ")
    assert reason in info.value.message


def test_other_cryptowire_variables_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """``CRYPTOWIRE_API_KEY`` is ``cryptowire tail``'s; a dict field takes any key."""
    _clean_env(monkeypatch)
    monkeypatch.setenv("CRYPTOWIRE_API_KEY", "cw_x")
    monkeypatch.setenv("CRYPTOWIRE_SERVICES__COIN_IDS", '{"XRPUSDT": "ripple"}')
    assert load_settings(None).services.coin_ids == {"XRPUSDT": "ripple"}


def test_unknown_override_and_one_line_errors() -> None:
    with pytest.raises(ConfigError, match=r"unknown setting `server.prot`"):
        load_settings(None, server={"prot": 1})
    with pytest.raises(ConfigError) as info:
        load_settings(None, server={"port": "x"}, history={"size": "y"})
    assert "\n" not in info.value.message
    assert info.value.message.startswith("invalid settings: server.port: ")
    assert "history.size: " in info.value.message


def test_toml_syntax_error_is_file_line_col(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[server]\nport = 8002\nhost "x"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert info.value.message == f"{cfg}:3:6: Expected '=' after a key in a key/value pair"


def test_relative_sqlite_store_is_next_to_the_config_file_or_in_the_data_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory never decides
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert load_settings(None).store.url == (
        f"sqlite+aiosqlite:///{tmp_path / 'xdg' / 'cryptowire' / 'cryptowire.db'}")
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load_settings(None).store.url == (
        f"sqlite+aiosqlite:///{tmp_path / 'home/.local/share/cryptowire/cryptowire.db'}")
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "cryptowire.toml").write_text("")
    assert load_settings(conf / "cryptowire.toml").store.url == (
        f"sqlite+aiosqlite:///{conf / 'cryptowire.db'}")
    (conf / "cryptowire.toml").write_text('[store]\nurl = "sqlite:///data/hub.db?timeout=5"\n')
    assert load_settings(conf / "cryptowire.toml").store.url == (
        f"sqlite:///{conf / 'data/hub.db'}?timeout=5")
    for fixed in ("sqlite+aiosqlite:////abs/x.db", "sqlite+aiosqlite:///:memory:",
                  "postgresql+asyncpg://u:p@db/cw"):
        assert load_settings(None, store={"url": fixed}).store.url == fixed
    monkeypatch.chdir(conf)  # ./cryptowire.toml is the config file when present
    assert load_settings(None).store.url == f"sqlite:///{conf / 'data/hub.db'}?timeout=5"
