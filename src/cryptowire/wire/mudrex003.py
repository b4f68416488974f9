"""The seed 003 (Mudrex) dialect on ``/ws``: the native ops (:mod:`cryptowire.wire.native`)
with the 003 data envelope (``server.envelope = "mudrex"``). It does no I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from cryptowire.core.channels import KLINE_INTERVALS
from cryptowire.events import Publication
from cryptowire.wire.frames import text_frame
from cryptowire.wire.native import NativeDialect, NativeEncoder

if TYPE_CHECKING:
    from cryptowire.core.session import Encoder


class MudrexEncoder:
    """The seed 003 envelope ``{"stream","type","data","timestamp","source"}`` for market
    channels, as the 003 transformer named its streams: ``mudrex.futures.ticker.<SYMBOL>``,
    ``mudrex.futures.trade.<SYMBOL>``, ``mudrex.futures.kline.<bybit interval>.<SYMBOL>``
    (``mudrex.spot...`` for ``@spot``); ``type`` is ``snapshot`` or ``update``, the only two
    a 003 client knows, so gap markers are not sent in this envelope. Other channels keep
    the native frame: those 003 never had, among them ``book:`` (alias
    ``orderbook.50.BTCUSDT``, which a 003-dialect client may ask for) and ``liquidation:``,
    whose deltas and gaps the 003 envelope has no shape for (docs/protocol.md)."""

    name = "mudrex"

    def __init__(self) -> None:
        self._native = NativeEncoder()

    def frame_publication(self, pub: Publication) -> bytes | None:
        kind, _, rest = pub.channel.partition(":")
        if kind not in ("ticker", "trade", "kline"):
            return self._native.frame_publication(pub)
        if pub.type not in ("snapshot", "update"):
            return None
        rest, _, venue = rest.partition("@")
        market = "spot" if venue == "spot" else "futures"
        if kind == "kline":
            interval, _, symbol = rest.partition(":")
            stream = f"mudrex.{market}.kline.{KLINE_INTERVALS.get(interval, interval)}.{symbol}"
        else:
            stream = f"mudrex.{market}.{kind}.{rest}"
        head = {"stream": stream, "type": pub.type}
        tail = orjson.dumps({"timestamp": pub.ts, "source": "mudrex"})
        return text_frame(orjson.dumps(head)[:-1] + b',"data":' + pub.data_json + b","
                          + tail[1:])


    def frame_batch(self, pubs: list[Publication]) -> bytes | None:
        """A conflated interval's events: the 003 envelope has no batch, so a 003 stream
        gets each event as its own ``update`` frame, all of them in one write; other
        channels get the native batch."""
        if pubs[0].channel.partition(":")[0] not in ("ticker", "trade", "kline"):
            return self._native.frame_batch(pubs)
        frames = [f for f in map(self.frame_publication, pubs) if f is not None]
        return b"".join(frames) if frames else None


class MudrexDialect(NativeDialect):
    """The native ops and replies with the 003 data envelope."""

    name = "mudrex"

    def encoder(self) -> Encoder:
        return MudrexEncoder()
