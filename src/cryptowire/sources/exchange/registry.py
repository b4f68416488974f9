"""Which venues a hub can run: venue name -> ``"module:function"`` of its declaration factory.

The factory takes the venue's settings section (``settings.<name>``, which must exist in
the settings package with at least ``enabled``) and returns its
:class:`~cryptowire.sources.exchange.venue.Venue` with the configured URLs.
:func:`cryptowire.app.wiring.build_sources` builds one
:class:`~cryptowire.sources.exchange.source.ExchangeSource` per enabled entry, in this order
(imported only then). A venue helper adds its one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from cryptowire.sources.exchange.venue import Venue

VENUES: dict[str, str] = {
    "bybit": "cryptowire.sources.bybit.venue:declare",
    "binance": "cryptowire.sources.venues.binance.venue:declare",
    "okx": "cryptowire.sources.venues.okx.venue:declare",
}


def factory(name: str) -> Callable[[Any], Venue]:
    """The declaration factory of venue ``name`` (:class:`KeyError` if none is registered)."""
    module, _, function = VENUES[name].partition(":")
    made: Callable[[Any], Venue] = getattr(importlib.import_module(module), function)
    return made


def declare(name: str, section: Any) -> Venue:
    """Venue ``name`` declared with its settings section."""
    return factory(name)(section)
