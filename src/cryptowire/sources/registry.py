"""Which sources a hub runs, from its settings. A new source is one module plus a line here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cryptowire.core.source import Source
from cryptowire.settings import Settings

if TYPE_CHECKING:
    from cryptowire.core.node import Node
    from cryptowire.sources.evm.source import NotifierFactory


def build_sources(settings: Settings, node: Node | None = None) -> list[Source]:
    """The sources of a plain ``cryptowire serve``; earlier ones win a channel kind.

    ``node`` is given by :meth:`Node.start` for sources that read the node itself (the
    seed 004 services, the pg mirror's store); without it those are not built.
    """
    from cryptowire.sources.demo import DemoSource

    sources: list[Source] = []
    if settings.evm.enabled:  # first: it wins the swap/burn kinds over the demo source
        from cryptowire.sources.evm import EvmSource

        sources.append(EvmSource(settings, notifier=_telegram(settings)))
    demo: DemoSource | None = None
    if settings.demo.mode != "off":
        chain_id = next((c.id for c in settings.evm.chains if c.name == settings.demo.chain), 1)
        demo = DemoSource(settings.demo, chain_id=chain_id)
    if settings.bybit.enabled and settings.demo.mode != "on":
        from cryptowire.sources.bybit import BybitSource

        bybit = BybitSource(settings.bybit)
        if demo is not None:  # auto: live Bybit when reachable, the demo market when not
            from cryptowire.sources.fallback import FallbackSource

            probe = f"{settings.bybit.rest_url.rstrip('/')}/v5/market/instruments-info" \
                    "?category=linear&limit=1"
            sources.append(FallbackSource(bybit, demo, probe))
        else:
            sources.append(bybit)
    if demo is not None:
        sources.append(demo)
    if settings.pgnotify.enabled:
        from cryptowire.sources.pgnotify import PgNotifySource

        store = (lambda: node.store) if node is not None else None
        sources.append(PgNotifySource(settings.pgnotify, settings.store.url, store=store))
    if settings.services.enabled and node is not None:
        from cryptowire.sources.services import ServicesSource

        sources.append(ServicesSource(node))
    return sources


def _telegram(settings: Settings) -> NotifierFactory | None:
    """The Telegram notifier the on-chain source feeds, when one is configured."""
    tg = settings.telegram
    if not tg.enabled or tg.bot_token is None:
        return None
    from cryptowire.notify.telegram import TelegramNotifier

    chains = settings.evm.chains
    return lambda store: TelegramNotifier(tg, store, chains)
