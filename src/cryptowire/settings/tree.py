"""The settings tree (:class:`Settings`) and :func:`load_settings`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from cryptowire.errors import ConfigError
from cryptowire.redaction import hide_password, redact_url
from cryptowire.settings.base import DEFAULT_CONFIG_FILE
from cryptowire.settings.bbo import BboSettings
from cryptowire.settings.data import BusSettings, DemandSettings, HistorySettings, StoreSettings
from cryptowire.settings.outputs import RfqSettings, TelegramSettings
from cryptowire.settings.server import AuthSettings, ServerSettings
from cryptowire.settings.sources import (
    BinanceSettings,
    BybitSettings,
    DemoSettings,
    EvmSettings,
    OkxSettings,
    PgNotifySettings,
    ServicesSettings,
)


class Settings(BaseSettings):
    """The effective configuration of one hub process."""

    model_config = SettingsConfigDict(
        env_prefix="CRYPTOWIRE_",
        env_nested_delimiter="__",
        extra="forbid",
        toml_file=DEFAULT_CONFIG_FILE,
    )

    log_level: str = Field("INFO", description="Root log level for the CLI's handler.")
    server: ServerSettings = Field(default_factory=ServerSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    bus: BusSettings = Field(default_factory=BusSettings)
    demand: DemandSettings = Field(default_factory=DemandSettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    bybit: BybitSettings = Field(default_factory=BybitSettings)
    binance: BinanceSettings = Field(default_factory=BinanceSettings)
    okx: OkxSettings = Field(default_factory=OkxSettings)
    evm: EvmSettings = Field(default_factory=EvmSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    rfq: RfqSettings = Field(default_factory=RfqSettings)
    services: ServicesSettings = Field(default_factory=ServicesSettings)
    pgnotify: PgNotifySettings = Field(default_factory=PgNotifySettings)
    bbo: BboSettings = Field(default_factory=BboSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls),
            file_secret_settings,
        )

    @model_validator(mode="after")
    def _check(self) -> Settings:
        names = [c.name for c in self.evm.chains]
        if len(set(names)) != len(names):
            raise ValueError("evm.chains: chain names must be unique")
        if (self.server.tls_cert is None) != (self.server.tls_key is None):
            raise ValueError("server.tls_cert and server.tls_key go together")
        return self

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets shown as ``**********`` and RPC URLs
        redacted (:func:`~cryptowire.redaction.redact_url`: a provider key is often in
        their path or query)."""
        data = self.model_dump(mode="json")
        for chain in data["evm"]["chains"]:
            chain["rpc_urls"] = [redact_url(u) for u in chain["rpc_urls"]]
        for section in ("store", "bus", "pgnotify"):  # database and Redis passwords
            data[section]["url"] = hide_password(data[section]["url"])
        return data


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from ``config_file`` (default ``./cryptowire.toml`` if present), the
    environment and ``overrides``; invalid settings raise :class:`ConfigError` with one line
    (``file:line:col: what`` for a TOML syntax error, the closest valid name for an unknown
    one). A relative SQLite ``store.url`` (the default ``cryptowire.db`` too) is resolved
    against the config file's directory, or :func:`~cryptowire.settings.check.data_dir` when
    there is no config file."""
    import os

    from pydantic import ValidationError

    from cryptowire.settings.check import (
        data_dir,
        one_line,
        read_toml,
        resolve_sqlite,
        unknown_env,
        unknown_field,
    )

    path = Path(config_file) if config_file is not None else Path(DEFAULT_CONFIG_FILE)
    if config_file is not None and not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    has_file = path.is_file()
    if has_file:
        reason = unknown_field(Settings, read_toml(path))
        if reason:
            raise ConfigError(f"{path}: {reason}")
    reason = unknown_env(Settings, os.environ)
    if reason:
        raise ConfigError(reason)
    cls = type(
        "Settings", (Settings,), {"model_config": {**Settings.model_config, "toml_file": path}}
    )
    try:
        settings: Settings = cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(one_line(exc)) from exc
    base = path.resolve().parent if has_file else data_dir()
    settings.store.url = resolve_sqlite(settings.store.url, base)
    return settings
