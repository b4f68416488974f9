"""The streams of one socket and the requests awaiting the venue's ack (bookkeeping only).

Which streams are desired, whether each was requested and acknowledged on the current
socket, whether a lost socket left a gap to announce, and which ``req_id`` answers which
request. An ack resolves its request's future with the :class:`~.codec.Ack`; a lost socket
resolves every pending one with ``None`` (the streams stay desired and are sent again on
connect).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from cryptowire.sources.exchange.codec import Ack
from cryptowire.sources.exchange.venue import Market, Op, Stream

AckFuture = asyncio.Future[Ack | None]


@dataclass(slots=True, eq=False)
class StreamSub:
    """One desired stream on one socket."""

    stream: Stream
    sent: bool = False  # requested on the current socket
    live: bool = False  # acknowledged (or flowing) on the current socket: losing it is a gap
    gap_since: int | None = None  # a gap to announce after the next connect
    waiter: AckFuture | None = None  # the ack of the latest subscribe request


@dataclass(slots=True)
class PendingRequest:
    op: Op
    keys: tuple[str, ...]
    future: AckFuture = field(repr=False)


@dataclass(slots=True)
class Request:
    """A request ready to send: its text and the ack it waits for."""

    req_id: str
    payload: object
    op: Op
    keys: tuple[str, ...]


class StreamTable:
    """The streams of one socket (by key) and its unanswered requests."""

    def __init__(self, market: Market) -> None:
        self._market = market
        self._subs: dict[str, StreamSub] = {}
        self._requests: dict[str, PendingRequest] = {}
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._subs)

    def __iter__(self) -> Iterator[StreamSub]:
        return iter(list(self._subs.values()))

    def keys(self) -> list[str]:
        return list(self._subs)

    def get(self, key: str) -> StreamSub | None:
        return self._subs.get(key)

    def add(self, stream: Stream) -> StreamSub:
        sub = self._subs[stream.key] = StreamSub(stream)
        return sub

    def remove(self, sub: StreamSub) -> None:
        if self._subs.get(sub.stream.key) is sub:
            del self._subs[sub.stream.key]

    def prepare(self, op: Op, subs: Iterable[StreamSub]) -> list[Request]:
        """Build ``op`` requests (chunked by the market's ``args_per_request``) for ``subs``
        and register their acks; a subscribe marks its streams sent and makes the new ack
        their ``waiter``. Does not await."""
        chosen = list(subs)
        size = max(1, self._market.limits.args_per_request)
        loop = asyncio.get_running_loop()
        requests = []
        for i in range(0, len(chosen), size):
            chunk = chosen[i : i + size]
            req_id, payload = self._market.requests(
                op, [s.stream.request_arg for s in chunk], next(self._ids))
            keys = tuple(s.stream.key for s in chunk)
            pending = PendingRequest(op, keys, loop.create_future())
            self._requests[req_id] = pending
            if op == "subscribe":
                for sub in chunk:
                    sub.sent = True
                    sub.waiter = pending.future
            requests.append(Request(req_id, payload, op, keys))
        return requests

    def resubscribe(self, sub: StreamSub) -> list[Request]:
        """An ``unsubscribe`` then a ``subscribe`` of ``sub`` on the same socket, registered
        (the venue answers the subscribe with a fresh snapshot: how a broken book re-syncs)."""
        return [*self.prepare("unsubscribe", [sub]), *self.prepare("subscribe", [sub])]

    def pop_request(self, req_id: str | None) -> PendingRequest | None:
        return self._requests.pop(req_id, None) if req_id is not None else None

    def waiting_on(self, request: PendingRequest) -> list[StreamSub]:
        """The streams whose latest subscribe is ``request``."""
        return [
            sub
            for key in request.keys
            if (sub := self._subs.get(key)) is not None and sub.waiter is request.future
        ]

    def new_socket(self) -> list[StreamSub]:
        """A socket is up: nothing is sent or live on it yet."""
        subs = list(self._subs.values())
        for sub in subs:
            sub.sent = sub.live = False
        return subs

    def socket_lost(self, since_ms: int) -> None:
        """The socket is gone: streams live on it owe their channels a gap from ``since_ms``;
        unanswered requests resolve to ``None``."""
        for sub in self._subs.values():
            if sub.live and sub.gap_since is None:
                sub.gap_since = since_ms
            sub.sent = sub.live = False
        self.resolve_pending()

    def take_gaps(self) -> dict[str, int]:
        """The streams owing a gap (key -> since ms), now announced."""
        owed = {}
        for key, sub in self._subs.items():
            if sub.gap_since is not None:
                owed[key] = sub.gap_since
                sub.gap_since = None
        return owed

    def resolve_pending(self) -> None:
        for request in self._requests.values():
            if not request.future.done():
                request.future.set_result(None)
        self._requests.clear()
        for sub in self._subs.values():
            sub.waiter = None
