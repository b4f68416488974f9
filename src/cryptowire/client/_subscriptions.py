"""The channels a client keeps subscribed across reconnects, and what each reply does to them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cryptowire.client._inbox import Inbox
from cryptowire.client._messages import ClientEvent, Gap, Message, Reply, SubscribeReply
from cryptowire.client._tracker import ChannelTracker

#: Channels per re-subscribe frame, to stay far below server.max_frame_bytes.
RESUBSCRIBE_CHUNK = 50


class Subscriptions:
    """The desired channels, their positions (the tracker), and the gaps replies reveal.

    The reply hooks run in the reader, in frame order (see ``_requests``).
    """

    def __init__(self, inbox: Inbox[ClientEvent]) -> None:
        self.desired: set[str] = set()
        self.tracker = ChannelTracker()
        self._inbox = inbox

    def forget(self, channel: str) -> None:
        self.desired.discard(channel)
        self.tracker.forget(channel)

    def wanted(self, message: Message) -> bool:
        """False for a message still in flight when its channel was unsubscribed."""
        return message.offset < 0 or message.channel in self.desired

    def resubscribe_frames(self) -> Iterator[dict[str, Any]]:
        """The subscribe frames that restore every channel after a reconnect, with
        ``recover`` from the last position seen."""
        channels = sorted(self.desired)
        for i in range(0, len(channels), RESUBSCRIBE_CHUNK):
            chunk = channels[i:i + RESUBSCRIBE_CHUNK]
            frame: dict[str, Any] = {"op": "subscribe", "args": chunk}
            recover = self.tracker.recover_args(chunk)
            if recover:
                frame["recover"] = recover
            yield frame

    def on_subscribed(self, reply: Reply) -> None:
        sub = SubscribeReply.from_raw(reply.body)
        self.desired.update(sub.channels)
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
