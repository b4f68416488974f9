"""The seed 002 dialect (postgres-websockets) on ``/pg/<JWT>``: ``{"channel": C, "payload":
{...}}`` frames for ``pg:C`` updates; client messages are ignored. It does no I/O."""

from __future__ import annotations

import orjson

from cryptowire.events import Publication
from cryptowire.wire.dialect import IGNORED, Ignored
from cryptowire.wire.frames import text_frame


class PgEncoder:
    """``{"channel": C, "payload": <data>}`` for ``pg:C`` updates; gap markers and other
    channels are not part of this dialect."""

    name = "pg002"

    def frame_publication(self, pub: Publication) -> bytes | None:
        kind, _, channel = pub.channel.partition(":")
        if kind != "pg" or pub.type == "gap":
            return None
        return text_frame(b'{"channel":' + orjson.dumps(channel) + b',"payload":'
                          + pub.data_json + b"}")


class PgDialect:
    """The 002 socket (:class:`~cryptowire.wire.dialect.Dialect`): client messages are
    ignored, so there is nothing to answer them with."""

    name = "pg002"

    def encoder(self) -> PgEncoder:
        return PgEncoder()

    def refused(self, code: str, message: str) -> None:
        return None

    def no_key(self, timeout_s: float) -> None:
        return None

    def dropped(self, rate: int) -> None:
        return None

    def flooding(self) -> None:
        return None

    def binary(self) -> None:
        return None

    def new_state(self) -> None:
        return None

    def parse(self, text: str, state: object = None) -> Ignored:
        return IGNORED  # write mode is not supported
