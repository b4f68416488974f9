"""What the client yields and returns, and the sans-I/O parser of server frames.

Server frames are those of the native protocol (``docs/protocol.md``): data frames
``{"channel","type","epoch","offset","ts","source"?,"data"}``, the batch frames of a conflated
subscription ``{"channel","type":"batch","epoch","offsets":[from,to],"ts","source"?,
"data":[...]}``, replies that echo the request ``id``, ``{"op":"error",...}`` and
``{"op":"pong",...}``. :func:`parse_frame` turns one text frame into a :class:`Message`, a
:class:`Batch` or a :class:`Reply`; it does no I/O and keeps no state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Message:
    """One publication on a channel, with its place in the channel's history.

    ``data`` is the JSON payload as sent; money fields are decimal strings, never floats.
    """

    channel: str
    type: str
    epoch: str
    offset: int
    ts: int
    source: str
    data: Any

    def to_dict(self) -> dict[str, Any]:
        """The native data frame this message came from (``source`` omitted when empty)."""
        out: dict[str, Any] = {"channel": self.channel, "type": self.type,
                               "epoch": self.epoch, "offset": self.offset, "ts": self.ts}
        if self.source:
            out["source"] = self.source
        out["data"] = self.data
        return out


@dataclass(frozen=True, slots=True)
class Batch:
    """The events of one channel that a conflated subscription (``interval_ms``) received in
    one interval: ``data[i]`` is the event at offset ``first + i``; ``ts`` is the last one's.

    The client does not yield it: it yields one :class:`Message` per event (:meth:`messages`),
    so recovery, dedupe and gap detection work per event as without conflation.
    """

    channel: str
    epoch: str
    first: int
    ts: int
    source: str
    data: tuple[Any, ...]

    def messages(self) -> list[Message]:
        """One ``update`` message per event, in offset order, each with the batch's ``ts``
        (a batch carries one time: the last event's)."""
        return [Message(self.channel, "update", self.epoch, self.first + i, self.ts,
                        self.source, data) for i, data in enumerate(self.data)]


@dataclass(frozen=True, slots=True)
class Gap:
    """Messages of ``channel`` were lost and cannot be recovered; ``reason`` says why.

    The stream of ``channel`` goes on after it with live messages.
    """

    channel: str
    reason: str


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The live connection dropped; the client retries in ``retry_in_s`` seconds.

    ``code`` is the WebSocket close code (``None`` when the connection just vanished).
    """

    code: int | None
    reason: str
    retry_in_s: float


@dataclass(frozen=True, slots=True)
class Reconnected:
    """A new connection is up and authenticated; subscriptions are being recovered.

    Recovered messages (or a :class:`Gap` per channel that could not be recovered) follow.
    """

    attempts: int
    downtime_s: float


#: Everything ``async for item in client`` yields.
ClientEvent = Message | Gap | Disconnected | Reconnected


@dataclass(frozen=True, slots=True)
class Position:
    """A place in a channel's history: the epoch and the offset of a message."""

    channel: str
    epoch: str
    offset: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """A channel the hub refused, with its human-readable reason."""

    arg: str
    reason: str


@dataclass(frozen=True, slots=True)
class SubscribeReply:
    """The hub's answer to ``subscribe``: accepted channels (canonical names), rejections,
    the current position of each newly subscribed channel and, for recovered channels,
    whether history still covered them."""

    channels: tuple[str, ...]
    rejected: tuple[Rejected, ...]
    positions: Mapping[str, Position]
    recovered: Mapping[str, bool]
    message: str
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> SubscribeReply:
        positions = {
            ch: Position(ch, str(pos.get("epoch", "")), int(pos.get("offset", 0)))
            for ch, pos in (raw.get("positions") or {}).items()
            if isinstance(pos, dict)
        }
        recovered = {str(ch): bool(ok) for ch, ok in (raw.get("recovered") or {}).items()}
        return cls(
            channels=tuple(str(c) for c in raw.get("args") or ()),
            rejected=_rejected(raw),
            positions=positions,
            recovered=recovered,
            message=str(raw.get("message", "")),
            raw=raw,
        )


@dataclass(frozen=True, slots=True)
class UnsubscribeReply:
    """The hub's answer to ``unsubscribe``: the channels removed, and those it could not."""

    channels: tuple[str, ...]
    rejected: tuple[Rejected, ...]
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_raw(cls, raw: Mapping[str, Any]) -> UnsubscribeReply:
        return cls(channels=tuple(str(c) for c in raw.get("args") or ()),
                   rejected=_rejected(raw), raw=raw)


def _rejected(raw: Mapping[str, Any]) -> tuple[Rejected, ...]:
    return tuple(
        Rejected(str(r.get("arg", "")), str(r.get("reason", "")))
        for r in raw.get("rejected") or ()
        if isinstance(r, dict)
    )


@dataclass(frozen=True, slots=True)
class Reply:
    """A frame that is not data: a reply (``id`` echoed when the request had one), an
    ``error`` or a ``pong``."""

    op: str
    id: int | str | None
    body: Mapping[str, Any]

    @property
    def is_error(self) -> bool:
        return self.op == "error"


class FrameError(ValueError):
    """A server frame that is not the native protocol (logged and skipped by the client)."""


def parse_frame(text: str | bytes) -> Message | Batch | Reply:
    """Parse one server text frame.

    A frame in the seed 003 envelope (``server.envelope = "mudrex"``) has no epoch/offset;
    it becomes a :class:`Message` on channel ``stream`` with epoch ``""`` and offset ``-1``,
    which the client neither deduplicates nor recovers.
    """
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise FrameError(f"server frame is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise FrameError("server frame is not a JSON object")
    if obj.get("type") == "batch" and "channel" in obj:
        return _batch(obj)
    if "channel" in obj and "offset" in obj:
        try:
            return Message(
                channel=str(obj["channel"]),
                type=str(obj.get("type", "update")),
                epoch=str(obj["epoch"]),
                offset=int(obj["offset"]),
                ts=int(obj.get("ts", 0)),
                source=str(obj.get("source", "")),
                data=obj.get("data"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise FrameError(f"malformed data frame: {exc}") from exc
    if "stream" in obj and "data" in obj:
        return Message(channel=str(obj["stream"]), type=str(obj.get("type", "update")),
                       epoch="", offset=-1, ts=int(obj.get("timestamp", 0)),
                       source=str(obj.get("source", "")), data=obj["data"])
    op = obj.get("op")
    if isinstance(op, str):
        rid = obj.get("id")
        if isinstance(rid, bool) or not isinstance(rid, int | str | None):
            rid = None
        return Reply(op=op, id=rid, body=obj)
    raise FrameError(f"unknown server frame: {str(obj)[:120]}")


def _batch(obj: dict[str, Any]) -> Batch:
    """A ``batch`` frame (docs/protocol.md, "Conflation"), checked: ``offsets`` is
    ``[from, to]`` and ``data`` holds exactly ``to - from + 1`` events."""
    offsets, data = obj.get("offsets"), obj.get("data")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
            or not isinstance(data, list) or len(data) != offsets[1] - offsets[0] + 1):
        raise FrameError("malformed batch frame: 'offsets' must be [from, to] and 'data' "
                         f"hold to - from + 1 events (offsets {offsets!r}, "
                         f"{len(data) if isinstance(data, list) else 'no'} events)")
    try:
        return Batch(channel=str(obj["channel"]), epoch=str(obj["epoch"]), first=offsets[0],
                     ts=int(obj.get("ts", 0)), source=str(obj.get("source", "")),
                     data=tuple(data))
    except (KeyError, TypeError, ValueError) as exc:
        raise FrameError(f"malformed batch frame: {exc}") from exc
