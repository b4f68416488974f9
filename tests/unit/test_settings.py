"""Settings: defaults, TOML + env precedence, validation, masking, the example file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from cryptowire.errors import ConfigError
from cryptowire.settings import Settings, load_settings
from cryptowire.settings_example import render_example

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
