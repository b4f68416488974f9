"""On-chain swaps and burns from EVM chains (DESIGN.md "Sources: evm", PROTOCOLS.md 2.3).

``rpc`` (URL pool), ``decode`` (logs to events, sans I/O), ``watcher`` (one task per chain),
``tokens`` (watchlist admin), ``source`` (the :class:`~cryptowire.core.source.Source`).
The records (tracked token, on-chain event) are the vocabulary module
:mod:`cryptowire.onchain`.
"""

from cryptowire.sources.evm.source import EvmSource

__all__ = ["EvmSource"]
