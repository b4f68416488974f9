"""The sources' sections: ``[demo]``, ``[bybit]``, ``[binance]``, ``[okx]``, ``[evm]`` (and its
chains), ``[services]``, ``[pgnotify]``."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, field_validator

from cryptowire.settings.base import Section


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
    book_interval_s: float = Field(
        0.1, gt=0, description="Seconds between demo order-book deltas (book: channels).")
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


class BinanceSettings(Section):
    """Binance USD-M perpetuals (``@binance``) and spot (``@binance-spot``). The source is
    built once the venue is declared in ``sources/exchange/registry.py``; until then these
    settings are read by nothing."""

    enabled: bool = Field(True, description="Connect to Binance public streams on demand.")
    futures_public_url: str = Field(
        "wss://fstream.binance.com/public/stream",
        description="USD-M futures stream for depth and bookTicker (the /public endpoint).")
    futures_market_url: str = Field(
        "wss://fstream.binance.com/market/stream",
        description="USD-M futures stream for trades, tickers, mark price, klines and "
        "liquidations (the /market endpoint).")
    futures_rest_url: str = Field("https://fapi.binance.com",
                                  description="USD-M futures REST base URL.")
    spot_url: str = Field("wss://stream.binance.com:9443/stream", description="Spot stream.")
    spot_rest_url: str = Field("https://api.binance.com", description="Spot REST base URL.")
    ack_timeout_s: float = Field(10.0, gt=0, description="How long a subscribe waits for "
                                 "Binance's answer before it is refused.")
    connect_timeout_s: float = Field(10.0, gt=0, description="Timeout of one connect attempt.")


class OkxSettings(Section):
    """OKX USDT swaps (``@okx``) and spot (``@okx-spot``). The source is built once the venue
    is declared in ``sources/exchange/registry.py``; until then these settings are read by
    nothing."""

    enabled: bool = Field(True, description="Connect to OKX public streams on demand.")
    public_url: str = Field("wss://ws.okx.com:8443/ws/v5/public",
                            description="Public stream (tickers, trades, books, funding, "
                            "liquidations).")
    business_url: str = Field("wss://ws.okx.com:8443/ws/v5/business",
                              description="Business stream (candles).")
    rest_url: str = Field("https://www.okx.com", description="Public REST base URL.")
    ack_timeout_s: float = Field(10.0, gt=0, description="How long a subscribe waits for "
                                 "OKX's answer before it is refused.")
    connect_timeout_s: float = Field(10.0, gt=0, description="Timeout of one connect attempt.")


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
