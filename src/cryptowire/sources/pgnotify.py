"""PgNotifySource: Postgres ``LISTEN`` -> ``pg:<channel>`` events (PROTOCOLS.md 2.5, seed 002).

The seed's Data Service Stack published rows with triggers doing
``pg_notify('econiaws', json_build_object('channel', C, 'payload', row))``; this source
LISTENs on the configured channels (default ``econiaws``) through asyncpg and turns each
notification into an :class:`~cryptowire.events.Event` on ``pg:C`` whose data is the payload
exactly as sent: key order kept, and numbers that JSON-in-Python would alter (decimals such
as ``1.50``, integers past 64 bits) carried as their original text (``orjson.Fragment``).

The connection is supervised: capped jittered backoff between tries, a ``SELECT 1`` probe
every ``keepalive_s`` and asyncpg's termination callback to notice a dead link at once, and
a ``gap`` event on subscribed channels after a reconnect (NOTIFY is not stored by Postgres,
so what was sent in between is lost). With ``mirror`` on, every event is also written to the
``pg_mirror`` table (before it is published) that ``GET /<channel>s`` reads.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import make_url

from cryptowire.backoff import backoff_delay
from cryptowire.clock import now_ms
from cryptowire.core.channels import Channel, ChannelGrammar
from cryptowire.core.source import PublishFn, SourceStatus
from cryptowire.errors import ConfigError
from cryptowire.events import Event
from cryptowire.jsonnum import dumps_checked, loads_exact
from cryptowire.logthrottle import Throttle
from cryptowire.settings import PgNotifySettings
from cryptowire.store.tables import pg_mirror
from cryptowire.tasks import Supervisor

if TYPE_CHECKING:
    import asyncpg  # type: ignore[import-untyped]
    from sqlalchemy.ext.asyncio import AsyncEngine

    from cryptowire.store.sql import SqlStore

log = logging.getLogger("cryptowire.sources.pgnotify")

QUEUE_SIZE = 10_000
_BATCH = 500
#: Rejected notifications of one channel are logged at most once per this many seconds;
#: every one is counted (``/metrics``: ``cryptowire_source_rejected{source="pgnotify"}``).
REJECT_LOG_INTERVAL_S = 60.0
_REJECT_LOG_CHANNELS = 1024
_GRAMMAR = ChannelGrammar()

# -- payloads (pure) ---------------------------------------------------------------------


def decode_notification(text: str) -> tuple[str, Any]:
    """``(channel, payload)`` of a NOTIFY text ``{"channel": C, "payload": {...}}``."""
    try:
        obj = loads_exact(text)
    except ValueError as exc:
        raise ValueError(f"payload is not JSON: {exc}") from exc
    if not isinstance(obj, dict) or not isinstance(obj.get("channel"), str) \
            or "payload" not in obj:
        raise ValueError('payload is not {"channel": "<name>", "payload": {...}}')
    return obj["channel"], obj["payload"]


def _equal(value: Any, wanted: str) -> bool:
    if value is None:
        return wanted == "null"
    if isinstance(value, bool):
        return wanted.lower() == ("true" if value else "false")
    if isinstance(value, int | Decimal):
        try:
            return Decimal(wanted) == value
        except InvalidOperation:
            return False
    if isinstance(value, str):
        return value == wanted
    try:  # an object or array: the same JSON value (key order aside), as Postgres compares
        return bool(value == json.loads(wanted, parse_float=Decimal))
    except ValueError:
        return False


def row_matches(payload: str | bytes, filters: dict[str, str]) -> bool:
    """Whether a mirrored payload has every ``key == value`` of ``filters`` (top level; a
    PostgREST-style ``eq.`` prefix on the value is accepted)."""
    if not filters:
        return True
    obj = json.loads(payload, parse_float=Decimal)
    if not isinstance(obj, dict):
        return False
    for key, wanted in filters.items():
        if key not in obj:
            return False
        if not _equal(obj[key], wanted.removeprefix("eq.")):
            return False
    return True


async def mirror_rows(engine: AsyncEngine, channel: str, limit: int, filters: dict[str, str],
                      *, max_scan: int = 100_000, timeout_ms: int = 0) -> list[str]:
    """The newest ``limit`` mirrored payloads of ``channel`` matching ``filters`` among its
    newest ``max_scan`` rows, newest last, as the JSON texts the sockets sent.

    The filters run in SQL (:mod:`cryptowire.sources.mirror_sql`); only matching rows come
    back, and each is re-checked with :func:`row_matches` (exact where SQLite compares
    doubles). On Postgres the query runs under ``statement_timeout = timeout_ms``; a query
    cancelled by it raises :class:`StoreError`. Bad filters raise :class:`ProtocolError`.
    """
    from sqlalchemy import func
    from sqlalchemy.exc import DBAPIError

    from cryptowire.errors import StoreError
    from cryptowire.sources.mirror_sql import check_filters, mirror_select

    wanted = check_filters(filters)
    dialect = engine.dialect.name
    found: list[str] = []
    before: int | None = None
    try:
        async with engine.begin() as conn:
            if dialect == "postgresql" and timeout_ms > 0:
                await conn.execute(select(func.set_config("statement_timeout",
                                                          str(timeout_ms), True)))
            while len(found) < limit:
                want = limit - len(found)
                stmt = mirror_select(dialect, pg_mirror, channel, wanted, max_scan=max_scan,
                                     limit=want, before=before)
                rows = (await conn.execute(stmt)).all()
                found += [payload for _id, payload in rows if row_matches(payload, filters)]
                if len(rows) < want:
                    break
                before = rows[-1][0]
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) == "57014":  # query_canceled
            raise StoreError("The mirror query ran past pgnotify.rest_statement_timeout_ms; "
                             "narrow it (fewer rows, more selective filters).") from exc
        raise
    found.reverse()
    return found


def listen_dsn(cfg: PgNotifySettings, store_url: str) -> str:
    """The libpq URL to LISTEN on: ``pgnotify.url``, else the store's if it is Postgres."""
    url = cfg.url or store_url
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError(f"pgnotify.url is not a database URL: {exc}") from exc
    if parsed.get_backend_name() != "postgresql":
        raise ConfigError("pgnotify needs a Postgres URL: set pgnotify.url "
                          "(the store is not Postgres)")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


# -- the source --------------------------------------------------------------------------


class PgNotifySource:
    """Implements :class:`~cryptowire.core.source.Source` for ``pg:<channel>``."""

    name = "pgnotify"
    kinds = frozenset({"pg"})

    def __init__(self, cfg: PgNotifySettings, store_url: str,
                 store: Callable[[], SqlStore | None] | None = None) -> None:
        self.cfg = cfg
        self._store_url = store_url
        self._store = store or (lambda: None)
        self._publish: PublishFn | None = None
        # (channel, the payload's JSON text): encoded once, when it was accepted
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(QUEUE_SIZE)
        self._reject_log = Throttle(REJECT_LOG_INTERVAL_S, max_keys=_REJECT_LOG_CHANNELS)
        self._supervisor = Supervisor("pgnotify")
        self._topics: set[str] = set()
        self._connected_once = False
        self.backend_pid: int | None = None
        self.dropped = 0
        self._status = SourceStatus(name="pgnotify", state="stopped")

    async def start(self, publish: PublishFn) -> None:
        self._publish = publish
        try:
            dsn = listen_dsn(self.cfg, self._store_url)
        except ConfigError as exc:
            self._status.state = "down"
            self._status.detail = exc.message
            log.error("pgnotify: %s", exc.message)
            return
        self._status.state = "connecting"
        self._supervisor.spawn("listen", lambda: self._listen(dsn))
        self._supervisor.spawn("drain", self._drain)

    async def stop(self) -> None:
        await self._supervisor.stop()
        self._status.state = "stopped"

    async def subscribe(self, channel: Channel) -> None:
        self._topics.add(channel.name)
        self._status.topics = len(self._topics)

    async def unsubscribe(self, channel: Channel) -> None:
        self._topics.discard(channel.name)
        self._status.topics = len(self._topics)

    def status(self) -> SourceStatus:
        self._status.extra = {"listen_channels": list(self.cfg.listen_channels),
                              "mirror": self.cfg.mirror, "dropped": self.dropped,
                              "rejected": self._status.rejected,
                              "backend_pid": self.backend_pid}
        return self._status

    # -- LISTEN connection -------------------------------------------------------------

    async def _listen(self, dsn: str) -> None:
        import asyncpg

        attempt = 0
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(dsn, timeout=10)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                for name in self.cfg.listen_channels:
                    await conn.add_listener(name, self._on_notify)
                self.backend_pid = conn.get_server_pid()
                if self._connected_once:
                    self._status.reconnects += 1
                    await self._publish_gaps()
                self._connected_once = True
                self._status.state = "up"
                self._status.detail = f"listening on {', '.join(self.cfg.listen_channels)}"
                attempt = 0
                log.info("pgnotify: %s", self._status.detail)
                await self._watch(conn, lost)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._status.errors += 1
                self._status.detail = f"{type(exc).__name__}: {exc}"[:200]
                log.warning("pgnotify: connection failed or lost: %s", self._status.detail)
            finally:
                if conn is not None and not conn.is_closed():
                    conn.terminate()
            self._status.state = "connecting"
            await asyncio.sleep(backoff_delay(attempt, base=0.1, cap=self.cfg.backoff_cap_s))
            attempt += 1

    async def _watch(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        """Return when the connection dies (termination callback or failed probe)."""
        while not lost.is_set():
            try:
                await asyncio.wait_for(lost.wait(), self.cfg.keepalive_s)
            except TimeoutError:
                await conn.fetchval("SELECT 1", timeout=self.cfg.keepalive_s)
        raise ConnectionError("Postgres connection lost")

    def _on_notify(self, _conn: object, _pid: int, listen: str, payload: object) -> None:
        try:
            channel, data = decode_notification(str(payload))
            _GRAMMAR.parse(f"pg:{channel}")  # ChannelError (a ValueError) for a bad name
        except ValueError as exc:
            self._reject(f"LISTEN {listen}", str(exc))
            return
        try:
            # Encoded here, alone: a payload that cannot be sent (a lone surrogate, nesting
            # deeper than orjson writes) is refused by itself, before it can fail the batch
            # the drain task mirrors and publishes with it.
            data_json = dumps_checked(data)
        except ValueError as exc:
            self._reject(f"pg:{channel}", f"payload {exc}")
            return
        try:
            self._queue.put_nowait((channel, data_json))
        except asyncio.QueueFull:
            self.dropped += 1

    def _reject(self, where: str, reason: str) -> None:
        """Count a refused notification; log it (never its payload) at most once per
        :data:`REJECT_LOG_INTERVAL_S` for each channel, with how many were refused since."""
        self._status.rejected += 1
        since = self._reject_log.admit(where)
        if since is None:
            return
        more = f" ({since} more refused since the last report)" if since else ""
        log.warning("pgnotify: refused a notification on %s: %s%s", where, reason, more)

    async def _publish_gaps(self) -> None:
        assert self._publish is not None
        for name in sorted(self._topics):
            await self._publish(Event(channel=name, type="gap", source="pgnotify", data={
                "reason": "The Postgres LISTEN connection was re-established; "
                          "notifications sent meanwhile were not received."}))

    # -- publishing --------------------------------------------------------------------

    async def _drain(self) -> None:
        assert self._publish is not None
        while True:
            batch = [await self._queue.get()]
            while len(batch) < _BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if self.cfg.mirror:
                await self._write_mirror(batch)
            for channel, data_json in batch:
                await self._publish(Event(channel=f"pg:{channel}",
                                          data=orjson.Fragment(data_json), source="pgnotify"))
                self._status.messages += 1
                self._status.last_message_ms = now_ms()

    async def _write_mirror(self, batch: list[tuple[str, bytes]]) -> None:
        store = self._store()
        if store is None:
            return
        now = now_ms()
        rows = [{"channel": ch, "payload": data_json.decode(), "received_at": now}
                for ch, data_json in batch]
        try:
            async with store.engine.begin() as conn:
                await conn.execute(pg_mirror.insert(), rows)
        except Exception:
            self._status.errors += 1
            log.exception("pgnotify: mirror write failed (%d events not mirrored)", len(rows))
