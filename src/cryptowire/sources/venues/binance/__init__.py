"""Binance USDⓈ-M perpetuals (``@binance``) and spot (``@binance-spot``), sans-I/O.

- :mod:`.markets`: the two markets as declarations (endpoints, stream names per channel,
  symbol mapping, interval map, request builders, limits);
- :mod:`.frames`: combined-stream frames classified (stream data, request replies, server
  shutdown);
- :mod:`.payloads`: stream payloads -> normalized trade, kline, liquidation, ticker (merged
  from ``24hrTicker``, ``bookTicker`` and ``markPriceUpdate``), instrument lists;
- :mod:`.book`: one symbol's local book (:class:`~..binance_book.DepthSync`) cut per
  ``book:<depth>`` channel into snapshot/delta/gap publications (:mod:`.cut`: the delta of
  a cut);
- :mod:`.codec`: the exchange seam's codec (frames -> acks, pongs, notices, data) and one
  state per topic (ticker merge, klines, trades, liquidations, books);
- :mod:`.venue`: :func:`~.venue.declare`, the venue for the seam's supervisor.

Fixtures, documentation pages and the choices made for each field:
``tests/fixtures/binance/README.md``.
"""
