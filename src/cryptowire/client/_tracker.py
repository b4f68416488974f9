"""Per-channel positions: what to ``recover`` after a reconnect, dedupe, and gap detection.

Sans-I/O: the connection layer feeds it the subscribe replies and the data messages in the
order they arrived, and forwards what it returns. The hub promises that recovered messages
come in order and exactly once (``docs/protocol.md``, "Recovery"); the tracker checks it
anyway: a message at or below the last offset of the same epoch is dropped as a duplicate,
and a skipped offset or a changed epoch is reported as a :class:`Gap` before the message.

A conflated subscription (``interval_ms``) of a state channel gets one ``snapshot`` per
interval carrying the offset of the last publication it includes (``docs/protocol.md``,
"Conflation"): offsets skipped before such a snapshot are by design, not a gap. The
``snapshot`` that follows a subscribe reply (the current state of a state channel) carries the
offset of the last publication it includes, which is the position the reply gave: it is
delivered, not dropped as a duplicate.
"""

from __future__ import annotations

from typing import Any

from cryptowire.client._messages import Gap, Message, SubscribeReply


class ChannelTracker:
    """The last ``(epoch, offset)`` seen per subscribed channel."""

    __slots__ = ("_fresh", "_positions", "conflated", "duplicates")

    def __init__(self) -> None:
        self._positions: dict[str, tuple[str, int]] = {}
        #: Channels whose position came from a subscribe reply, no message delivered since.
        self._fresh: set[str] = set()
        self.duplicates = 0
        #: Channels subscribed with ``interval_ms`` (kept by the subscriptions).
        self.conflated: set[str] = set()

    def position(self, channel: str) -> tuple[str, int] | None:
        return self._positions.get(channel)

    def forget(self, channel: str) -> None:
        self._positions.pop(channel, None)
        self._fresh.discard(channel)

    def recover_args(self, channels: list[str]) -> dict[str, dict[str, Any]]:
        """The ``recover`` field of a subscribe request for ``channels``."""
        out: dict[str, dict[str, Any]] = {}
        for channel in channels:
            pos = self._positions.get(channel)
            if pos is not None:
                out[channel] = {"epoch": pos[0], "offset": pos[1]}
        return out

    def on_subscribed(self, reply: SubscribeReply) -> list[Gap]:
        """Record positions from a subscribe reply; a :class:`Gap` per channel whose
        recovery the hub refused."""
        gaps: list[Gap] = []
        for channel, new in reply.positions.items():
            old = self._positions.get(channel)
            ok = reply.recovered.get(channel)
            if ok is None or old is None:
                # A first subscribe: the stream starts after the current top.
                self._positions[channel] = (new.epoch, new.offset)
                self._fresh.add(channel)
            elif not ok:
                gaps.append(Gap(channel, _lost_reason(old, (new.epoch, new.offset))))
                self._positions[channel] = (new.epoch, new.offset)
                self._fresh.add(channel)
            # ok: the missed messages follow, after our own position; keep it.
        return gaps

    def on_message(self, msg: Message) -> list[Message | Gap]:
        """What to deliver for ``msg``: nothing (duplicate), the message, or a gap and it."""
        if msg.offset < 0:  # an envelope without positions (seed 003 shape)
            return [msg]
        old = self._positions.get(msg.channel)
        self._positions[msg.channel] = (msg.epoch, msg.offset)
        fresh = msg.channel in self._fresh
        self._fresh.discard(msg.channel)
        if old is None:
            return [msg]
        epoch, offset = old
        if msg.epoch == epoch:
            if msg.offset <= offset and fresh and msg.type == "snapshot":
                self._positions[msg.channel] = old  # the state as of the reply's position
                return [msg]
            if msg.offset <= offset:
                self._positions[msg.channel] = old
                self.duplicates += 1
                return []
            if msg.offset > offset + 1 and not (
                    msg.type == "snapshot" and msg.channel in self.conflated):
                n = msg.offset - offset - 1
                return [Gap(msg.channel, f"{n} message(s) missing: offsets {offset + 1}.."
                                         f"{msg.offset - 1} of epoch {epoch} never arrived"),
                        msg]
            return [msg]
        return [Gap(msg.channel, f"history epoch changed from {epoch} to {msg.epoch}: "
                                 "messages after offset "
                                 f"{offset} of the old epoch are lost"), msg]


def _lost_reason(old: tuple[str, int], new: tuple[str, int]) -> str:
    if old[0] != new[0]:
        return (f"the hub lost its history (epoch {old[0]} -> {new[0]}, e.g. it restarted); "
                f"messages after offset {old[1]} could not be recovered")
    return (f"the hub's history no longer covers offset {old[1]} of epoch {old[0]} "
            "(older than history.size or history.ttl_s); missed messages are lost")
