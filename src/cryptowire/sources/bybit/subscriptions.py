"""The desired topics of one Bybit socket and the requests awaiting Bybit's ack.

Bookkeeping only (no socket): which channel names each topic serves, whether the topic was
requested and acknowledged on the current socket, whether its next frame is a fresh snapshot,
whether a lost socket left a gap to announce, an order book topic's validated book (and a
break of it still to act on), and which ``req_id`` answers which request.
An ack resolves its request's future with the :class:`~.parser.Ack`; a lost socket resolves
every pending one with ``None`` (the topics stay desired and are sent again on connect).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptowire.sources.bybit.book import BookBreak, TopicBook
from cryptowire.sources.bybit.parser import Ack
from cryptowire.sources.bybit.topics import Topic, build_requests

AckFuture = asyncio.Future[Ack | None]


@dataclass(slots=True, eq=False)
class Subscription:
    """One desired topic on one socket."""

    topic: Topic
    channels: dict[str, None]  # channel names served, in subscription order
    sent: bool = False  # requested on the current socket
    live: bool = False  # acknowledged (or flowing) on the current socket: losing it is a gap
    fresh: bool = True  # the next data frame is published as a "snapshot"
    gap_since: int | None = None  # a gap to announce after the next connect
    waiter: AckFuture | None = None  # the ack of the latest subscribe request
    book: TopicBook | None = None  # the validated book of an orderbook topic
    broken: BookBreak | None = None  # a book break not yet acted on (count, re-subscribe)


@dataclass(slots=True)
class PendingRequest:
    op: str
    topics: tuple[str, ...]
    future: AckFuture = field(repr=False)


def rejection_reason(topic: str, category: str, ret_msg: str) -> str:
    """The client-facing reason for a refused topic, built from Bybit's ``ret_msg``."""
    said = ret_msg or "no reason given"
    return (
        f"Bybit {category} refused topic '{topic}' ({said}). Check the symbol and venue "
        "(e.g. ticker:BTCUSDT or ticker:BTCUSDT@spot)."
    )


def is_refusal(ack: Ack) -> bool:
    """Whether ``ack`` refuses its request. Bybit answers a duplicate subscription with
    ``success:false`` ``"error:already subscribed,topic:.."``: the topic is flowing, which
    is what was asked, so that is no refusal."""
    return not ack.success and "already subscribed" not in ack.ret_msg


class SubscriptionTable:
    """The topics of one socket (by Bybit topic name) and its unanswered requests."""

    def __init__(self, req_id_prefix: str = "cw") -> None:
        self._subs: dict[str, Subscription] = {}
        self._requests: dict[str, PendingRequest] = {}
        self._ids = itertools.count(1)
        self._prefix = req_id_prefix

    def __len__(self) -> int:
        return len(self._subs)

    def __iter__(self) -> Iterator[Subscription]:
        return iter(list(self._subs.values()))

    def names(self) -> list[str]:
        return list(self._subs)

    def get(self, topic: str) -> Subscription | None:
        return self._subs.get(topic)

    def add(self, topic: Topic, channel: str) -> Subscription:
        sub = Subscription(topic, {channel: None})
        if topic.kind == "book" and topic.depth is not None:
            sub.book = TopicBook(topic.name, topic.symbol, topic.depth)
        self._subs[topic.name] = sub
        return sub

    def remove(self, sub: Subscription) -> None:
        if self._subs.get(sub.topic.name) is sub:
            del self._subs[sub.topic.name]

    def prepare(
        self, op: Literal["subscribe", "unsubscribe"], subs: Iterable[Subscription]
    ) -> list[dict[str, Any]]:
        """Build ``op`` requests (chunked) for ``subs`` and register their acks; a subscribe
        marks its topics sent and makes the new ack their ``waiter``. Does not await."""
        by_topic = {sub.topic.name: sub for sub in subs}
        loop = asyncio.get_running_loop()
        requests = build_requests(op, by_topic, lambda: f"{self._prefix}-{next(self._ids)}")
        for request in requests:
            pending = PendingRequest(op, tuple(request["args"]), loop.create_future())
            self._requests[request["req_id"]] = pending
            if op == "subscribe":
                for topic in pending.topics:
                    by_topic[topic].sent = True
                    by_topic[topic].waiter = pending.future
        return requests

    def resubscribe(self, sub: Subscription) -> list[dict[str, Any]]:
        """An ``unsubscribe`` then a ``subscribe`` of ``sub`` on the same socket, registered
        (Bybit answers the subscribe with a fresh snapshot: how a broken book re-syncs)."""
        return [*self.prepare("unsubscribe", [sub]), *self.prepare("subscribe", [sub])]

    def pop_request(self, req_id: str | None) -> PendingRequest | None:
        return self._requests.pop(req_id, None) if req_id is not None else None

    def waiting_on(self, request: PendingRequest) -> list[Subscription]:
        """The subscriptions whose latest subscribe is ``request``."""
        return [
            sub
            for topic in request.topics
            if (sub := self._subs.get(topic)) is not None and sub.waiter is request.future
        ]

    def new_socket(self) -> list[Subscription]:
        """A socket is up: nothing is sent or live on it yet, every next frame is fresh."""
        subs = list(self._subs.values())
        for sub in subs:
            sub.sent = sub.live = False
            sub.fresh = True
            sub.broken = None
            if sub.book is not None:
                sub.book.reset()
        return subs

    def socket_lost(self, since_ms: int) -> None:
        """The socket is gone: topics live on it owe their channels a gap from ``since_ms``;
        unanswered requests resolve to ``None``."""
        for sub in self._subs.values():
            if sub.live and sub.gap_since is None:
                sub.gap_since = since_ms
            sub.sent = sub.live = False
        self.resolve_pending()

    def resolve_pending(self) -> None:
        for request in self._requests.values():
            if not request.future.done():
                request.future.set_result(None)
        self._requests.clear()
        for sub in self._subs.values():
            sub.waiter = None
