"""``bbo:<SYMBOL>``: the consolidated best bid and offer across venues (PROTOCOLS.md 4.5).

:mod:`~cryptowire.sources.bbo.consolidation` is the pure rule (venues in and out, staleness,
exact comparisons, ties); :mod:`~cryptowire.sources.bbo.source` the source that feeds it from
the venues' book channels, in process (:mod:`~cryptowire.sources.bbo.feeds`: what it reads
of the node and keeps per book).
"""

from cryptowire.sources.bbo.consolidation import Consolidation, VenueTop
from cryptowire.sources.bbo.feeds import BboNode
from cryptowire.sources.bbo.source import BboSource

__all__ = ["BboNode", "BboSource", "Consolidation", "VenueTop"]
