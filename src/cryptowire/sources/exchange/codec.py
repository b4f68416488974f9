"""The sans-I/O half of a venue: what its frames mean, and what a topic's frames publish.

A venue's codec (:class:`~.venue.Codec`) turns one WebSocket text frame into
:data:`Item`\\ s (the shared supervisor acts on them) and makes one :class:`TopicState` per
subscribed topic (it turns the topic's :class:`Data` items into :class:`Pub`\\ lications).
Neither touches a socket or a clock: both are tested with literal frames.

Items a frame may become (a frame may carry several, or none):

- :class:`Ack`: the answer to a subscribe/unsubscribe request, matched by ``req_id`` (the id
  the venue's request builder put in the request); ``ok=False`` refuses it with ``reason``.
  An answer that means "already subscribed" is ``ok=True``: the stream flows, as asked.
- :class:`Pong`: the answer to the client's ping (anything received keeps the watchdog quiet).
- :class:`Reply`: a server-level ping the client must answer with ``text`` (WebSocket-level
  pings are answered by aiohttp itself).
- :class:`Data`: a frame of the stream ``stream`` (the :attr:`~.venue.Stream.key` it was
  subscribed with); ``frame`` is whatever the codec parsed, for its :class:`TopicState`;
  ``seq``/``prev`` the venue's sequence, when it has one (exact socket rotation).
- :class:`Notice`: the venue announces it will drop the socket (Binance ``serverShutdown``,
  OKX notice ``64008``); ``reconnect=True`` replaces the socket now (gap markers follow).

A frame that cannot be understood raises :class:`ValueError` (or ``KeyError``/``TypeError``):
the supervisor counts it in ``errors``, logs it and goes on.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson

from cryptowire.core.channels import Channel
from cryptowire.events import BookData


@dataclass(frozen=True, slots=True)
class Ack:
    req_id: str | None
    ok: bool
    reason: str = ""
    conn_id: str | None = None


@dataclass(frozen=True, slots=True)
class Pong:
    conn_id: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    text: str


@dataclass(frozen=True, slots=True)
class Data:
    """``seq``: the venue's sequence of the frame's last update (the same on every socket:
    Bybit book ``u``, Binance ``u``, OKX ``seqId``, a trade id); ``prev``: the sequence the
    frame follows when the venue says so (Binance futures ``pu``, spot ``U - 1``, OKX
    ``prevSeqId``; ``None``: the previous frame of the stream on the same socket, or none for
    a snapshot). Only a socket rotation reads them (:mod:`.rotation`): with ``seq`` a
    stream's handover is exact; without it, it switches at a frame boundary."""

    stream: str
    frame: Any
    ts: int | None = None
    seq: int | None = None
    prev: int | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    reason: str
    reconnect: bool = False


Item = Ack | Pong | Reply | Data | Notice


@dataclass(frozen=True, slots=True)
class Pub:
    """One publication on one channel: ``type`` ``snapshot``/``update``/``delta``/``gap``,
    ``ts`` the venue's time of it (``ts_source``)."""

    channel: str
    type: str
    data: Any
    ts: int | None = None


def json_object(raw: str | bytes, error: type[Exception]) -> dict[str, Any]:
    """A frame's JSON object, or ``error`` saying why it is none (every venue's first step)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise error(f"not JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise error(f"a JSON {type(obj).__name__}, not an object")
    return obj


#: What a codec or a topic state may raise on a malformed upstream frame (a missing field, a
#: wrong type, a number out of range): the frame is counted and dropped, the socket lives on.
FRAME_ERRORS: tuple[type[Exception], ...] = (
    ValueError, KeyError, TypeError, IndexError, ArithmeticError)


@dataclass(frozen=True, slots=True)
class Break:
    """A book (or any state) that cannot be trusted until it re-synchronised. ``cause`` is the
    ``reason`` label of ``cryptowire_book_resyncs_total`` (``sequence``, ``crossed``,
    ``checksum``, ``malformed``, ``no_snapshot``...); ``reason`` is for the logs."""

    cause: str
    reason: str


#: What a venue's book validator returns when its book cannot be trusted (a :class:`Break`).
BookBreak = Break


@dataclass(frozen=True, slots=True)
class BookChange:
    """A publication of a valid book channel: the whole book cut at its depth
    (``snapshot``) or the levels of the cut that changed (``delta``)."""

    type: Literal["snapshot", "delta"]
    data: BookData


class TopicState(Protocol):
    """The state of one subscribed topic (a ticker merge, a validated book...).

    ``channels`` maps every channel name the topic serves to its parsed channel, read live
    (a channel unsubscribed while a frame's publications are being made gets no more).
    """

    #: Set by :meth:`apply` (or :meth:`on_snapshot`) when the state broke: the supervisor
    #: counts it in ``book_resyncs`` by ``cause``, clears it, and re-synchronises the topic by
    #: its :attr:`~.venue.Topic.resync` strategy. Publish the ``gap`` yourself first.
    broken: Break | None

    def apply(self, data: Data, channels: Mapping[str, Channel]) -> Iterable[Pub]:
        """The publications of one frame of one of the topic's streams."""
        ...

    def reset(self, streams: Collection[str]) -> None:
        """``streams`` (some or all of the topic's) are (re)subscribed on a new socket: their
        next frame starts over (a fresh snapshot). Not called for a re-subscribe after a
        break: the state itself waits for the snapshot that ends it."""
        ...

    def added(self, channel: Channel) -> Iterable[Pub]:
        """A channel joined a topic already flowing (e.g. another depth of the same Binance
        book): what it should get now (usually nothing; a snapshot of its cut for books)."""
        ...

    def snapshot_request(self) -> str | None:
        """For ``resync="snapshot"`` topics: the REST path+query (joined to the market's REST
        base) of the snapshot the state waits for now, or ``None``. Asked after every frame
        and every :meth:`on_snapshot`; one fetch at a time per topic, retried with backoff."""
        ...

    def on_snapshot(self, body: Any, channels: Mapping[str, Channel]) -> Iterable[Pub]:
        """The JSON body of the REST snapshot asked by :meth:`snapshot_request`, decoded by
        :func:`cryptowire.jsonnum.loads_exact` (a number with a fraction is an
        ``orjson.Fragment`` of its exact text, never a float)."""
        ...


class BaseState:
    """Defaults for a :class:`TopicState`: nothing to add, no REST snapshot."""

    broken: Break | None = None

    def apply(self, data: Data, channels: Mapping[str, Channel]) -> Iterable[Pub]:
        raise NotImplementedError

    def reset(self, streams: Collection[str]) -> None:
        return None

    def added(self, channel: Channel) -> Iterable[Pub]:
        return ()

    def snapshot_request(self) -> str | None:
        return None

    def on_snapshot(self, body: Any, channels: Mapping[str, Channel]) -> Iterable[Pub]:
        return ()
