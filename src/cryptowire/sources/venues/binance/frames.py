"""Binance combined-stream frames, classified, sans-I/O.

A connection to ``…/stream`` (combined streams) receives:

- ``{"stream":"btcusdt@aggTrade","data":{...}}``: a stream's payload (:class:`StreamFrame`);
- ``{"result":null,"id":4}``: the answer to a ``SUBSCRIBE``/``UNSUBSCRIBE`` (:class:`Reply`;
  ``LIST_SUBSCRIPTIONS`` answers with a list in ``result``);
- ``{"error":{"code":2,"msg":"..."},"id":6}`` (USDⓈ-M futures) or ``{"code":2,"msg":"...",
  "id":6}`` (spot, "Error Messages"): a refused request (:class:`Reply` with ``error``);
- ``{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":..}}`` (spot): the server is
  about to go down, reconnect now (:class:`Shutdown`).

Pings are WebSocket ping frames (futures every 3 minutes, spot every 20 s); the client's
WebSocket library answers them with a pong carrying the same payload, nothing here.
Anything else is a :class:`MalformedFrameError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptowire.errors import SourceError
from cryptowire.sources.exchange.codec import json_object


class MalformedFrameError(SourceError, ValueError):
    """A Binance frame or payload that cannot be understood; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"malformed Binance frame: {reason}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class StreamFrame:
    stream: str
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to request ``id``; ``error`` is ``"<code>: <msg>"`` when refused."""

    id: int | None
    result: Any = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Shutdown:
    time: int | None


Frame = StreamFrame | Reply | Shutdown


def parse_frame(raw: str | bytes) -> Frame:
    """Classify one text frame (see the module docstring)."""
    return classify(json_object(raw, MalformedFrameError))


def classify(obj: Mapping[str, Any]) -> Frame:
    stream = obj.get("stream")
    if stream is not None:
        data = obj.get("data")
        if not isinstance(stream, str) or not isinstance(data, dict):
            raise MalformedFrameError("'stream' is not a string or 'data' not an object")
        if stream == "!serverShutdown" or data.get("e") == "serverShutdown":
            time = data.get("E")
            return Shutdown(time if _is_int(time) else None)
        return StreamFrame(stream, data)
    request_id = obj.get("id")
    if request_id is not None and not _is_int(request_id):
        raise MalformedFrameError(f"'id' is {request_id!r}, not an integer")
    error = obj.get("error")
    if isinstance(error, dict):
        return Reply(request_id, error=f"{error.get('code')}: {error.get('msg')}")
    if "code" in obj and "msg" in obj:
        return Reply(request_id, error=f"{obj.get('code')}: {obj.get('msg')}")
    if "result" in obj:
        return Reply(request_id, result=obj["result"])
    raise MalformedFrameError("neither a stream frame nor a reply")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
