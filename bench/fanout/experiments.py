"""Bench-only prototypes of hub changes, to measure a suggestion before anyone edits src/.

Nothing here is used unless hub_server.py is started with ``--experiment NAME`` (the variant is
then labelled ``hub+NAME`` in the results); the default comparison always runs the hub as it is.

``group-tick``: coalesce per (channel, encoder) instead of per session. ``Hub.deliver`` appends
each frame once to the tick's list for its (channel, encoder) group, instead of calling
``Session.send`` for every subscriber; at the end of the tick the group's frames are joined
once and the same bytes are written to every session of the group (the slow-consumer bound is
checked against the transport's buffer, as ``Session.flush`` does). Frames a session was sent
directly (replies, recovery) are flushed first, so a reply still precedes the data. A session
subscribed to several channels that publish in the same tick gets one write per channel.
This is what baseline (a) ``raw_batch`` does, on the real hub's data structures.
"""

from __future__ import annotations

import asyncio


def install_group_tick(hub) -> None:
    """Patch this hub instance (not the class) with the group-tick fan-out. Call it before
    ``node.start()`` (the broker keeps a reference to ``hub.deliver``)."""
    hub._tick = {}
    hub._version = 0          # bumped whenever a session joins or leaves the index
    go_live, unsubscribe = hub._go_live, hub.unsubscribe

    def _go_live(*a, **k):
        hub._version += 1
        return go_live(*a, **k)

    async def _unsubscribe(*a, **k):
        hub._version += 1
        return await unsubscribe(*a, **k)

    def deliver(pub, self=hub) -> None:
        self.stats.publications += 1
        channel = pub.channel
        watchers = getattr(self, "_watchers", {}).get(channel)
        if watchers:
            for watcher in watchers:
                watcher(pub)
        held = self._buffering.get(channel)
        if held:
            for pubs in held.values():
                pubs.append(pub)
        by_encoder = self._index.get(channel)
        if not by_encoder:
            return
        stats = self.stats
        tick = self._tick
        for encoder, sessions in by_encoder.items():
            frame = encoder.frame_publication(pub)
            if frame is None:
                continue
            n = len(sessions)
            stats.messages_out += n
            stats.bytes_out += n * len(frame)
            key = (channel, encoder)
            segs = tick.get(key)
            if segs is None:
                segs = tick[key] = []
                if not self._flush_scheduled:
                    self._flush_scheduled = True
                    loop = self._loop or asyncio.get_running_loop()
                    self._loop = loop
                    loop.call_soon(self._flush)
            if segs and segs[-1][0] == self._version:
                segs[-1][2].append(frame)
            else:   # membership as of this publication: a snapshot per change, not per frame
                segs.append((self._version, tuple(sessions), [frame]))

    def flush(self=hub) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        self.stats.writes += len(dirty)
        for session in dirty:        # replies and recovered frames first
            self.fanout.flush(session)
        tick, self._tick = self._tick, {}
        limit = self.outbound_limit
        for segs in tick.values():
            for _, sessions, frames in segs:
                blob = frames[0] if len(frames) == 1 else b"".join(frames)
                size = len(blob)
                self.stats.writes += len(sessions)
                for session in sessions:
                    if session.closed:
                        continue
                    t = session.transport
                    if t.is_closing():
                        continue
                    if t.get_write_buffer_size() + size > limit:
                        self._slow(session)
                        continue
                    t.write(blob)

    hub._go_live = _go_live
    hub.unsubscribe = _unsubscribe
    hub.deliver = deliver
    hub._flush = flush


EXPERIMENTS = {"group-tick": install_group_tick}
