"""``bbo:<SYMBOL>``: the consolidated best bid and offer across venues (PROTOCOLS.md 4.5).

:mod:`~cryptowire.sources.bbo.consolidation` is the pure rule (venues in and out, staleness,
exact comparisons, ties); :mod:`~cryptowire.sources.bbo.source` the source that feeds it from
the venues' book channels, in process.
"""

from cryptowire.sources.bbo.consolidation import Consolidation, VenueTop
from cryptowire.sources.bbo.source import BboNode, BboSource

__all__ = ["BboNode", "BboSource", "Consolidation", "VenueTop"]
