"""The seed 004 data services: periodic publishers on ``service:<name>`` channels.

Each service runs only while someone is subscribed to its channel, at the interval set in
``services.<name>_interval_s``, and reports only what cryptowire itself has (tickers, chain
events, source health, the store, its own jobs, configured news feeds). A service with nothing
to report from says ``"status": "not_configured"`` and why; none invents numbers.
"""

from cryptowire.sources.services.context import NodeView
from cryptowire.sources.services.source import ServicesSource

__all__ = ["NodeView", "ServicesSource"]
