"""The Redis side of the bus: key layout, the Lua scripts, the payload codec and the
client factory (used by :mod:`cryptowire.bus.redis`, :mod:`cryptowire.cluster.leader` and
:mod:`cryptowire.cluster.demand`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from cryptowire.errors import BusError
from cryptowire.events import Event, Publication

#: Redis and socket failures that mean "the bus is unreachable right now".
REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
#: How long a command waits for a free connection of the node's pool.
POOL_WAIT_S = 5.0


@dataclass(frozen=True, slots=True)
class Fence:
    """Proof of a live lease: publish only if ``lease_key`` still holds ``token`` and
    ``fence_key`` still holds ``number`` (checked inside the publish script)."""

    lease_key: str
    token: str
    fence_key: str
    number: int


# KEYS: meta, stream, state [, lease, fence]
# ARGV: pubsub channel, payload, maxlen, stream ttl ms, meta ttl ms, new epoch,
#       ts_received, TTL cutoff (now - ttl, ms), max stream bytes, state mode
#       [, lease token, fence number]
#
# State mode (bus/redis_state.py): "n" the channel has no state, "0" keep the state key,
# "1" this payload is the state, "3" the state is unknown (delete the key).
#
# The stream keeps at most maxlen entries (+1/16 of slack, so that trimming runs once every
# maxlen/16 publications, like the approximate MAXLEN it replaces), none older than the
# cutoff at the time of a publication, and at most max stream bytes of payload; one
# message bigger than that is published but not kept. Each entry carries t = ts_received;
# the meta hash counts the stream's payload bytes (b) and the t of its oldest entry (o), so
# a publication that is within every bound reads nothing. Trimming reads the oldest
# entries (at most TRIM_STEPS per publication: a publication after a long pause costs a
# bounded amount, the next ones finish) and cuts them with one XTRIM MINID: entry ids are
# "<offset>-0", so the first id kept is "<offset + 1>-0" of the last one cut.
PUBLISH_LUA = """
if #KEYS == 5 then
  if redis.call('get', KEYS[4]) ~= ARGV[11] or redis.call('get', KEYS[5]) ~= ARGV[12] then
    return false
  end
end
local epoch = redis.call('hget', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('del', KEYS[2], KEYS[3])
  redis.call('hset', KEYS[1], 'e', epoch, 's', 0)
end
local offset = redis.call('hincrby', KEYS[1], 's', 1)
redis.call('pexpire', KEYS[1], ARGV[5])
local off = string.format('%d', offset)
local maxlen = tonumber(ARGV[3])
if maxlen > 0 then
  local n = redis.call('xlen', KEYS[2])
  if n == 0 then redis.call('hset', KEYS[1], 'b', 0, 'o', ARGV[7]) end
  redis.call('xadd', KEYS[2], off .. '-0', 't', ARGV[7], 'p', ARGV[2])
  n = n + 1
  local bytes = redis.call('hincrby', KEYS[1], 'b', #ARGV[2])
  local oldest = tonumber(redis.call('hget', KEYS[1], 'o'))
  local cutoff, maxbytes = tonumber(ARGV[8]), tonumber(ARGV[9])
  if n > maxlen + math.max(1, math.floor(maxlen / 16)) or bytes > maxbytes
      or not oldest or oldest < cutoff then
    local cursor, cut, steps, stop = '-', nil, 0, false
    oldest = nil
    while not stop and n > 0 and steps < TRIM_STEPS do
      local want = math.max(1, math.min(n - maxlen, TRIM_STEPS - steps))
      local batch = redis.call('xrange', KEYS[2], cursor, '+', 'COUNT', want)
      if #batch == 0 then break end
      for _, e in ipairs(batch) do
        local t, size = nil, 0
        for i = 1, #e[2], 2 do
          if e[2][i] == 't' then t = tonumber(e[2][i + 1])
          elseif e[2][i] == 'p' then size = #e[2][i + 1] end
        end
        if n <= maxlen and bytes <= maxbytes and not (t and t < cutoff) then
          oldest, stop = t or tonumber(ARGV[7]), true  -- entries from before t: by count
          break
        end
        n, bytes, cut, steps = n - 1, bytes - size, e[1], steps + 1
      end
      cursor = '(' .. batch[#batch][1]
    end
    if cut then
      if n == 0 then
        redis.call('del', KEYS[2])
        bytes = 0
      else
        local first = tonumber(string.match(cut, '^(%d+)')) + 1
        redis.call('xtrim', KEYS[2], 'MINID', string.format('%d', first) .. '-0')
      end
    end
    redis.call('hset', KEYS[1], 'b', bytes)
    if oldest then redis.call('hset', KEYS[1], 'o', string.format('%d', oldest))
    else redis.call('hdel', KEYS[1], 'o') end
  end
  if n > 0 then redis.call('pexpire', KEYS[2], ARGV[4]) end
end
local mode = ARGV[10]
if mode == '1' then redis.call('hset', KEYS[3], 'o', off, 'p', ARGV[2])
elseif mode == '3' then redis.call('del', KEYS[3]) end
if mode ~= 'n' then redis.call('pexpire', KEYS[3], ARGV[5]) end
redis.call('publish', ARGV[1], epoch .. '\\n' .. off .. '\\n' .. ARGV[2])
return {epoch, offset}
""".replace("TRIM_STEPS", "64")

# KEYS: meta, stream, state; ARGV: new epoch, meta ttl ms
POSITION_LUA = """
local m = redis.call('hmget', KEYS[1], 'e', 's')
if not m[1] then
  redis.call('del', KEYS[2], KEYS[3])
  redis.call('hset', KEYS[1], 'e', ARGV[1], 's', 0)
  redis.call('pexpire', KEYS[1], ARGV[2])
  return {ARGV[1], 0}
end
return {m[1], tonumber(m[2])}
"""

# KEYS: meta, stream; ARGV: epoch, offset, size -> {epoch, top, entries} or nil
HISTORY_LUA = """
local m = redis.call('hmget', KEYS[1], 'e', 's')
if not m[1] then return false end
local top = tonumber(m[2])
local offset = tonumber(ARGV[2])
local entries = {}
if m[1] == ARGV[1] and offset < top and top - offset <= tonumber(ARGV[3]) then
  entries = redis.call('xrange', KEYS[2], string.format('%d', offset + 1) .. '-0', '+',
                       'COUNT', top - offset)
end
return {m[1], top, entries}
"""


def encode_payload(event: Event) -> tuple[bytes, bytes]:
    """``(payload, data_json)`` of ``event``; ``data`` is serialized exactly once."""
    data_json = orjson.dumps(event.data)
    ts = event.ts_source if event.ts_source is not None else event.ts_received
    head = orjson.dumps([event.type, ts, event.ts_received, event.source])
    return head + b"\n" + data_json, data_json


def decode_payload(channel: str, epoch: str, offset: int, payload: bytes) -> Publication:
    head, data_json = payload.split(b"\n", 1)
    kind, ts, ts_received, source = orjson.loads(head)
    return Publication(channel=channel, type=kind, epoch=epoch, offset=offset, ts=ts,
                       ts_received=ts_received, source=source, data_json=data_json)


def decode_message(channel: str, message: bytes) -> Publication:
    """Decode one pub/sub message of ``channel``."""
    epoch, offset, payload = message.split(b"\n", 2)
    return decode_payload(channel, epoch.decode(), int(offset), payload)


def connect_redis(url: str, max_connections: int = 64) -> Redis:
    """A client that fails fast on a dead Redis (no hidden retries: reconnecting is the
    broker's job) but waits for a free pooled connection: redis-py's default pool raises
    "Too many connections" at once when 100 commands are in flight, which a burst of
    subscribes (a position and a history read each) reaches easily."""
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=POOL_WAIT_S,
        retry=Retry(NoBackoff(), 0), socket_timeout=3.0, socket_connect_timeout=2.0,
        health_check_interval=0)
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes it


def text(value: bytes | str) -> str:
    """A Redis reply as text (the client returns bytes; its stubs say bytes or str)."""
    return value.decode() if isinstance(value, bytes) else value


def field_of(fields: list[bytes], name: bytes) -> bytes:
    for i in range(0, len(fields) - 1, 2):
        if fields[i] == name:
            return fields[i + 1]
    raise BusError(f"stream entry without field {name!r}")
