"""What a hub runs, built from its settings: the one place that picks concrete parts.

The store, the sources (a new source is one module plus a line in :func:`build_sources`),
the Telegram notifier, the watchlist admin, the RFQ rates and liquidity provider.
:class:`~cryptowire.app.node.Node` calls these and owns (starts, closes) what they return;
nothing else constructs them.
Heavy modules are imported only when the settings ask for them (a ``memory://`` bus never
loads redis-py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from cryptowire.core.channels import Channel
from cryptowire.core.demand import Demand
from cryptowire.core.source import Source
from cryptowire.settings import Settings

if TYPE_CHECKING:
    from cryptowire.core.hub import Hub
    from cryptowire.notify.telegram import TelegramNotifier
    from cryptowire.rfq.providers import LiquidityProvider
    from cryptowire.sources.bbo import BboNode
    from cryptowire.sources.evm.tokens import TokenAdmin
    from cryptowire.sources.prices import RateProvider
    from cryptowire.sources.services.context import NodeView
    from cryptowire.store.sql import SqlStore

    class NodeParts(NodeView, BboNode, Protocol):
        """The node as the sources built with it read it (services, bbo)."""


async def open_store(settings: Settings) -> SqlStore:
    """The node's one store (migrations run here, once)."""
    from cryptowire.store.sql import SqlStore

    return await SqlStore.open(settings.store.url)


def build_token_admin(settings: Settings, store: SqlStore) -> TokenAdmin:
    """The node's one watchlist admin (REST, native admin ops, the seed 000 dialect). It
    opens an RPC pool per chain when it first reads one; the node closes them."""
    from cryptowire.sources.evm.tokens import TokenAdmin
    from cryptowire.store.evm import EvmStore

    return TokenAdmin(settings.evm, EvmStore(store.engine))


def build_notifier(settings: Settings, store: SqlStore) -> TelegramNotifier | None:
    """Telegram alerts of swaps and burns, when configured."""
    tg = settings.telegram
    if not (settings.evm.enabled and tg.enabled and tg.bot_token is not None):
        return None
    from cryptowire.notify.telegram import TelegramNotifier
    from cryptowire.store.evm import EvmStore

    return TelegramNotifier(tg, EvmStore(store.engine), settings.evm.chains)


def build_rates(settings: Settings, parse: Callable[[str], Channel], demand: Demand,
                hub: Hub) -> RateProvider:
    """The RFQ rates: a CryptoCompare-compatible API when configured, else live tickers."""
    from cryptowire.sources.prices import CryptoCompareRates, TickerRates

    cfg = settings.rfq
    if cfg.cryptocompare_url:
        key = cfg.cryptocompare_api_key
        return CryptoCompareRates(cfg.cryptocompare_url,
                                  api_key=key.get_secret_value() if key else None)
    return TickerRates(parse, demand.acquire, demand.release, hub.watch, hub.unwatch,
                       max_age_ms=int(cfg.max_rate_age_s * 1000), quote_ccy=cfg.quote_currency)


def build_liquidity(store: SqlStore) -> LiquidityProvider:
    """Who fills accepted RFQ quotes: paper trading recorded in the store."""
    from cryptowire.rfq.providers.paper import PaperProvider
    from cryptowire.store.rfq import RfqTrades

    return PaperProvider(RfqTrades(store.engine))


def build_exchanges(settings: Settings, demo: Source | None = None) -> list[Source]:
    """One :class:`~cryptowire.sources.exchange.source.ExchangeSource` per enabled venue
    declared in :mod:`cryptowire.sources.exchange.registry` (Bybit first), each with the demo
    market as its fallback when ``demo`` is given (``demo.mode = "auto"``: live data when the
    venue's REST answers, the demo market when not)."""
    from cryptowire.sources.exchange.registry import VENUES, declare
    from cryptowire.sources.exchange.source import ExchangeSource

    sources: list[Source] = []
    for name in VENUES:
        section = getattr(settings, name)
        if not section.enabled:
            continue
        venue = declare(name, section)
        source = ExchangeSource(
            venue, section, ack_timeout_s=getattr(section, "ack_timeout_s", 10.0),
            connect_timeout_s=getattr(section, "connect_timeout_s", 10.0))
        if demo is not None and venue.probe_url:
            from cryptowire.sources.fallback import FallbackSource

            sources.append(FallbackSource(source, demo, venue.probe_url))
        else:
            sources.append(source)
    return sources


def build_sources(settings: Settings, *, store: SqlStore | None = None,
                  tokens: TokenAdmin | None = None, notifier: TelegramNotifier | None = None,
                  view: NodeParts | None = None) -> list[Source]:
    """The sources of a plain ``cryptowire serve``; earlier ones win a channel kind.

    ``store``, ``tokens`` and ``notifier`` are the node's own (the EVM source needs them, so
    it is built only with them); ``view`` is the node as the seed 004 services and the
    ``bbo`` source read it (without it those are not built).
    """
    from cryptowire.sources.demo import DemoSource

    sources: list[Source] = []
    if settings.evm.enabled and store is not None and tokens is not None:
        # first: it wins the swap/burn kinds over the demo source
        from cryptowire.sources.evm import EvmSource

        sources.append(EvmSource(settings, store=store, admin=tokens,
                                 notifier=notifier))
    demo: DemoSource | None = None
    if settings.demo.mode != "off":
        chain_id = next((c.id for c in settings.evm.chains if c.name == settings.demo.chain), 1)
        demo = DemoSource(settings.demo, chain_id=chain_id)
    if settings.demo.mode != "on":
        sources += build_exchanges(settings, demo)
    if demo is not None:
        sources.append(demo)
    if settings.pgnotify.enabled:
        from cryptowire.sources.pgnotify import PgNotifySource

        sources.append(PgNotifySource(settings.pgnotify, settings.store.url,
                                      store=(lambda: store) if store is not None else None))
    if settings.services.enabled and view is not None:
        from cryptowire.sources.services import ServicesSource

        sources.append(ServicesSource(view))
    if settings.bbo.enabled and view is not None:
        from cryptowire.sources.bbo import BboSource

        sources.append(BboSource(settings.bbo, view))
    return sources
