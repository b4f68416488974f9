"""A real WebSocket server speaking the Bybit V5 public protocol, for tests.

It listens on ``127.0.0.1`` (a free port) and serves, like ``stream.bybit.com`` and
``api.bybit.com`` (shapes from ``shared/reference/bybit/``):

- ``GET /v5/public/linear`` and ``/v5/public/spot`` (WebSocket): subscribe/unsubscribe acks
  ``{"success":true,"ret_msg":"","conn_id":"<uuid>","req_id":..,"op":"subscribe"}``, refusals
  ``{"success":false,"ret_msg":"error:handler not found,topic:tickers.NOPEUSDT",..}`` (for
  symbols it does not list and for topics given to :meth:`BybitPeer.reject_topic`), pongs
  ``{"success":true,"ret_msg":"pong","conn_id":..,"req_id":..,"op":"ping"}``, and for each
  subscribed topic the recorded frames of ``tests/fixtures/bybit/<category>.jsonl`` (and
  ``<category>.generated.jsonl``) in order, one every ``interval_s``, looping with ``ts``
  moved forward each round; ``orderbook.<depth>.<symbol>`` topics are served by a
  :class:`~tests.peers.bybit_books.BookFeed` per topic (a snapshot of the venue's book on
  every subscribe, then its deltas; ``allLiquidation`` on linear only, as on Bybit);
- ``GET /v5/market/instruments-info?category=..&limit=..&cursor=..`` in Bybit's REST shape,
  paginated by ``nextPageCursor`` (``page_size`` per page).

Switches: :meth:`drop` (abort every connection, no close frame), :meth:`stall` (send nothing,
pongs included), :meth:`reject_topic`, :meth:`send_raw`, :meth:`fail_instruments`,
:meth:`first_frame_with_ack`; for order books :meth:`inject_u_gap`, :meth:`inject_restart`,
:meth:`inject_crossed` (:meth:`book` is the venue's book of a topic, which knows what it sent).
Counters: :attr:`subscribe_requests` / :attr:`unsubscribe_requests` per ``(category,
topic)``, :attr:`connections` (open ones, with their subscribed topics),
:attr:`connections_total`, :attr:`pings`, :attr:`instrument_requests`.

Use it as ``async with BybitPeer() as peer:``; ``peer.settings()`` gives ``BybitSettings``
pointing at it.
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
from tests.peers.bybit_books import BookFeed
from tests.peers.venue_server import VenueServer

from cryptowire.settings import BybitSettings

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bybit"
CATEGORIES = ("linear", "spot")
KLINE_SPAN_MS = {
    "1": 60_000, "3": 180_000, "5": 300_000, "15": 900_000, "30": 1_800_000,
    "60": 3_600_000, "120": 7_200_000, "240": 14_400_000, "360": 21_600_000,
    "720": 43_200_000, "D": 86_400_000, "W": 604_800_000, "M": 2_592_000_000,
}  # fmt: skip
QUOTES = ("USDT", "USDC", "BTC", "ETH")
#: Order book depths per category (docs: v5/websocket/public/orderbook).
BOOK_DEPTHS = {"linear": ("1", "50", "200", "500", "1000"), "spot": ("1", "50", "200", "1000")}
#: The depth of the recorded books (``orderbook.50.*``): shallower topics are cuts of them.
RECORDED_BOOK_DEPTH = 50


def dumps(obj: Any) -> str:
    """Bybit's compact JSON (no spaces), keys in the order given."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def load_fixture(category: str, directory: Path = FIXTURES) -> list[dict[str, Any]]:
    """The recorded frames of one category (``<category>.jsonl``, then the generated ones of
    ``<category>.generated.jsonl`` if there are), in file order."""
    paths = [directory / f"{category}.jsonl", directory / f"{category}.generated.jsonl"]
    return [json.loads(line) for path in paths if path.exists()
            for line in path.read_text().splitlines() if line.strip()]


@dataclass(eq=False)
class PeerConnection:
    """One client socket as the peer sees it."""

    category: str
    conn_id: str
    ws: web.WebSocketResponse
    request: web.Request
    streams: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def topics(self) -> set[str]:
        """Topics currently subscribed on this socket."""
        return set(self.streams)


class BybitPeer(VenueServer):
    """The replay server; see the module docstring."""

    def __init__(
        self,
        fixtures: Path = FIXTURES,
        *,
        interval_s: float = 0.02,
        page_size: int = 500,
        instruments: dict[str, list[str]] | None = None,
        port: int = 0,
    ) -> None:
        self.interval_s = interval_s
        self.page_size = page_size
        self.frames: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for category in CATEGORIES:
            by_topic: dict[str, list[dict[str, Any]]] = {}
            for frame in load_fixture(category, fixtures):
                by_topic.setdefault(frame["topic"], []).append(frame)
            self.frames[category] = by_topic
        if instruments is None:
            instruments = {
                cat: sorted({t.rsplit(".", 1)[1] for t in self.frames[cat]} | {"SOLUSDT"})
                for cat in CATEGORIES
            }
        self.instruments: dict[str, dict[str, str]] = {
            cat: {sym: "Trading" for sym in instruments.get(cat, [])} for cat in CATEGORIES
        }
        self.subscribe_requests: Counter[tuple[str, str]] = Counter()
        self.unsubscribe_requests: Counter[tuple[str, str]] = Counter()
        self.connections: list[PeerConnection] = []
        self.connections_total: Counter[str] = Counter()
        self.pings = 0
        self.instrument_requests = 0
        self.port = port
        self._rejected: set[str] = set()
        self._stalled = False
        self._first_frame_with_ack = False
        self._instruments_fail = False
        self.books: dict[tuple[str, str], BookFeed] = {}

    # -- lifecycle ------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v5/public/{category}", self._websocket)
        app.router.add_get("/v5/market/instruments-info", self._instruments_info)

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, category: str) -> str:
        return f"ws://127.0.0.1:{self.port}/v5/public/{category}"

    def settings(self, **overrides: Any) -> BybitSettings:
        """``BybitSettings`` whose linear, spot and REST URLs are this peer."""
        values: dict[str, Any] = {
            "linear_url": self.ws_url("linear"),
            "spot_url": self.ws_url("spot"),
            "rest_url": self.rest_url,
        }
        values.update(overrides)
        return BybitSettings(**values)

    # -- switches -------------------------------------------------------------------------

    def first_frame_with_ack(self, on: bool = True) -> None:
        """Send a newly subscribed topic's first frame right behind the subscribe ack, with
        nothing in between (as a busy exchange may): the client reads both at once."""
        self._first_frame_with_ack = on

    def book(self, topic: str = "orderbook.50.BTCUSDT", category: str = "linear") -> BookFeed:
        """The venue's book of ``topic`` (created on first use, from the fixture)."""
        feed = self.books.get((category, topic))
        if feed is None:
            frames = self._frames_for(category, topic)
            feed = BookFeed(topic, frames, self.interval_s, lambda: self._stalled,
                            cut=int(topic.split(".")[1]) < RECORDED_BOOK_DEPTH)
            self.books[(category, topic)] = feed
        return feed

    def inject_u_gap(self, topic: str = "orderbook.50.BTCUSDT", category: str = "linear") -> None:
        """Lose the next delta of ``topic``: the book moves, its ``u`` is skipped."""
        self.book(topic, category).inject("gap")

    def inject_restart(self, topic: str = "orderbook.50.BTCUSDT", category: str = "linear",
                       frame_type: str = "snapshot") -> None:
        """A service restart: the next change of ``topic`` comes as the whole book with
        ``u = 1`` (``frame_type`` ``snapshot`` as documented, or ``delta``)."""
        self.book(topic, category).inject("restart" if frame_type == "snapshot"
                                          else "restart-delta")

    def inject_crossed(self, topic: str = "orderbook.50.BTCUSDT", category: str = "linear",
                       ) -> None:
        """Send a crossed delta (a bid at the best ask) as the next ``u`` of ``topic``; the
        venue's book stays right (the next snapshot is uncrossed)."""
        self.book(topic, category).inject("crossed")

    def reject_topic(self, topic: str) -> None:
        """Refuse subscriptions to ``topic`` as Bybit refuses an unknown topic."""
        self._rejected.add(topic)

    def fail_instruments(self, failing: bool = True) -> None:
        """Make ``/v5/market/instruments-info`` answer HTTP 503."""
        self._instruments_fail = failing

    def add_instrument(self, category: str, symbol: str, status: str = "Trading") -> None:
        self.instruments[category][symbol] = status

    async def send_raw(self, text: str, category: str | None = None) -> int:
        """Send ``text`` as is to every open connection (of ``category``); how many got it."""
        sent = 0
        for conn in list(self.connections):
            if category is None or conn.category == category:
                sent += await self._send(conn, text, force=True)
        return sent

    # -- queries --------------------------------------------------------------------------

    def subscribe_count(self, topic: str, category: str = "linear") -> int:
        return self.subscribe_requests[(category, topic)]

    def unsubscribe_count(self, topic: str, category: str = "linear") -> int:
        return self.unsubscribe_requests[(category, topic)]

    def subscribed(self, category: str = "linear") -> list[set[str]]:
        """The topics of each open connection of ``category``."""
        return [conn.topics for conn in self.connections if conn.category == category]

    async def wait_until(
        self, predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
    ) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"peer: {what} not reached within {timeout} s")
            await asyncio.sleep(0.01)

    # -- websocket ------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        category = request.match_info["category"]
        if category not in CATEGORIES:
            raise web.HTTPNotFound(text=f"no such category: {category}")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        conn = PeerConnection(category, str(uuid.uuid4()), ws, request)
        self.connections.append(conn)
        self.connections_total[category] += 1
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
        try:
            request = json.loads(text)
        except ValueError:
            await self._reply(
                conn,
                {
                    "success": False,
                    "ret_msg": "error:request not json",
                    "conn_id": conn.conn_id,
                    "op": "",
                },
            )
            return
        conn.received.append(request)
        op = request.get("op")
        head: dict[str, Any] = {}
        if "req_id" in request:
            head["req_id"] = request["req_id"]
        if op == "ping":
            self.pings += 1
            await self._reply(
                conn,
                {"success": True, "ret_msg": "pong", "conn_id": conn.conn_id, **head, "op": "ping"},
            )
        elif op == "subscribe":
            await self._subscribe(conn, list(request.get("args") or []), head)
        elif op == "unsubscribe":
            for topic in request.get("args") or []:
                self.unsubscribe_requests[(conn.category, topic)] += 1
                task = conn.streams.pop(topic, None)
                if task is not None:
                    task.cancel()
            await self._reply(
                conn,
                {
                    "success": True,
                    "ret_msg": "",
                    "conn_id": conn.conn_id,
                    **head,
                    "op": "unsubscribe",
                },
            )
        else:
            await self._reply(
                conn,
                {
                    "success": False,
                    "ret_msg": f"error:unsupported op {op}",
                    "conn_id": conn.conn_id,
                    **head,
                    "op": op,
                },
            )

    async def _subscribe(self, conn: PeerConnection, args: list[str], head: dict[str, Any]) -> None:
        accepted: list[str] = []
        error = ""
        for topic in args:
            self.subscribe_requests[(conn.category, topic)] += 1
            if topic in conn.streams:
                error = error or f"error:already subscribed,topic:{topic}"
            elif not self._known(conn.category, topic):
                error = error or f"error:handler not found,topic:{topic}"
            else:
                accepted.append(topic)
        start = 1 if self._first_frame_with_ack else 0
        for topic in accepted:
            if topic.startswith("orderbook."):
                feed = self.book(topic, conn.category)
                send = functools.partial(self._send, conn)
                conn.streams[topic] = asyncio.create_task(feed.stream(send))
                continue
            conn.streams[topic] = asyncio.create_task(self._stream(conn, topic, start))
        await self._reply(
            conn,
            {
                "success": not error,
                "ret_msg": error,
                "conn_id": conn.conn_id,
                **head,
                "op": "subscribe",
            },
        )
        if start:
            for topic in accepted:
                if topic.startswith("orderbook."):
                    continue
                frames = self._frames_for(conn.category, topic)
                if frames:
                    await self._send(conn, dumps(frames[0]))

    def _known(self, category: str, topic: str) -> bool:
        if topic in self._rejected:
            return False
        parts = topic.split(".")
        if parts[0] in ("tickers", "publicTrade") and len(parts) == 2:
            symbol = parts[1]
        elif parts[0] == "kline" and len(parts) == 3 and parts[1] in KLINE_SPAN_MS:
            symbol = parts[2]
        elif parts[0] == "orderbook" and len(parts) == 3 and parts[1] in BOOK_DEPTHS[category]:
            symbol = parts[2]
        elif parts[0] == "allLiquidation" and len(parts) == 2 and category == "linear":
            symbol = parts[1]
        else:
            return False
        return self.instruments[category].get(symbol) == "Trading"

    def frames_for(self, category: str, topic: str) -> list[dict[str, Any]]:
        """The frames one round of ``topic`` streams (recorded, or re-labelled klines); each
        later round sends them again with ``ts`` moved on by :meth:`round_span_ms`."""
        return self._frames_for(category, topic)

    def round_span_ms(self, category: str, topic: str) -> int:
        """How far ``ts`` moves forward per replay round of ``topic``."""
        frames = self._frames_for(category, topic)
        return int(frames[-1]["ts"] - frames[0]["ts"] + 100) if frames else 0

    def _frames_for(self, category: str, topic: str) -> list[dict[str, Any]]:
        frames = self.frames[category].get(topic)
        if frames:
            return frames
        parts = topic.split(".")
        if parts[0] == "orderbook" and len(parts) == 3:
            # No recording at this depth: the level-50 book is a valid book of any deeper one,
            # and a shallower one is its cut (BookFeed sends the cut's changes).
            recorded = self.frames[category].get(f"orderbook.50.{parts[2]}", [])
            return [{**frame, "topic": topic} for frame in recorded]
        if parts[0] != "kline":
            return []
        # No recording for this interval: re-label another interval's candles of the symbol.
        interval, symbol = parts[1], parts[2]
        for other, recorded in self.frames[category].items():
            if other.startswith("kline.") and other.endswith(f".{symbol}"):
                out = []
                for frame in recorded:
                    candles = []
                    for candle in frame["data"]:
                        start = candle["start"] - candle["start"] % KLINE_SPAN_MS[interval]
                        candles.append(
                            {
                                **candle,
                                "start": start,
                                "end": start + KLINE_SPAN_MS[interval] - 1,
                                "interval": interval,
                            }
                        )
                    out.append({**frame, "topic": topic, "data": candles})
                return out
        return []

    async def _stream(self, conn: PeerConnection, topic: str, start: int = 0) -> None:
        frames = self._frames_for(conn.category, topic)
        if not frames:
            return
        span = frames[-1]["ts"] - frames[0]["ts"] + 100
        round_ = 0
        while True:
            for frame in frames[start if round_ == 0 else 0:]:
                await asyncio.sleep(self.interval_s)
                while self._stalled:
                    await asyncio.sleep(0.01)
                out = {**frame, "ts": frame["ts"] + round_ * span} if round_ else frame
                if not await self._send(conn, dumps(out)):
                    return
            round_ += 1

    async def _reply(self, conn: PeerConnection, obj: dict[str, Any]) -> None:
        await self._send(conn, dumps(obj))

    # -- REST -----------------------------------------------------------------------------

    async def _instruments_info(self, request: web.Request) -> web.StreamResponse:
        self.instrument_requests += 1
        if self._instruments_fail:
            return web.Response(status=503, text="Service Unavailable")
        category = request.query.get("category", "")
        if category not in CATEGORIES:
            return web.json_response(
                {
                    "retCode": 10001,
                    "retMsg": "params error: category",
                    "result": {},
                    "retExtInfo": {},
                    "time": int(time.time() * 1000),
                },
                dumps=dumps,
            )
        limit = min(int(request.query.get("limit", "500")), 1000, self.page_size)
        start = int(request.query.get("cursor") or 0)
        symbols = sorted(self.instruments[category])
        page = symbols[start : start + limit]
        cursor = str(start + limit) if start + limit < len(symbols) else ""
        body = {
            "retCode": 0,
            "retMsg": "OK",
            "result": {
                "category": category,
                "list": [self._instrument(category, s) for s in page],
                "nextPageCursor": cursor,
            },
            "retExtInfo": {},
            "time": int(time.time() * 1000),
        }
        return web.json_response(body, dumps=dumps)

    def _instrument(self, category: str, symbol: str) -> dict[str, Any]:
        quote = next((q for q in QUOTES if symbol.endswith(q) and symbol != q), "USDT")
        base = symbol[: -len(quote)]
        status = self.instruments[category][symbol]
        if category == "spot":
            return {
                "symbol": symbol,
                "baseCoin": base,
                "quoteCoin": quote,
                "innovation": "0",
                "status": status,
                "marginTrading": "utaOnly",
                "lotSizeFilter": {
                    "basePrecision": "0.000001",
                    "quotePrecision": "0.00000001",
                    "minOrderQty": "0.000048",
                    "maxOrderQty": "71.73956243",
                    "minOrderAmt": "1",
                    "maxOrderAmt": "2000000",
                },
                "priceFilter": {"tickSize": "0.01"},
            }
        return {
            "symbol": symbol,
            "contractType": "LinearPerpetual",
            "status": status,
            "baseCoin": base,
            "quoteCoin": quote,
            "launchTime": "1584230400000",
            "deliveryTime": "0",
            "deliveryFeeRate": "",
            "priceScale": "2",
            "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
            "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
            "lotSizeFilter": {
                "maxOrderQty": "1190.000",
                "minOrderQty": "0.001",
                "qtyStep": "0.001",
                "postOnlyMaxOrderQty": "1190.000",
            },
            "unifiedMarginTrade": True,
            "fundingInterval": 480,
            "settleCoin": quote,
            "copyTrading": "both",
            "upperFundingRate": "0.005",
            "lowerFundingRate": "-0.005",
        }
