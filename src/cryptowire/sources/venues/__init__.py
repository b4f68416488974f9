"""Venue declarations and sans-I/O venue parsers (issue 14: Binance and OKX beside Bybit).

Issue 14 puts every exchange behind one seam: a venue is declarations (endpoints, topic
names, symbol mapping, subscribe/ack/ping formats, limits) plus sans-I/O parsers from its
frames to the normalized events, served by one shared connection supervisor. This package
holds those declarations and parsers (Bybit's are in :mod:`cryptowire.sources.bybit`), and the
venue-specific book checks, pure and tested against the fixtures in ``tests/fixtures/<venue>/``:

- :mod:`.binance_book`: Binance's documented local order book procedure (REST depth
  snapshot plus the buffered diff stream, ``U``/``u`` on spot, ``pu`` on USD-M futures);
- :mod:`.okx_book`: OKX's book checksum (CRC32 over the top 25 levels) and its
  ``seqId``/``prevSeqId`` continuity rule;
- :mod:`.binance`: Binance USDⓈ-M and spot declared on the exchange seam (declaration,
  codec, topic states, the books cut per depth from :mod:`.binance_book`);
- :mod:`.okx`: OKX (``@okx`` USDT swaps, ``@okx-spot``) declared on the exchange seam
  (:mod:`cryptowire.sources.exchange`): protocol, instruments, parsers, validated books with
  their depth cut views, the codec and the declaration.

No module here does I/O: bytes and parsed frames in, decisions out.
"""
