"""``BybitSource``: Bybit V5 public market data (tickers, trades, klines, order books,
liquidations) as cryptowire events: the shared
:class:`~cryptowire.sources.exchange.source.ExchangeSource` on the Bybit declaration
(:mod:`.venue`).

One supervised socket per category, opened when the first topic of that category is
subscribed. A channel's symbol is checked against Bybit's instruments list first, so an
unknown symbol is refused with a reason before anything goes upstream; without that list the
subscribe ack decides. Events carry the channel name the core subscribed with, Bybit's ``ts``
as ``ts_source`` and ``source="bybit"``; a ticker event always carries the full merged state.

Event types: ``snapshot`` for the first frame of a ticker or kline topic after each
(re)subscribe and for a linear ticker snapshot (a reset), ``update`` otherwise (trades and
liquidations are always ``update``), and ``gap`` with ``{"reason": .., "since": <ms of the
last frame before the loss>}`` for every affected channel after a reconnect, published before
any data of the new socket. Book channels get ``snapshot`` / ``delta`` / ``gap`` as
:mod:`.book` validates them (PROTOCOLS.md 4.1); each break is counted by cause in
``SourceStatus.book_resyncs``.
"""

from __future__ import annotations

from cryptowire.settings import BybitSettings
from cryptowire.sources.bybit.venue import declare
from cryptowire.sources.exchange.instruments import InstrumentCatalog
from cryptowire.sources.exchange.source import ExchangeSource


class BybitSource(ExchangeSource):
    """The Bybit V5 public source (``name="bybit"``, kinds ticker, trade, kline, book,
    liquidation; venues ``linear`` and ``spot``).

    ``ping_interval_s``: period of ``{"op":"ping"}``; ``watchdog_s``: a socket silent this
    long is replaced; ``backoff_max_s``: cap of the reconnect backoff; ``ack_timeout_s``: how
    long ``subscribe`` waits for Bybit's answer.
    """

    def __init__(
        self,
        settings: BybitSettings,
        *,
        ping_interval_s: float = 20.0,
        watchdog_s: float = 30.0,
        backoff_max_s: float = 30.0,
        ack_timeout_s: float = 10.0,
        instruments: InstrumentCatalog | None = None,
    ) -> None:
        super().__init__(declare(settings), settings, ping_interval_s=ping_interval_s,
                         watchdog_s=watchdog_s, backoff_max_s=backoff_max_s,
                         ack_timeout_s=ack_timeout_s, instruments=instruments)
