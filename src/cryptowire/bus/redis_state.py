"""The state of stateful channels on the Redis bus (PROTOCOLS.md 4.2), readable by every node.

Key (``P`` is ``bus.prefix``, ``C`` a ticker, kline or book channel)::

    P:state:C    hash {o: offset, p: payload (the stream's payload format)}: the state of C
                 as of publication ``o``; expires with the meta hash (bus.meta_ttl_s)

How it is kept exact:

- ``ticker`` and ``kline`` publications, and a book's ``snapshot``, *are* the state: the
  publish script itself writes ``{o: offset, p: payload}`` in the same script that takes the
  offset and appends to the stream (so the key and the stream never disagree).
- A book ``gap`` deletes the key in that same script (the book is unknown).
- A book ``delta`` leaves the key alone: the state is the key's book *plus the stream entries
  after* ``o``. The publishing node rebuilds the book from its own *confirmed* publications
  (offsets as Redis gave them, :class:`~cryptowire.core.state.ChannelState`) and, every
  :attr:`Checkpoints.every` deltas (or when the deltas since grew old or large), writes a
  checkpoint ``{o, p: the whole book}`` with a script that only moves the key forward within
  the same epoch. A node that lost a publication (Redis unreachable) never had an offset
  for it, so the book it checkpoints is the stream's book.
- :func:`read_state` reads the key, the meta hash and the entries after ``o`` in one
  script, and replays them onto the key's state; when the entries do not reach the top
  contiguously (trimmed history) there is no state rather than a wrong one.
- A new epoch (lost meta hash) deletes the key with the stream.
"""

from __future__ import annotations

from typing import Any

import orjson

from cryptowire.bus.redis_protocol import decode_payload, field_of
from cryptowire.core.state import ChannelState, StateStore, is_stateful, kind_of
from cryptowire.events import Event, Publication

# KEYS: meta, stream, state; ARGV: history size -> {epoch, top, {o, p} | nil, entries} | nil
STATE_LUA = """
local m = redis.call('hmget', KEYS[1], 'e', 's')
if not m[1] then return false end
local top = tonumber(m[2])
local st = redis.call('hmget', KEYS[3], 'o', 'p')
if not st[1] then return {m[1], top, false, {}} end
local o = tonumber(st[1])
local entries = {}
if o < top and top - o <= tonumber(ARGV[1]) then
  entries = redis.call('xrange', KEYS[2], string.format('%d', o + 1) .. '-0', '+',
                       'COUNT', top - o)
end
return {m[1], top, st, entries}
"""

# KEYS: meta, state; ARGV: epoch, offset, payload, meta ttl ms -> 1 written, 0 stale
CHECKPOINT_LUA = """
if redis.call('hget', KEYS[1], 'e') ~= ARGV[1] then return 0 end
local o = redis.call('hget', KEYS[2], 'o')
if o and tonumber(o) >= tonumber(ARGV[2]) then return 0 end
redis.call('hset', KEYS[2], 'o', ARGV[2], 'p', ARGV[3])
redis.call('pexpire', KEYS[2], ARGV[4])
return 1
"""

#: The publish script's state argument: not stateful, keep the key, this payload is the
#: state, delete the key (the state is unknown).
NO_STATE, KEEP, IS_STATE, UNKNOWN = "n", "0", "1", "3"


def state_mode(event: Event) -> str:
    """What the publish script does with ``event``'s channel's state key."""
    channel = event.channel
    if not is_stateful(channel):
        return NO_STATE
    if kind_of(channel) != "book":  # full-state kinds: the last value stays through a gap,
        return KEEP if event.type == "gap" else IS_STATE  # as in core/state.py
    if event.type == "snapshot":
        return IS_STATE
    return UNKNOWN if event.type == "gap" else KEEP


def state_payload(snap: Publication) -> bytes:
    """A state as a stream payload (``type`` snapshot)."""
    head = orjson.dumps(["snapshot", snap.ts, snap.ts_received, snap.source])
    return head + b"\n" + snap.data_json


class Checkpoints:
    """The books this node publishes, rebuilt from its confirmed publications, and when to
    write one to its channel's state key (every ``every`` deltas, or once the deltas since
    the last one are ``max_age_ms`` old or ``max_bytes`` large)."""

    def __init__(self, every: int, max_age_ms: int, max_bytes: int, max_channels: int) -> None:
        self.every = max(1, every)
        self.max_age_ms = max_age_ms
        self.max_bytes = max_bytes
        self._books = StateStore(max_channels)
        # channel -> (deltas, payload bytes, ts_received of the first) since its key was set
        self._since: dict[str, tuple[int, int, int]] = {}
        self.written = 0

    def confirmed(self, pub: Publication) -> bytes | None:
        """Include a publication Redis confirmed; the checkpoint payload to write, if due."""
        if kind_of(pub.channel) != "book":
            return None
        self._books.apply(pub)
        state = self._books.get(pub.channel)
        if state is None or pub.type != "delta" or not state.known:
            self._since.pop(pub.channel, None)  # set by the publish script, or unknown
            return None
        n, size, first = self._since.get(pub.channel, (0, 0, pub.ts_received))
        n, size = n + 1, size + len(pub.data_json)
        if n < self.every and size < self.max_bytes and pub.ts_received - first < self.max_age_ms:
            self._since[pub.channel] = (n, size, first)
            if len(self._since) > 2 * self._books.max_channels:
                self._since = {c: v for c, v in self._since.items() if self._books.get(c)}
            return None
        self._since.pop(pub.channel, None)
        snap = state.snapshot()
        if snap is None:
            return None
        self.written += 1
        return state_payload(snap)


def rebuild(channel: str, res: Any) -> Publication | None:
    """The state from :data:`STATE_LUA`'s answer, or ``None`` when it cannot be exact."""
    if res is None:
        return None
    epoch, top, key, entries = res[0].decode(), int(res[1]), res[2], res[3]
    if not key or key[0] is None or key[1] is None:
        return None
    offset = int(key[0])
    state = ChannelState(channel)
    state.apply(decode_payload(channel, epoch, offset, key[1]))
    expected = offset + 1
    for entry_id, fields in entries:
        entry_offset = int(entry_id.split(b"-")[0])
        if entry_offset != expected:  # a missing entry: the state cannot be exact
            return None
        state.apply(decode_payload(channel, epoch, entry_offset, field_of(fields, b"p")))
        expected += 1
    if expected - 1 != top:  # the stream ends before the top
        return None
    return state.snapshot()


__all__ = ["CHECKPOINT_LUA", "STATE_LUA", "Checkpoints", "rebuild", "state_mode",
           "state_payload"]
