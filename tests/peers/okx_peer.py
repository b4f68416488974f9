"""A real WebSocket server speaking OKX's v5 public protocol, for tests.

It listens on ``127.0.0.1`` (a free port) and serves, like ``ws.okx.com:8443`` and
``www.okx.com`` (shapes from ``tests/fixtures/okx/``, see its README):

- ``GET /ws/v5/public`` and ``/ws/v5/business`` (WebSocket): ``{"id"?,"op":"subscribe"|
  "unsubscribe","args":[..]}`` answered per argument with ``{"id"?,"event":"subscribe","arg",
  "connId"}``; an argument the path does not serve, or an ``instId`` OKX does not list (or
  one given to :meth:`OkxPeer.reject`), gets ``{"id"?,"event":"error","code":"60018","msg":..,
  "connId"}`` (and no stream); the text ``ping`` gets the text ``pong``. Candles only on
  ``/business``, the rest only on ``/public`` (as OKX since 2023-06-20).
- Pushes: the recorded frames of ``swap.jsonl``, ``spot.jsonl``, ``*-business.jsonl`` per
  ``(channel, instId|instType)``, in order, one every ``interval_s``, looping with every
  ``ts`` moved forward by :meth:`OkxPeer.round_span_ms` each round; candles of a bar not
  recorded are the 1-minute ones re-labelled; ``books`` by an
  :class:`~tests.peers.okx_books.OkxBookFeed` per ``instId`` (snapshot on subscribe, then
  updates chained by ``seqId``/``prevSeqId``; ``checksum=True`` for a real checksum).
- ``GET /api/v5/public/instruments?instType=SWAP|SPOT`` (the fixture lists) and
  ``GET /api/v5/market/books?instId=..`` (the feed's book now, with its ``seqId``).

Switches: :meth:`drop` (abort every connection), :meth:`stall` (send nothing, pongs included),
:meth:`reject`, :meth:`fail_instruments`, :meth:`send_raw`, :meth:`notice`; books:
:meth:`inject_gap`, :meth:`inject_checksum`, :meth:`inject_reset`. Counters:
:attr:`subscribe_requests`/:attr:`unsubscribe_requests` per ``(channel, target)``,
:attr:`connections`, :attr:`connections_total` per path, :attr:`pings`,
:attr:`instrument_requests`; :attr:`sent` is every recorded push sent, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from tests.peers.okx_books import OkxBookFeed, dumps
from tests.peers.venue_server import VenueServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "okx"
PATHS = {"public": "/ws/v5/public", "business": "/ws/v5/business"}
PUBLIC_CHANNELS = ("tickers", "trades", "funding-rate", "mark-price", "books",
                   "liquidation-orders")
BAR_MS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
          "1H": 3_600_000, "2H": 7_200_000, "4H": 14_400_000, "6Hutc": 21_600_000,
          "12Hutc": 43_200_000, "1Dutc": 86_400_000, "1Wutc": 604_800_000}
Key = tuple[str, str]  # (channel, instId or instType)


def key_of(arg: dict[str, Any]) -> Key:
    return str(arg.get("channel", "")), str(arg.get("instId") or arg.get("instType") or "")


@dataclass(eq=False)
class PeerConnection:
    """One client socket as the peer sees it."""

    path: str  # "public" | "business"
    conn_id: str
    ws: web.WebSocketResponse
    request: web.Request
    streams: dict[Key, asyncio.Task[None]] = field(default_factory=dict)
    received: list[Any] = field(default_factory=list)


class OkxPeer(VenueServer):
    """The replay server; see the module docstring."""

    def __init__(self, fixtures: Path = FIXTURES, *, interval_s: float = 0.02,
                 checksum: bool = False, port: int = 0) -> None:
        self.fixtures = fixtures
        self.interval_s = interval_s
        self.checksum = checksum
        self.port = port
        self.frames: dict[Key, list[dict[str, Any]]] = {}
        for name in ("swap", "spot", "swap-business", "spot-business"):
            for line in (fixtures / f"{name}.jsonl").read_text().splitlines():
                frame = json.loads(line)
                if "event" not in frame:
                    self.frames.setdefault(key_of(frame["arg"]), []).append(frame)
        self.instruments = {t: json.loads((fixtures / f"instruments-{t.lower()}.json")
                                          .read_text())["data"] for t in ("SWAP", "SPOT")}
        self.books: dict[str, OkxBookFeed] = {}
        self.subscribe_requests: Counter[Key] = Counter()
        self.unsubscribe_requests: Counter[Key] = Counter()
        self.connections: list[PeerConnection] = []
        self.connections_total: Counter[str] = Counter()
        self.pings = 0
        self.instrument_requests = 0
        #: Every recorded push sent (not books), in send order: ``(path, text)``.
        self.sent: list[tuple[str, str]] = []
        self._rejected: set[str] = set()
        self._stalled = False
        self._instruments_fail = False

    # -- lifecycle ------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/ws/v5/{path}", self._websocket)
        app.router.add_get("/api/v5/public/instruments", self._instruments)
        app.router.add_get("/api/v5/market/books", self._rest_book)

    @property
    def url(self) -> str:
        """The base of both the WebSocket and REST URLs (``ws://`` for sockets)."""
        return f"ws://127.0.0.1:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, path: str = "public") -> str:
        return f"{self.url}{PATHS[path]}"

    # -- switches -------------------------------------------------------------------------

    def reject(self, inst_id: str) -> None:
        """Refuse subscriptions for ``inst_id`` as OKX refuses an unknown one."""
        self._rejected.add(inst_id)

    def fail_instruments(self, failing: bool = True) -> None:
        self._instruments_fail = failing

    def set_state(self, inst_id: str, state: str) -> None:
        for items in self.instruments.values():
            for item in items:
                if item["instId"] == inst_id:
                    item["state"] = state

    def book(self, inst_id: str = "BTC-USDT-SWAP") -> OkxBookFeed:
        """The venue's book of ``inst_id`` (created on first use, from the fixture)."""
        feed = self.books.get(inst_id)
        if feed is None:
            name = "swap" if inst_id.endswith("-SWAP") else "spot"
            fixture = self.fixtures / f"{name}-books.jsonl"
            first = json.loads(fixture.read_text().splitlines()[0])["arg"]["instId"]
            assert first == inst_id, f"no book fixture for {inst_id}"
            feed = OkxBookFeed(inst_id, fixture, self.interval_s, lambda: self._stalled,
                               checksum=self.checksum)
            self.books[inst_id] = feed
        return feed

    def inject_gap(self, inst_id: str = "BTC-USDT-SWAP") -> None:
        self.book(inst_id).inject("gap")

    def inject_checksum(self, inst_id: str = "BTC-USDT-SWAP") -> None:
        self.book(inst_id).inject("checksum")

    def inject_reset(self, inst_id: str = "BTC-USDT-SWAP") -> None:
        self.book(inst_id).inject("reset")

    async def send_raw(self, text: str, path: str | None = None) -> int:
        sent = 0
        for conn in list(self.connections):
            if path is None or conn.path == path:
                sent += await self._send(conn, text, force=True)
        return sent

    async def notice(self) -> int:
        """The documented 64008 notice (a service upgrade in 60 s) to every connection."""
        return await self.send_raw(dumps({"event": "notice", "code": "64008", "msg":
                                          "The connection will soon be closed for a service "
                                          "upgrade. Please reconnect.", "connId": "peer"}))

    # -- queries --------------------------------------------------------------------------

    def subscribed(self, path: str = "public") -> list[set[Key]]:
        return [set(conn.streams) for conn in self.connections if conn.path == path]

    def frames_for(self, key: Key) -> list[dict[str, Any]]:
        """One round of the frames streamed for ``key``."""
        frames = self.frames.get(key)
        if frames or not key[0].startswith("candle"):
            return frames or []
        bar = key[0].removeprefix("candle")
        recorded = self.frames.get(("candle1m", key[1]), [])
        span = BAR_MS.get(bar)
        if span is None:
            return []
        return [{"arg": {"channel": key[0], "instId": key[1]},
                 "data": [[str(int(r[0]) - int(r[0]) % span), *r[1:]] for r in f["data"]]}
                for f in recorded]

    def round_span_ms(self, key: Key) -> int:
        """How far every ``ts`` moves forward per replay round of ``key`` (a bar for
        candles: each round is the next candle)."""
        bar = key[0].removeprefix("candle")
        if key[0].startswith("candle") and bar in BAR_MS:
            return BAR_MS[bar]
        stamps = [int(t) for f in self.frames_for(key) for t in _stamps(f)]
        return max(stamps) - min(stamps) + 100 if stamps else 0

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0,
                         what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"okx peer: {what} not reached within {timeout} s")
            await asyncio.sleep(0.01)

    # -- websocket ------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        if path not in PATHS:
            raise web.HTTPNotFound(text=f"no such path: {path}")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = PeerConnection(path, uuid.uuid4().hex[:8], ws, request)
        self.connections.append(conn)
        self.connections_total[path] += 1
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_message(conn, msg.data)
        finally:
            self._stop_streams(conn)
            with contextlib.suppress(ValueError):
                self.connections.remove(conn)
        return ws

    async def _on_message(self, conn: PeerConnection, text: str) -> None:
        if text == "ping":
            self.pings += 1
            await self._send(conn, "pong")
            return
        try:
            req = json.loads(text)
            op, args = req["op"], list(req["args"])
        except (ValueError, KeyError, TypeError):
            await self._error(conn, {}, "60012", f"Invalid request: {text}")
            return
        conn.received.append(req)
        head = {"id": req["id"]} if "id" in req else {}
        if op == "subscribe":
            await self._subscribe(conn, args, head, text)
        elif op == "unsubscribe":
            for arg in args:
                key = key_of(arg)
                self.unsubscribe_requests[key] += 1
                task = conn.streams.pop(key, None)
                if task is not None:
                    task.cancel()
                await self._send(conn, dumps({**head, "event": "unsubscribe", "arg": arg,
                                              "connId": conn.conn_id}))
        else:
            await self._error(conn, head, "60012", f"Invalid request: {text}")

    async def _subscribe(self, conn: PeerConnection, args: list[Any], head: dict[str, Any],
                         text: str) -> None:
        for arg in args:
            key = key_of(arg)
            self.subscribe_requests[key] += 1
            if not self._known(conn.path, arg):
                await self._error(conn, head, "60018", f"Wrong URL or channel:{key[0]},"
                                  f"instId:{key[1]} doesn't exist. Please use the correct URL, "
                                  "channel and parameters referring to API document.")
                continue
            await self._send(conn, dumps({**head, "event": "subscribe", "arg": arg,
                                          "connId": conn.conn_id}))
            if key in conn.streams:
                continue
            if key[0] == "books":
                send = functools.partial(self._send, conn)
                conn.streams[key] = asyncio.create_task(self.book(key[1]).stream(send))
            else:
                conn.streams[key] = asyncio.create_task(self._stream(conn, key))

    def _known(self, path: str, arg: dict[str, Any]) -> bool:
        channel, target = key_of(arg)
        candle = channel.startswith("candle") and channel.removeprefix("candle") in BAR_MS
        if (path == "business") != candle or not (candle or channel in PUBLIC_CHANNELS):
            return False
        if channel == "liquidation-orders":
            return arg.get("instType") in ("SWAP", "FUTURES")
        if target in self._rejected:
            return False
        item = next((i for items in self.instruments.values() for i in items
                     if i["instId"] == target), None)
        if item is None or item["state"] != "live":
            return False
        swap_only = channel in ("funding-rate", "mark-price")
        return not swap_only or item["instType"] == "SWAP"

    async def _stream(self, conn: PeerConnection, key: Key) -> None:
        frames = self.frames_for(key)
        if not frames:
            return
        span, round_ = self.round_span_ms(key), 0
        while True:
            for frame in frames:
                await asyncio.sleep(self.interval_s)
                while self._stalled:
                    await asyncio.sleep(0.01)
                out = shifted(frame, round_ * span) if round_ else frame
                text = dumps(out)
                if not await self._send(conn, text):
                    return
                self.sent.append((conn.path, text))
            round_ += 1

    async def _error(self, conn: PeerConnection, head: dict[str, Any], code: str,
                     msg: str) -> None:
        await self._send(conn, dumps({**head, "event": "error", "code": code, "msg": msg,
                                      "connId": conn.conn_id}))

    # -- REST -----------------------------------------------------------------------------

    async def _instruments(self, request: web.Request) -> web.StreamResponse:
        self.instrument_requests += 1
        if self._instruments_fail:
            return web.Response(status=503, text="Service Unavailable")
        inst_type = request.query.get("instType", "")
        if inst_type not in self.instruments:
            return web.json_response({"code": "51000", "msg": "Parameter instType error",
                                      "data": []}, dumps=dumps)
        return web.json_response({"code": "0", "msg": "", "data": self.instruments[inst_type]},
                                 dumps=dumps)

    async def _rest_book(self, request: web.Request) -> web.StreamResponse:
        feed = self.book(request.query.get("instId", "BTC-USDT-SWAP"))
        data = {"asks": feed.levels("asks"), "bids": feed.levels("bids"), "ts": str(feed.ts),
                "seqId": feed.seq}
        return web.json_response({"code": "0", "msg": "", "data": [data]}, dumps=dumps)


def _stamps(frame: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for item in frame["data"]:
        if isinstance(item, list):
            out.append(item[0])
        else:
            if "ts" in item:
                out.append(item["ts"])
            out.extend(d["ts"] for d in item.get("details", []))
    return out


def shifted(frame: dict[str, Any], by: int) -> dict[str, Any]:
    """``frame`` with every ``ts`` (and candle open time) ``by`` ms later."""
    data: list[Any] = []
    for item in frame["data"]:
        if isinstance(item, list):
            data.append([str(int(item[0]) + by), *item[1:]])
            continue
        moved = {**item, "ts": str(int(item["ts"]) + by)} if "ts" in item else dict(item)
        if "details" in item:
            moved["details"] = [{**d, "ts": str(int(d["ts"]) + by)} for d in item["details"]]
        data.append(moved)
    return {**frame, "data": data}
