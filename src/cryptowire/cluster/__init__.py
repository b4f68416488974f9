"""Cluster mode: one ingestion per source, demand as the union of every node's (Redis only).

``lease`` (a Redis lease with a fencing token), ``demand`` (every node's subscriptions in
Redis, verdicts and changes pushed over pub/sub), ``leader`` (a source that runs only where
its lease is), ``factory`` (:func:`~cryptowire.cluster.factory.create_cluster`, the one
place that picks local or cluster mode).
"""
