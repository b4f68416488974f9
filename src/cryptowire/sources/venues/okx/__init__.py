"""OKX v5 (USDT swaps ``@okx``, spot ``@okx-spot``), sans-I/O.

- :mod:`.protocol`: endpoints (``/ws/v5/public``, candles on ``/ws/v5/business``), the OKX
  arguments of each hub channel, requests, frame kinds (acks, errors, notices, pushes, the
  text ``pong``);
- :mod:`.instruments`: ``BTCUSDT`` <-> ``BTC-USDT-SWAP`` / ``BTC-USDT`` from the instrument
  lists, and swap contracts -> base units (``ctVal``, exact);
- :mod:`.parser`: ``tickers`` + ``funding-rate`` + ``mark-price`` merged into one ticker,
  trades, candles, liquidations -> the normalized payloads of ``cryptowire.events``;
- :mod:`.book`: the ``books`` stream validated (``seqId``/``prevSeqId``, checksum when
  non-zero, crossed) and published as ``book:<depth>`` snapshots and cut deltas.

The checksum and sequence rule themselves are :mod:`cryptowire.sources.venues.okx_book`.
"""
