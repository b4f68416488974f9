"""The channels a client keeps subscribed across reconnects, and what each reply does to them.

A channel subscribed with ``interval_ms`` (conflation, ``docs/protocol.md``) keeps it: the
re-subscribe after a reconnect sends one request per interval.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cryptowire.client._inbox import Inbox
from cryptowire.client._messages import ClientEvent, Gap, Message, Reply, SubscribeReply
from cryptowire.client._tracker import ChannelTracker

#: Channels per re-subscribe frame, to stay far below server.max_frame_bytes.
RESUBSCRIBE_CHUNK = 50
#: The conflation intervals the hub accepts (docs/protocol.md, "Conflation").
INTERVAL_MS_MIN, INTERVAL_MS_MAX = 50, 60_000


def check_interval(interval_ms: object) -> int:
    """``interval_ms`` if the hub can accept it, else a ``ValueError`` that says the range."""
    if (not isinstance(interval_ms, int) or isinstance(interval_ms, bool)
            or not INTERVAL_MS_MIN <= interval_ms <= INTERVAL_MS_MAX):
        raise ValueError(f"interval_ms must be a whole number of milliseconds from "
                         f"{INTERVAL_MS_MIN} to {INTERVAL_MS_MAX}, not {interval_ms!r}.")
    return interval_ms


class Subscriptions:
    """The desired channels, their positions (the tracker), and the gaps replies reveal.

    The reply hooks run in the reader, in frame order (see ``_requests``).
    """

    def __init__(self, inbox: Inbox[ClientEvent]) -> None:
        self.desired: set[str] = set()
        #: ``interval_ms`` of the conflated channels among ``desired``.
        self.intervals: dict[str, int] = {}
        self.tracker = ChannelTracker()
        self._inbox = inbox

    def forget(self, channel: str) -> None:
        self.desired.discard(channel)
        self.intervals.pop(channel, None)
        self.tracker.conflated.discard(channel)
        self.tracker.forget(channel)

    def _set_interval(self, channel: str, interval_ms: int | None) -> None:
        if interval_ms is None:
            self.intervals.pop(channel, None)
            self.tracker.conflated.discard(channel)
        else:
            self.intervals[channel] = interval_ms
            self.tracker.conflated.add(channel)

    def wanted(self, message: Message) -> bool:
        """False for a message still in flight when its channel was unsubscribed."""
        return message.offset < 0 or message.channel in self.desired

    def resubscribe_frames(self) -> Iterator[dict[str, Any]]:
        """The subscribe frames that restore every channel after a reconnect, with
        ``recover`` from the last position seen."""
        groups: dict[int | None, list[str]] = {}
        for channel in sorted(self.desired):
            groups.setdefault(self.intervals.get(channel), []).append(channel)
        for interval_ms, channels in groups.items():
            for i in range(0, len(channels), RESUBSCRIBE_CHUNK):
                chunk = channels[i:i + RESUBSCRIBE_CHUNK]
                frame: dict[str, Any] = {"op": "subscribe", "args": chunk}
                if interval_ms is not None:
                    frame["interval_ms"] = interval_ms
                recover = self.tracker.recover_args(chunk)
                if recover:
                    frame["recover"] = recover
                yield frame

    def on_subscribed(self, reply: Reply, interval_ms: int | None = None) -> None:
        sub = SubscribeReply.from_raw(reply.body)
        self.desired.update(sub.channels)
        for channel in sub.channels:
            self._set_interval(channel, interval_ms)
        for gap in self.tracker.on_subscribed(sub):
            self._inbox.put_nowait(gap)

    def on_resubscribed(self, reply: Reply) -> None:
        sub = SubscribeReply.from_raw(reply.body)
        for rejected in sub.rejected:
            if rejected.arg in self.desired:
                self.forget(rejected.arg)
                self._inbox.put_nowait(Gap(rejected.arg, "The hub refused the re-subscribe "
                                                         f"after a reconnect: {rejected.reason}"))
        for gap in self.tracker.on_subscribed(sub):
            self._inbox.put_nowait(gap)

    def on_unsubscribed(self, reply: Reply) -> None:
        for channel in reply.body.get("args") or ():
            self.forget(channel)
