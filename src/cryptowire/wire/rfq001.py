"""The seed 001 RFQ dialect on ``/rfq`` (PROTOCOLS.md 2.4), sans-I/O.

Client frames: ``{"rfq": {"action": A, "uuid": U, ...}}`` (the bare object is accepted too),
or the channel form ``{"subscribe": "ch"}``, ``{"unsubscribe": "ch"}``, ``{"current": "ch"}``.
Server frames are plain JSON objects; errors are ``{"status":"error","error":{"message":..}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from cryptowire.events import Publication
from cryptowire.wire.dialect import Invalid
from cryptowire.wire.frames import text_frame

ACTIONS = ("startSession", "updateSession", "stopSession", "acceptOffer", "placeOrder")
CHANNEL_OPS = ("subscribe", "unsubscribe", "current")


class RfqFrameError(ValueError):
    """A frame that cannot be understood; ``str()`` is the message for the client."""


@dataclass(slots=True)
class RfqAction:
    action: str
    body: dict[str, Any]


@dataclass(slots=True)
class ChannelOp:
    op: str
    channels: list[str]


def parse(text: str | bytes) -> RfqAction | ChannelOp:
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise RfqFrameError(f"Invalid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise RfqFrameError("Expected a JSON object such as {\"rfq\": {\"action\": ...}}.")
    for op in CHANNEL_OPS:
        if op in obj:
            value = obj[op]
            names = value if isinstance(value, list) else [value]
            if not names or not all(isinstance(n, str) and n for n in names):
                raise RfqFrameError(f"'{op}' takes a channel name or a list of them.")
            return ChannelOp(op, names)
    body = obj.get("rfq", obj)
    if not isinstance(body, dict):
        raise RfqFrameError("'rfq' must be an object with an 'action'.")
    action = body.get("action")
    if action not in ACTIONS:
        raise RfqFrameError(f"Unknown action {action!r}. Use one of: {', '.join(ACTIONS)}.")
    return RfqAction(action, body)


def frame(obj: dict[str, Any]) -> bytes:
    return text_frame(orjson.dumps(obj))


def error(message: str, **extra: Any) -> bytes:
    return frame({"status": "error", "error": {"message": message, **extra}})


def handshake(uuid: str) -> bytes:
    return frame({"handshake": uuid})


class RfqEncoder:
    """Hub publications on the channel form: ``{"channel", "data"}`` as the seed's channels
    sent them (the decimal strings unchanged)."""

    name = "rfq001"

    def frame_publication(self, pub: Publication) -> bytes | None:
        head = orjson.dumps({"channel": pub.channel, "type": pub.type, "ts": pub.ts})
        return text_frame(head[:-1] + b',"data":' + pub.data_json + b"}")


class RfqDialect:
    """The 001 socket's frames (:class:`~cryptowire.wire.dialect.Dialect`)."""

    name = "rfq001"

    def encoder(self) -> RfqEncoder:
        return RfqEncoder()

    def refused(self, code: str, message: str) -> bytes:
        return error(message)

    def no_key(self, timeout_s: float) -> bytes:
        return error(f"No API key within {timeout_s:g} s.")

    def dropped(self, rate: int) -> bytes:
        return error("Rate limit exceeded; message dropped.")

    def flooding(self) -> bytes:
        return error("Flooding: closing.")

    def new_state(self) -> None:
        return None  # the session's RFQ state is the server's RfqConnection (it does I/O)

    def parse(self, text: str, state: object = None) -> RfqAction | ChannelOp | Invalid:
        """An action or a channel op, or the error reply."""
        try:
            return parse(text)
        except RfqFrameError as exc:
            return Invalid(error(str(exc)))

    def binary(self) -> bytes:
        return error("Binary frames are not supported; send JSON text.")
