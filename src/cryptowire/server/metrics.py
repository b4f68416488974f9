"""``/metrics``: Prometheus text, read from the node's plain counters at scrape time.

The hub only increments integers on its hot path; this collector turns them into metric
families when Prometheus scrapes, in a registry of the node's own (several nodes in one
test process do not collide).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from cryptowire.server.node import ServerNode
from cryptowire.sources.evm.rpc import public_rpc_entry

_STATES = ("starting", "up", "connecting", "down", "stopped")


class NodeCollector(Collector):
    def __init__(self, node: ServerNode) -> None:
        self.node = node

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        node = self.node
        hs = node.hub.stats
        c = node.counters
        yield GaugeMetricFamily("cryptowire_connections", "Open WebSocket sessions.",
                                value=len(node.hub.sessions))
        yield GaugeMetricFamily(
            "cryptowire_subscriptions", "Subscriptions over all sessions.",
            value=sum(len(s.channels) for s in node.hub.sessions.values()))
        yield GaugeMetricFamily("cryptowire_outbound_bytes",
                                "Bytes the sessions' transports held at their last writes.",
                                value=node.hub.outbound_bytes)
        yield GaugeMetricFamily("cryptowire_upstream_topics", "Channels with upstream demand.",
                                value=len(node.demand.active()))
        conflation = node.hub.conflation
        yield GaugeMetricFamily("cryptowire_conflated_sessions",
                                "Sessions with a conflated (interval_ms) subscription.",
                                value=conflation.sessions())
        yield GaugeMetricFamily("cryptowire_conflation_groups",
                                "Conflation groups (channel and interval) with members.",
                                value=conflation.groups())
        yield GaugeMetricFamily(
            "cryptowire_history_bytes",
            "Bytes of history held in this process (bounded by history.max_bytes).",
            value=node.broker.history_bytes())
        for name, value, doc in (
            ("connections", c.connections_total, "Sessions opened."),
            ("messages_in", c.messages_in, "Client frames received."),
            ("messages_out", hs.messages_out, "Data frames queued to sessions."),
            ("bytes_out", hs.bytes_out, "Data frame bytes queued to sessions."),
            ("publications", hs.publications, "Publications delivered to this hub."),
            ("slow_consumer_closes", hs.slow_consumer_closes, "Sessions closed with 4008."),
            ("outbound_budget_closes", hs.outbound_budget_closes,
             "Of those, closed over server.max_outbound_bytes (largest buffers first)."),
            ("dropped_frames", hs.dropped, "Frames dropped with a closed slow consumer."),
            ("conflated_frames", conflation.frames,
             "Conflated frames (batch or snapshot at an interval's end) queued to sessions."),
            ("conflation_encodes", conflation.encodes,
             "Conflated frames encoded (once per dialect per group and interval)."),
            ("rate_limited", c.rate_limited, "Client frames refused by the rate limit."),
            ("rate_limit_closes", c.rate_limit_closes, "Sessions closed with 4009."),
            ("ping_timeouts", c.ping_timeouts, "Sessions closed with 4011 (no pong in time)."),
            ("rejected_connections", c.rejected_connections, "Connections refused (4003)."),
            ("errors_sent", c.errors_sent, "Error replies sent."),
        ):
            yield CounterMetricFamily(f"cryptowire_{name}", doc, value=value)
        state = GaugeMetricFamily("cryptowire_source_state", "1 for the state a source is in.",
                                  labels=["source", "state"])
        msgs = CounterMetricFamily("cryptowire_source_messages", "Events from a source.",
                                   labels=["source"])
        errs = CounterMetricFamily("cryptowire_source_errors", "Upstream errors of a source.",
                                   labels=["source"])
        rejected = CounterMetricFamily(
            "cryptowire_source_rejected",
            "Upstream messages a source refused one by one (not JSON, cannot be encoded).",
            labels=["source"])
        resyncs = CounterMetricFamily(
            "cryptowire_book_resyncs",
            "Order books a source re-synchronised after a break (gap, then a new snapshot), "
            "by cause: sequence, no_snapshot, malformed, crossed.",
            labels=["source", "reason"])
        for st in node.source_statuses():
            for cause, count in sorted(st.book_resyncs.items()):
                resyncs.add_metric([st.name, cause], count)
            for s in _STATES:
                state.add_metric([st.name, s], 1.0 if st.state == s else 0.0)
            msgs.add_metric([st.name], st.messages)
            errs.add_metric([st.name], st.errors)
            rejected.add_metric([st.name], st.rejected)
        yield state
        yield msgs
        yield errs
        yield rejected
        yield resyncs
        yield from _rpc_families(node)


def _rpc_families(node: ServerNode) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """Per-URL RPC pool health of the chain watchers (``extra["chains"][name]["rpc"]``).

    The ``url`` label is the URL's redacted label (``#2 https://host/***``, see
    :func:`~cryptowire.redaction.redact_url`), never the configured URL: /metrics is
    unauthenticated and provider keys live in the path or query."""
    labels = ["chain", "url"]
    healthy = GaugeMetricFamily("cryptowire_rpc_url_healthy",
                                "1 when an RPC URL is in rotation, 0 while benched.", labels=labels)
    latency = GaugeMetricFamily("cryptowire_rpc_url_latency_ms",
                                "Last call latency of an RPC URL in ms.", labels=labels)
    calls = CounterMetricFamily("cryptowire_rpc_url_calls", "Calls to an RPC URL.", labels=labels)
    errors = CounterMetricFamily("cryptowire_rpc_url_errors", "Failed calls.", labels=labels)
    limited = CounterMetricFamily("cryptowire_rpc_url_rate_limited", "429 answers.",
                                  labels=labels)
    failovers = CounterMetricFamily("cryptowire_rpc_url_failovers",
                                    "Calls moved to the next URL after this one failed.",
                                    labels=labels)
    lag = GaugeMetricFamily("cryptowire_chain_block_lag", "Head minus the watcher's cursor.",
                            labels=["chain"])
    for st in node.source_statuses():
        chains = st.extra.get("chains")
        if not isinstance(chains, dict):
            continue
        for chain, info in chains.items():
            if not isinstance(info, dict):
                continue
            if isinstance(info.get("lag"), int):
                lag.add_metric([chain], info["lag"])
            entries = [e for e in info.get("rpc") or () if isinstance(e, dict)]
            for position, entry in enumerate(entries, start=1):
                url = public_rpc_entry(entry, position)
                key = [chain, url["label"]]
                healthy.add_metric(key, 1.0 if url.get("healthy") else 0.0)
                if url.get("latency_ms") is not None:
                    latency.add_metric(key, url["latency_ms"])
                calls.add_metric(key, url.get("calls", 0))
                errors.add_metric(key, url.get("errors", 0))
                limited.add_metric(key, url.get("rate_limited", 0))
                failovers.add_metric(key, url.get("failovers", 0))
    yield from (healthy, latency, calls, errors, limited, failovers, lag)


def registry_for(node: ServerNode) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
