"""``ExchangeSource(venue, settings)``: any declared venue as a cryptowire source.

Per market: the instruments list (an unknown symbol is refused with a reason before anything
goes upstream), and sockets per endpoint (:class:`~.connection.Connection`), opened when the
first stream on them is subscribed; a market that caps streams per connection gets another
socket (a shard) when one is full or its request budget is spent; a socket near the venue's
age limit is rotated without a gap (:mod:`.rotation`). A channel maps to a
:class:`~.venue.Topic` (the market's ``topic`` function); channels of one topic share its
upstream streams (subscribed once) and its :class:`~.codec.TopicState`, which turns the
streams' frames into publications. Events carry the channel name the core subscribed with,
the venue's time as ``ts_source`` and ``source=<venue name>``. Every channel of a topic whose
stream was live on a lost socket (or that lost an update the bus refused) gets a ``gap``
before any data of the new socket. A broken state (``TopicState.broken``) is counted by cause
in ``SourceStatus.book_resyncs`` and re-synchronised by the topic's ``resync``: re-subscribe
its streams on the same socket (backing off while it keeps breaking), or a REST snapshot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterable

import aiohttp

from cryptowire.backoff import backoff_delay
from cryptowire.clock import now_ms
from cryptowire.core.channels import Channel
from cryptowire.core.source import PublishFn, SourceStatus
from cryptowire.errors import ConfigError, SourceError
from cryptowire.events import Event
from cryptowire.jsonnum import loads_exact
from cryptowire.sources.exchange import subs
from cryptowire.sources.exchange.codec import Data, Pub
from cryptowire.sources.exchange.connection import Connection
from cryptowire.sources.exchange.instruments import InstrumentCatalog
from cryptowire.sources.exchange.rotation import Rotations, take_over
from cryptowire.sources.exchange.status import source_status
from cryptowire.sources.exchange.subs import TopicSub, VenueOptions, apply_guarded
from cryptowire.sources.exchange.venue import Market, Stream, Venue


class ExchangeSource:
    """A :class:`~cryptowire.core.source.Source` for one declared venue (``name`` = the
    venue's name, ``venues`` = its markets: the node routes ``(kind, venue)`` here).

    ``ping_interval_s``/``watchdog_s`` override the markets' declared keep-alive (tests use
    short ones); ``backoff_max_s`` caps the reconnect backoff; ``ack_timeout_s`` is how long
    ``subscribe`` waits for the venue's answer.
    """

    def __init__(self, venue: Venue, settings: VenueOptions, *,
                 ping_interval_s: float | None = None, watchdog_s: float | None = None,
                 backoff_max_s: float = 30.0, ack_timeout_s: float = 10.0,
                 connect_timeout_s: float = 10.0, snapshot_timeout_s: float = 10.0,
                 instruments: InstrumentCatalog | None = None) -> None:
        for market in venue.markets.values():
            ping = ping_interval_s or market.ping.interval_s
            watch = watchdog_s if watchdog_s is not None else market.ping.watchdog_s
            if market.ping.text is not None and watch is not None and watch <= ping:
                raise ConfigError(
                    f"watchdog_s ({watch}) must exceed ping_interval_s ({ping}): pongs are "
                    "what keep a quiet socket from looking dead")
        self.venue = venue
        self.settings = settings
        self.name = venue.name
        self.kinds: frozenset[str] = venue.kinds
        self.venues: frozenset[str] = frozenset(venue.markets)
        self.ping_interval_s = ping_interval_s
        self.watchdog_s = watchdog_s
        self.backoff_max_s = backoff_max_s
        self.ack_timeout_s = ack_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.snapshot_timeout_s = snapshot_timeout_s
        self.instruments = instruments or InstrumentCatalog(venue)
        self.book_resyncs: dict[str, Counter[str]] = {}
        self.log = logging.getLogger(f"cryptowire.sources.{venue.name}")
        self._topics: dict[tuple[str, str], TopicSub] = {}
        self._by_stream: dict[tuple[str, str], list[TopicSub]] = {}
        self._conns: dict[tuple[str, str], list[Connection]] = {}
        self._stream_conn: dict[tuple[str, str], Connection] = {}
        self._load: Counter[Connection] = Counter()
        self._applied: dict[str, dict[str, int]] = {}  # market -> stream -> last seq delivered
        self._rotations = Rotations(self, self.log)
        self._session: aiohttp.ClientSession | None = None
        self._publish: PublishFn | None = None
        self._stopped = False

    # -- Source ---------------------------------------------------------------------------

    async def start(self, publish: PublishFn) -> None:
        """Remember ``publish``; sockets open on the first subscribe of their stream."""
        if self._session is not None:
            return
        self._publish = publish
        self._stopped = False
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        """Close every socket and the HTTP session; the source can be started again."""
        self._stopped = True
        fetches = [t for sub in self._topics.values() if (t := sub.fetch) is not None]
        for task in fetches:
            task.cancel()
        await asyncio.gather(*fetches, return_exceptions=True)
        await self._rotations.stop()
        conns = [c for shards in self._conns.values() for c in shards]
        for table in (self._conns, self._stream_conn, self._load, self._applied, self._topics,
                      self._by_stream):
            table.clear()
        await asyncio.gather(*(conn.stop() for conn in conns))
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def subscribe(self, channel: Channel) -> None:
        """Deliver ``channel``; :class:`SourceError` with a client-facing reason if the
        venue does not list the symbol, refuses the stream or does not answer."""
        title = self.venue.title
        if not self.settings.enabled:
            raise SourceError(f"{title} is disabled on this server "
                              f"({self.name}.enabled = false).")
        if self._session is None or self._publish is None:
            raise SourceError(f"The {title} source is not running; try again shortly.")
        market = self.venue.market_of(channel)
        topic = market.topic(channel, market)
        await self.instruments.check(self._session, market, topic.symbol)
        sub = self._topics.get((market.key, topic.key))
        if sub is None:
            sub = TopicSub(market, topic, market.codec.state(topic, market),
                           {channel.name: channel})
            self._topics[market.key, topic.key] = sub
            for stream in topic.streams:
                self._by_stream.setdefault((market.key, stream.key), []).append(sub)
        elif channel.name not in sub.channels:
            sub.channels[channel.name] = channel
            await self._emit_all(sub.state.added(channel))
        try:
            for stream in topic.streams:
                conn = self._connection(market, stream)
                await conn.subscribe(stream)
                while conn.retired and (now := self._stream_conn.get(
                        (market.key, stream.key))) not in (None, conn):
                    conn = now  # rotated meanwhile: onto the replacement
                    await conn.subscribe(stream)
                if (rot := self._rotations.by_conn.get(conn)) is not None:
                    rot.handover.track(stream.key)  # carried by both sockets of a rotation
                    with contextlib.suppress(SourceError):  # the handover's deadline decides
                        await rot.new.subscribe(stream)
        except SourceError:
            await self._withdraw(sub, channel.name)
            raise

    async def unsubscribe(self, channel: Channel) -> None:
        """Stop delivering ``channel``; a topic's streams are unsubscribed upstream with its
        last channel."""
        try:
            market = self.venue.market_of(channel)
            topic = market.topic(channel, market)
        except SourceError:
            return
        sub = self._topics.get((market.key, topic.key))
        if sub is not None:
            await self._withdraw(sub, channel.name)

    def status(self) -> SourceStatus:
        return source_status(self.name, [c for shards in self._conns.values() for c in shards],
                             running=self._session is not None and not self._stopped,
                             enabled=self.settings.enabled, topics=len(self._topics),
                             resyncs_by_market=self.book_resyncs,
                             instruments=self.instruments.status())

    # -- the connections' sink ------------------------------------------------------------

    async def opened(self, conn: Connection, streams: list[str], lost: dict[str, int],
                     reason: str) -> None:
        if (rot := self._rotations.by_conn.get(conn)) is not None and conn is rot.new:
            return  # a replacement: the states go on (rotation.Handover)
        market = conn.market.key
        touched: dict[TopicSub, set[str]] = {}
        for key in streams:
            for sub in self._by_stream.get((market, key), ()):
                touched.setdefault(sub, set()).add(key)
        for sub, keys in touched.items():
            sub.state.reset(keys)
        gapped: dict[TopicSub, int] = {}
        for key, since in lost.items():
            for sub in self._by_stream.get((market, key), ()):
                gapped.setdefault(sub, since)
        for sub, since in gapped.items():
            data = {"reason": f"{subs.RECONNECTED}{reason}", "since": since}
            for name in list(sub.channels):
                await self._emit(Event(channel=name, data=data, type="gap", source=self.name))

    async def data(self, conn: Connection, item: Data) -> None:
        if conn.retired:
            return
        rot = self._rotations.by_conn.get(conn)
        if rot is not None and not rot.handover.accept(item, conn is rot.new):
            return
        if item.seq is not None:
            self._applied.setdefault(conn.market.key, {})[item.stream] = item.seq
        for sub in list(self._by_stream.get((conn.market.key, item.stream), ())):
            if not await self._emit_all(apply_guarded(sub, item, conn, self.log)) \
                    and sub.topic.kind == "book":  # a lost update: the book is not exact now
                await self.resync(conn, [s.key for s in sub.topic.streams], subs.LOST_UPDATE)
            await self._settle(sub)
        if rot is not None and conn is rot.new and rot.handover.complete:
            self._rotations.ended(conn, "handed over")

    async def refused(self, conn: Connection, stream: str, reason: str) -> None:
        for sub in list(self._by_stream.get((conn.market.key, stream), ())):
            await self._drop(sub)

    async def dropped(self, conn: Connection, reason: str) -> None:
        self._rotations.ended(conn, reason)

    async def expiring(self, conn: Connection) -> None:
        if not self._stopped and not conn.retired:
            self._rotations.start(conn)

    # -- the rotations' host (rotation.Host) ----------------------------------------------

    def replacement(self, old: Connection) -> Connection:
        assert self._session is not None
        return Connection(old.market, old.endpoint, old.url, venue=self.name,
                          title=self.venue.title, session=self._session, sink=self,
                          shard=old.shard, ping_interval_s=self.ping_interval_s,
                          watchdog_s=self.watchdog_s, backoff_max_s=self.backoff_max_s,
                          ack_timeout_s=self.ack_timeout_s,
                          connect_timeout_s=self.connect_timeout_s)

    def streams_of(self, conn: Connection) -> list[Stream]:
        found = (self._stream(conn.market.key, key) for key in conn.streams)
        return [stream for stream in found if stream is not None]

    def applied(self, market: str) -> dict[str, int]:
        return self._applied.setdefault(market, {})

    def promote(self, old: Connection, new: Connection) -> None:
        take_over(new, old)
        shards = self._conns.get((old.market.key, old.endpoint), [])
        if old in shards:
            shards[shards.index(old)] = new
        for key, conn in self._stream_conn.items():
            if conn is old:
                self._stream_conn[key] = new
        self._load[new] += self._load.pop(old, 0)

    async def resync(self, conn: Connection, keys: list[str], reason: str) -> None:
        market = conn.market.key
        touched: dict[TopicSub, set[str]] = {}
        for key in keys:
            for sub in self._by_stream.get((market, key), ()):
                touched.setdefault(sub, set()).add(key)
        for sub, streams in touched.items():  # before any await: no stale frame slips in
            sub.state.reset(streams)
        for sub in touched:
            data = {"reason": reason, "since": now_ms()}
            for name in list(sub.channels):
                await self._emit(Event(channel=name, data=data, type="gap", source=self.name))
        for key in keys:
            if key in conn.streams:
                await conn.resubscribe(key)
            elif (stream := self._stream(market, key)) is not None:
                with contextlib.suppress(SourceError):  # refused: dropped by refused()
                    await conn.subscribe(stream)

    def _stream(self, market: str, key: str) -> Stream | None:
        users = self._by_stream.get((market, key), [])
        return next((s for sub in users for s in sub.topic.streams if s.key == key), None)

    # -- pieces ---------------------------------------------------------------------------

    def _connection(self, market: Market, stream: Stream) -> Connection:
        """The socket carrying ``stream``: the one it is on, else the first shard of its
        endpoint with room, else a new shard."""
        conn = self._stream_conn.get((market.key, stream.key))
        if conn is not None:
            return conn
        url = market.endpoints.get(stream.endpoint)
        if url is None:
            raise SourceError(f"{self.venue.title} {market.label} has no endpoint "
                              f"'{stream.endpoint}' configured.")
        shards = self._conns.setdefault((market.key, stream.endpoint), [])
        cap = market.limits.streams_per_connection
        conn = next((c for c in shards if (cap is None or self._load[c] < cap)
                     and c.budget_left() != 0), None)
        if conn is None:
            assert self._session is not None
            conn = Connection(market, stream.endpoint, url, venue=self.name,
                              title=self.venue.title, session=self._session, sink=self,
                              shard=len(shards), ping_interval_s=self.ping_interval_s,
                              watchdog_s=self.watchdog_s, backoff_max_s=self.backoff_max_s,
                              ack_timeout_s=self.ack_timeout_s,
                              connect_timeout_s=self.connect_timeout_s)
            shards.append(conn)
            self.log.info("%s: opening %s", conn.name, url)
            conn.start()
        self._stream_conn[market.key, stream.key] = conn
        self._load[conn] += 1
        return conn

    async def _withdraw(self, sub: TopicSub, channel: str) -> None:
        sub.channels.pop(channel, None)
        if not sub.channels:
            await self._drop(sub)

    async def _drop(self, sub: TopicSub) -> None:
        """Forget a topic; unsubscribe upstream the streams no other topic uses."""
        market = sub.market.key
        if self._topics.get((market, sub.topic.key)) is not sub:
            return
        del self._topics[market, sub.topic.key]
        if sub.fetch is not None:
            sub.fetch.cancel()
        for stream in sub.topic.streams:
            users = self._by_stream.get((market, stream.key), [])
            if sub in users:
                users.remove(sub)
            if users:
                continue
            self._by_stream.pop((market, stream.key), None)
            self._applied.get(market, {}).pop(stream.key, None)
            conn = self._stream_conn.pop((market, stream.key), None)
            if conn is not None:
                self._load[conn] -= 1
                await conn.unsubscribe(stream.key)
                if (rot := self._rotations.by_conn.get(conn)) is not None:
                    rot.handover.forget(stream.key)
                    await rot.new.unsubscribe(stream.key)

    async def _settle(self, sub: TopicSub) -> None:
        """Act on a break the last frame revealed; start a snapshot fetch the state wants."""
        broken, sub.state.broken = sub.state.broken, None
        if broken is not None:
            self.book_resyncs.setdefault(sub.market.key, Counter())[broken.cause] += 1
            self.log.warning("%s %s: %s", self.name, sub.market.key, broken.reason)
            if sub.topic.resync == "resubscribe":  # the state drops frames until a snapshot
                if not (delay := sub.resync_delay(asyncio.get_running_loop().time())):
                    await self._resubscribe(sub)
                elif sub.fetch is None or sub.fetch.done():  # one paced re-sync at a time
                    sub.fetch = asyncio.create_task(self._resubscribe(sub, delay))
        if sub.topic.resync == "snapshot" and (sub.fetch is None or sub.fetch.done()) \
                and not self._stopped and sub.state.snapshot_request() is not None:
            sub.fetch = asyncio.create_task(self._fetch_snapshots(sub))

    async def _resubscribe(self, sub: TopicSub, delay: float = 0.0) -> None:
        if delay:  # a paced re-sync (see TopicSub.resync_delay)
            await asyncio.sleep(delay)
        for stream in sub.topic.streams:
            conn = self._stream_conn.get((sub.market.key, stream.key))
            if conn is not None and (rot := self._rotations.by_conn.get(conn)):
                conn = rot.new  # mid-rotation: re-sync on the replacement only
                rot.handover.restart(stream.key)
            if conn is not None and self._topics.get((sub.market.key, sub.topic.key)) is sub:
                await conn.resubscribe(stream.key)

    async def _fetch_snapshots(self, sub: TopicSub) -> None:
        """Fetch the REST snapshots the state asks for, until it asks for none."""
        failures = 0
        while self._topics.get((sub.market.key, sub.topic.key)) is sub:
            path = sub.state.snapshot_request()
            if path is None or self._session is None:
                return
            url = sub.market.rest_url.rstrip("/") + path
            try:
                timeout = aiohttp.ClientTimeout(total=self.snapshot_timeout_s)
                async with self._session.get(url, timeout=timeout) as resp:
                    if resp.status != 200:
                        raise SourceError(f"HTTP {resp.status}")
                    body = loads_exact(await resp.read())
                await self._emit_all(sub.state.on_snapshot(body, sub.channels))
            except (aiohttp.ClientError, TimeoutError, SourceError, ValueError, KeyError,
                    TypeError) as exc:
                self.log.warning("%s %s: snapshot %s failed: %s", self.name, sub.market.key,
                                 url, exc)
                failures += 1
            else:
                failures = 0 if sub.state.snapshot_request() is None else failures + 1
            broken, sub.state.broken = sub.state.broken, None
            if broken is not None:
                self.book_resyncs.setdefault(sub.market.key, Counter())[broken.cause] += 1
            if failures:
                await asyncio.sleep(backoff_delay(failures - 1, base=0.5,
                                                  cap=self.backoff_max_s))

    async def _emit_all(self, pubs: Iterable[Pub]) -> bool:  # whether all were published
        return all([await self._emit(Event(channel=pub.channel, data=pub.data, type=pub.type,
                                           ts_source=pub.ts, source=self.name)) for pub in pubs])

    async def _emit(self, event: Event) -> bool:
        assert self._publish is not None
        try:
            await self._publish(event)
            return True
        except Exception:  # a consumer's failure must not take the upstream socket down
            self.log.exception("%s: publish failed for %s", self.name, event.channel)
            return False
