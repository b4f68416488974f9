"""One typed settings tree: ``cryptowire.toml`` (or ``--config PATH``) + ``CRYPTOWIRE_*`` env.

Environment variables win over the file; nested fields use ``__``
(``CRYPTOWIRE_SERVER__PORT=9000``). Every field has a default and a one-line doc, secrets are
``SecretStr`` and print masked. Nothing here reads the environment at import time: call
:func:`load_settings`.
"""

from __future__ import annotations

import ipaddress
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from cryptowire.errors import ConfigError
from cryptowire.redaction import hide_password, redact_url

DEFAULT_CONFIG_FILE = "cryptowire.toml"


class Section(BaseModel):
    """Base of every settings section: an unknown name is an error, never ignored."""

    model_config = ConfigDict(extra="forbid")


class ServerSettings(Section):
    host: str = Field("127.0.0.1", description="Interface to listen on (0.0.0.0 for all).")
    port: int = Field(8000, description="TCP port for HTTP and every WebSocket path.")
    tls_cert: Path | None = Field(None, description="PEM certificate; with tls_key serves wss://.")
    tls_key: Path | None = Field(None, description="PEM private key for tls_cert.")
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Browser Origins allowed to open sockets besides the hub's own "
        '(same-origin); ["*"] allows any. Requests without an Origin (not browsers) pass.',
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names accepted on socket upgrades; when bound to a loopback address "
        'only loopback names are accepted unless listed here (["*"]: any). DNS rebinding.',
    )
    max_connections: int = Field(10_000, description="Total WebSocket connections (4003 over).")
    http_headroom: int = Field(
        256, ge=0,
        description="Connections of the port (sessions + HTTP, half-sent requests included) "
        "may reach max_connections + this; a new one over it (or near the open-file limit) "
        "gets HTTP 503.",
    )
    unauthenticated_share: float = Field(
        0.9, gt=0, le=1,
        description="Share of max_connections that sessions without an API key may hold; "
        "the rest stays for keyed sessions (4003 over).",
    )
    auth_timeout_s: float = Field(
        10.0, gt=0,
        description="A socket that must authenticate (/swaps; /ws with anonymous_read off) "
        "and has not within this many seconds is closed with 4001.",
    )
    header_timeout_s: float = Field(
        10.0, gt=0,
        description="Seconds a connection may take to send a complete HTTP request head, or "
        "stay idle between requests, before it is closed.",
    )
    max_connections_per_key: int = Field(
        500, description="Connections per API key (anonymous clients count per remote IP)."
    )
    max_subscriptions: int = Field(100, description="Subscriptions per session.")
    max_inbound_rate: int = Field(100, description="Client messages per second per session.")
    max_frame_bytes: int = Field(65_536, description="Largest client frame accepted (1009 over).")
    outbound_buffer_bytes: int = Field(
        4 * 1024 * 1024,
        description="Bytes queued to one session before it is closed as a slow consumer (4008).",
    )
    max_outbound_bytes: int = Field(
        256 * 1024 * 1024,
        description="Bytes queued to all sessions of the node together; over it the sessions "
        "with the largest buffers are closed first (4008).",
    )
    ping_interval_s: float = Field(
        20.0, gt=0,
        description="Server WebSocket ping period; a session that sends nothing (no pong) "
                    "within half of it after a ping is closed with 4011.",
    )
    anonymous_read: bool = Field(
        True, description="Allow clients without a key to read public channels."
    )
    envelope: Literal["native", "mudrex"] = Field(
        "native", description="Data envelope on /ws: native frames or the Mudrex proxy's shape."
    )
    shutdown_grace_s: float = Field(5.0, description="Time given to sessions to close on stop.")
    publish_max_batch: int = Field(1000, description="Events in one publish request.")
    publish_max_bytes: int = Field(
        1_048_576, description="Largest publish request body (REST) in bytes."
    )
    echo_endpoint: bool = Field(
        False, description="Expose /echo for WebSocket conformance tests only."
    )
    greet_004: bool = Field(
        False, description="Send the data services' connection_established frame on /ws for "
        "their clients that wait for it (native clients then get it first too)."
    )
    proxy_protocol: bool = Field(
        False, description="Every connection starts with a PROXY v1/v2 header (haproxy "
        "send-proxy-v2) naming the client; one without a valid header is dropped."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list, description="Addresses/CIDRs whose X-Forwarded-For names the "
        "client; the header is ignored from anyone else."
    )
    max_rest_rate: int = Field(
        50, ge=0, description="REST requests per second per API key (anonymous: per client "
        "address), bursts of as many; over it 429 with Retry-After; 0 turns it off."
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(f"trusted_proxies: {entry!r} is not an address or CIDR") from exc
        return value

    @model_validator(mode="after")
    def _proxy_without_tls(self) -> ServerSettings:
        if self.proxy_protocol and self.tls_cert is not None:
            # The header precedes the TLS handshake: terminate TLS at the balancer.
            raise ValueError("proxy_protocol cannot be combined with tls_cert: terminate TLS "
                             "at the balancer")
        return self


#: Default ``history.kind_shares``: the groups of core/history_budget.py (market = ticker,
#: trade, kline; onchain = swap, burn) and the share of the history budget each is guaranteed.
HISTORY_KIND_SHARES: dict[str, float] = {
    "market": 0.3, "onchain": 0.15, "service": 0.05, "pg": 0.2, "app": 0.3,
}


class HistorySettings(Section):
    size: int = Field(1000, description="Messages kept per channel for recovery.")
    ttl_s: float = Field(600.0, description="Messages older than this are dropped from history.")
    max_channels: int = Field(100_000, description="Channels with history kept at once.")
    max_bytes: int = Field(
        256 * 1024 * 1024, ge=0,
        description="Bytes of history the node keeps (data + ~200 B per message, ~1.3 KB per "
                    "channel); over it the oldest messages go first.",
    )
    max_channel_bytes: int = Field(
        16 * 1024 * 1024, ge=0,
        description="Bytes of history one channel keeps (memory and Redis); over it the "
                    "channel's oldest messages go first.",
    )
    kind_shares: dict[str, float] = Field(
        default_factory=lambda: dict(HISTORY_KIND_SHARES),
        description="Share of max_bytes and max_channels guaranteed to each kind group; a "
                    "group within its share never loses history to another group.",
    )

    @field_validator("kind_shares")
    @classmethod
    def _shares_add_up(cls, shares: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(shares) - set(HISTORY_KIND_SHARES))
        if unknown:
            raise ValueError(f"unknown kind group {unknown}; use {list(HISTORY_KIND_SHARES)}")
        if any(v < 0 for v in shares.values()) or sum(shares.values()) > 1.0 + 1e-9:
            raise ValueError("shares are fractions >= 0 that add up to at most 1")
        return shares


class StoreSettings(Section):
    url: str = Field(
        "sqlite+aiosqlite:///cryptowire.db",
        description="SQLAlchemy URL: sqlite+aiosqlite:///file or postgresql+asyncpg://...; a "
        "relative SQLite file is next to the config file, else in $XDG_DATA_HOME/cryptowire.",
    )


class BusSettings(Section):
    url: str = Field("memory://", description="memory:// (one process) or redis://host:port/db.")
    prefix: str = Field("cw", description="Redis key prefix; nodes of one cluster share it.")
    lease_ttl_s: float = Field(
        3.0, description="Source lease lifetime; a dead leader is replaced within about this."
    )
    node_ttl_s: float = Field(
        5.0, description="A node missing its heartbeat this long no longer counts for demand."
    )
    meta_ttl_s: float = Field(
        604_800.0, description="Offset/epoch of an idle channel are kept this long in Redis."
    )
    backoff_cap_s: float = Field(5.0, description="Longest wait between Redis reconnect tries.")
    max_connections: int = Field(
        64, ge=2,
        description="Redis connections per node for commands (pub/sub takes one); a command "
                    "waits up to 5 s for a free one instead of failing.",
    )


class DemandSettings(Section):
    linger_s: float = Field(
        2.0, description="Keep an upstream topic this long after its last subscriber leaves."
    )


class DemoSettings(Section):
    mode: Literal["auto", "on", "off"] = Field(
        "auto",
        description="auto: run the demo source when no upstream is configured or reachable.",
    )
    symbols: list[str] = Field(
        default_factory=lambda: ["BTCUSDT", "ETHUSDT", "SOLUSDT", "ETHBTC"],
        description="Symbols the demo market quotes.",
    )
    interval_s: float = Field(0.5, description="Seconds between demo ticks.")
    chain: str = Field("eth", description="Chain name the demo swaps and burns appear on.")


class BybitSettings(Section):
    enabled: bool = Field(True, description="Connect to Bybit V5 public streams on demand.")
    linear_url: str = Field(
        "wss://stream.bybit.com/v5/public/linear", description="Linear perpetuals stream."
    )
    spot_url: str = Field("wss://stream.bybit.com/v5/public/spot", description="Spot stream.")
    rest_url: str = Field("https://api.bybit.com", description="Public REST base URL.")
    default_category: Literal["linear", "spot"] = Field(
        "linear", description="Venue for channels without an @suffix."
    )


class ChainSettings(Section):
    id: int = Field(description="EVM chain id.")
    name: str = Field(description="Short name used in channels (swap:<name>).")
    rpc_urls: list[str] = Field(
        default_factory=list,
        description="JSON-RPC URLs, rotated. Provider keys may sit in the path, query or "
        "user-info: only scheme://host[:port] (+ '/***') is ever shown, in /stats, /metrics, "
        "services, logs and `config show`.",
    )
    block_interval_s: float = Field(12.0, description="Poll period.")
    start_block: int | None = Field(None, description="First block when no cursor is stored.")
    max_block_range: int = Field(10_000, description="Largest eth_getLogs range (<= 10,000).")
    confirmations: int = Field(3, description="Blocks behind head considered final.")
    factory: str | None = Field(None, description="Uniswap-V2 factory address.")
    wrapped_native: str | None = Field(None, description="Wrapped native token address.")
    burn_addresses: list[str] = Field(
        default_factory=lambda: [
            "0x0000000000000000000000000000000000000000",
            "0x000000000000000000000000000000000000dEaD",
        ],
        description="Transfers of tracked tokens to these count as burns.",
    )
    explorer_tx_url: str = Field("", description="Explorer link prefix for a tx hash.")

    @field_validator("max_block_range")
    @classmethod
    def _cap_range(cls, value: int) -> int:
        if not 1 <= value <= 10_000:
            raise ValueError("max_block_range must be between 1 and 10,000")
        return value


def _default_chains() -> list[ChainSettings]:
    return [
        ChainSettings(
            id=1,
            name="eth",
            rpc_urls=["https://ethereum-rpc.publicnode.com", "https://eth.llamarpc.com"],
            block_interval_s=12.0,
            factory="0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f",
            wrapped_native="0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2",
            explorer_tx_url="https://etherscan.io/tx/",
        ),
        ChainSettings(
            id=56,
            name="bsc",
            rpc_urls=["https://bsc-dataseed.bnbchain.org", "https://bsc-rpc.publicnode.com"],
            block_interval_s=3.0,
            factory="0xcA143Ce32Fe78f1f7019d7d551a6402fC5350c73",
            wrapped_native="0xbb4CdB9CBd36B01bD1cBaEBF2De08d9173bc095c",
            explorer_tx_url="https://bscscan.com/tx/",
        ),
    ]


class EvmSettings(Section):
    enabled: bool = Field(False, description="Run the on-chain watchers for tracked tokens.")
    chains: list[ChainSettings] = Field(
        default_factory=_default_chains, description="Chains that channels and watchers know."
    )
    rpc_timeout_s: float = Field(10.0, description="Timeout of one JSON-RPC call to one URL.")
    rpc_backoff_s: float = Field(
        1.0, description="First bench period of a failing RPC URL (doubles, capped)."
    )
    rpc_backoff_cap_s: float = Field(60.0, description="Longest bench period of an RPC URL.")
    reorg_window: int = Field(
        128, description="Blocks searched back for the fork point when a reorg is seen."
    )
    swaps_port: int | None = Field(
        None,
        description="Also serve the swap tracker's /swaps dialect at / on this port, e.g. 4000.",
    )


class RfqSettings(Section):
    interval_s: float = Field(4.0, description="Seconds between offers of a quote session.")
    commission: Decimal = Field(
        Decimal("0.01"), description="Commission taken from amountTo (0.01 = 1%)."
    )
    quote_ttl_s: float = Field(10.0, description="A quote can be accepted for this long.")
    max_offers: int = Field(121, description="Offers without acceptance before 'timeout'.")
    display_decimals: int = Field(2, description="Decimals of displayed amounts and rates.")
    max_rate_age_s: float = Field(
        30.0, description="A ticker rate older than this is stale (offer-failed)."
    )
    quote_currency: str = Field("USDT", description="Currency cross rates go through.")
    cryptocompare_url: str | None = Field(
        None, description="CryptoCompare-compatible REST base URL; unset = live tickers."
    )
    cryptocompare_api_key: SecretStr | None = Field(
        None, description="API key sent to the CryptoCompare-compatible API."
    )
    provider: Literal["paper"] = Field(
        "paper", description="Liquidity provider that executes accepted quotes."
    )
    max_session_starts: int = Field(
        30, ge=1, description="Quote sessions one connection may start (or move to another "
        "pair) per minute; more get an error reply."
    )
    max_session_starts_per_key: int = Field(
        120, ge=1, description="The same for all connections of one API key (anonymous "
        "clients count per address)."
    )

    @field_validator("commission")
    @classmethod
    def _commission_range(cls, value: Decimal) -> Decimal:
        if not Decimal(0) <= value < Decimal(1):
            raise ValueError("commission must be in [0, 1)")
        return value


class TelegramSettings(Section):
    enabled: bool = Field(False, description="Post swaps and burns to the chats of a group.")
    bot_token: SecretStr | None = Field(None, description="Bot API token from @BotFather.")
    base_url: str = Field(
        "https://api.telegram.org/bot", description="Bot API base URL (the token is appended)."
    )
    queue_size: int = Field(
        1000, description="Messages waiting to be sent; the oldest are dropped beyond it."
    )
    max_retries: int = Field(3, description="Retries of a message the Bot API refused (429).")
    timeout_s: float = Field(10.0, description="HTTP timeout of one Bot API call.")


class AuthSettings(Section):
    jwt_secret: SecretStr | None = Field(
        None, description="HS256 secret (>= 32 chars) for Bearer JWTs and /pg/<JWT> sockets."
    )
    jwt_scopes: bool = Field(
        False, description="Honour a Bearer JWT's 'scopes' claim as an API key's scopes; off, "
        "a JWT grants only the pg: channels its 'channels' claim names."
    )
    jwt_require_exp: bool = Field(
        True, description="Refuse a Bearer JWT without 'exp' (/pg/<JWT> sockets accept one)."
    )
    pg_read_keys: bool = Field(
        True, description="API keys with the read scope read every pg: channel; off, only "
        "admin keys and JWTs naming the channel do."
    )

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("jwt_secret must be at least 32 characters")
        return value


#: The seed 002 (Econia DSS) channels, each mirrored at ``GET /<channel>s``.
ECONIA_CHANNELS: tuple[str, ...] = (
    "market_registration_event", "place_limit_order_event", "place_market_order_event",
    "place_swap_order_event", "fill_event", "change_order_size_event", "cancel_order_event",
    "recognized_market_event", "new_limit_order", "updated_limit_order", "new_market_order",
    "new_swap_order",
)  # fmt: skip


class ServicesSettings(Section):
    enabled: bool = Field(True, description="Serve the data services (service:<name>, /ws/master).")
    market_data_interval_s: float = Field(5.0, description="market_data update period.")
    explorers_interval_s: float = Field(10.0, description="explorers update period.")
    whale_tracking_interval_s: float = Field(15.0, description="whale_tracking update period.")
    scheduler_interval_s: float = Field(15.0, description="scheduler update period.")
    rpc_nodes_interval_s: float = Field(20.0, description="rpc_nodes update period.")
    pool_manager_interval_s: float = Field(20.0, description="pool_manager update period.")
    sentiment_interval_s: float = Field(30.0, description="sentiment update period.")
    onchain_interval_s: float = Field(30.0, description="onchain update period.")
    health_checker_interval_s: float = Field(30.0, description="health_checker update period.")
    persistence_interval_s: float = Field(30.0, description="persistence update period.")
    news_interval_s: float = Field(60.0, description="news update period.")
    huggingface_interval_s: float = Field(60.0, description="huggingface update period.")
    market_symbols: list[str] = Field(
        default_factory=lambda: ["BTCUSDT", "ETHUSDT"],
        description="Symbols market_data reports, read from the ticker:<SYMBOL> channels.",
    )
    coin_ids: dict[str, str] = Field(
        default_factory=lambda: {"BTCUSDT": "bitcoin", "ETHUSDT": "ethereum",
                                 "SOLUSDT": "solana"},
        description="Coin id market_data keys each symbol by (data.prices.bitcoin); "
        "a symbol without one is keyed by the symbol.",
    )
    whale_min_paired_amount: Decimal = Field(
        Decimal("10"), description="Swaps moving at least this much of the paired token "
        "(e.g. WETH) are whale transactions."
    )
    whale_min_burn_amount: Decimal = Field(
        Decimal("1000000"), description="Burns of at least this many tokens are whale transactions."
    )
    whale_max_transactions: int = Field(50, description="Large transactions kept and reported.")
    news_feeds: list[str] = Field(
        default_factory=list, description="RSS/Atom feed URLs for news and sentiment."
    )
    news_timeout_s: float = Field(10.0, description="HTTP timeout of one feed fetch.")
    news_max_articles: int = Field(50, description="Newest articles reported by news.")
    huggingface_models: list[str] = Field(
        default_factory=list, description="HuggingFace model ids the huggingface service lists."
    )


class PgNotifySettings(Section):
    enabled: bool = Field(False, description="LISTEN on Postgres and serve pg:<channel> events.")
    url: str = Field(
        "", description="Postgres URL to LISTEN on; empty uses store.url when it is Postgres."
    )
    listen_channels: list[str] = Field(
        default_factory=lambda: ["econiaws"],
        description='NOTIFY channels carrying {"channel": C, "payload": {...}} messages.',
    )
    backoff_cap_s: float = Field(2.0, description="Longest wait between reconnect tries.")
    keepalive_s: float = Field(
        5.0, description="Probe the LISTEN connection this often to notice a dead link."
    )
    mirror: bool = Field(
        False, description="Also write events to the pg_mirror table, served at GET /<C>s."
    )
    rest_channels: list[str] = Field(
        default_factory=lambda: list(ECONIA_CHANNELS),
        description="Channels whose GET /<channel>s REST mirror is served.",
    )
    rest_default_limit: int = Field(100, description="Rows a mirror query returns by default.")
    rest_max_limit: int = Field(1000, description="Most rows one mirror query may return.")
    rest_max_scan: int = Field(
        100_000, ge=1, description="A mirror query looks at most at this many newest rows of "
        "its channel (filters match within them)."
    )
    rest_max_concurrent: int = Field(
        4, ge=1, description="Mirror queries one node runs at once; the others wait their turn."
    )
    rest_statement_timeout_ms: int = Field(
        5000, ge=0, description="Postgres statement_timeout of a mirror query (503 over it); "
        "0 for none."
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
    evm: EvmSettings = Field(default_factory=EvmSettings)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    rfq: RfqSettings = Field(default_factory=RfqSettings)
    services: ServicesSettings = Field(default_factory=ServicesSettings)
    pgnotify: PgNotifySettings = Field(default_factory=PgNotifySettings)

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
    against the config file's directory, or :func:`~cryptowire.settings_check.data_dir` when
    there is no config file."""
    import os

    from pydantic import ValidationError

    from cryptowire.settings_check import (
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
