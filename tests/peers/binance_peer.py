"""A real WebSocket + REST server speaking Binance's public market-data protocol, for tests.

It listens on ``127.0.0.1`` (a free port) and serves, in the shapes of
``tests/fixtures/binance/`` (whose README cites the documentation pages):

- WebSocket combined streams: USDⓈ-M futures ``/public/stream`` (``depth``, ``bookTicker``)
  and ``/market/stream`` (the rest), spot ``/stream`` (``?streams=a/b`` subscribes at
  connect). ``{"method":"SUBSCRIBE"|"UNSUBSCRIBE","params":[..],"id":N}`` is answered
  ``{"result":null,"id":N}``; ``LIST_SUBSCRIPTIONS`` with the list; a bad request with
  ``{"error":{"code":2,"msg":..},"id":N}`` (futures) or ``{"code":2,"msg":..,"id":N}`` (spot).
  Like Binance, a stream of a symbol it does not list is accepted and sends nothing; a
  stream on the wrong futures endpoint too. The server sends WebSocket pings every
  ``ping_s`` and closes a connection that does not answer (aiohttp's heartbeat).
- Each subscribed stream replays the fixture frames of that stream (``btcusdt@…``; another
  listed symbol gets them with its symbol, a kline interval re-labelled), one every
  ``interval_s``, looping with times moved on; ``@depth@100ms`` streams come from one
  :class:`~tests.peers.binance_books.DepthFeed` per (market, symbol) (the venue's book).
- REST: ``GET /fapi/v1/depth`` and ``/api/v3/depth`` (``symbol``, ``limit``) from that book,
  ``GET /fapi/v1/exchangeInfo`` and ``/api/v3/exchangeInfo`` (the fixtures, with the symbols
  of :attr:`BinancePeer.instruments`).

Faults: :meth:`drop` (abort every connection), :meth:`stall` (send nothing, replies
included), :meth:`inject` on a book (``gap``, ``pu``, ``stale``), :meth:`fail_depth` (REST
depth answers HTTP 503). Every data frame sent is kept per stream in :attr:`sent`, so a
test compares what the hub delivered with what the venue sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from tests.peers.binance_books import DepthFeed, dumps
from tests.peers.venue_server import VenueServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "binance"
ENDPOINTS = {"/public/stream": ("futures", "public"), "/market/stream": ("futures", "market"),
             "/stream": ("spot", "spot")}
PUBLIC = ("bookTicker", "depth@100ms")
FILES = {"futures": ("futures-market.jsonl", "futures-public.jsonl"), "spot": ("spot.jsonl",)}
KLINE_MS = {"1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
            "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000,
            "12h": 43_200_000, "1d": 86_400_000, "1w": 604_800_000, "1M": 2_592_000_000}


@dataclass(eq=False)
class PeerConnection:
    market: str
    endpoint: str
    ws: web.WebSocketResponse
    request: web.Request
    streams: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)


class BinancePeer(VenueServer):
    """The replay server; see the module docstring."""

    def __init__(self, *, interval_s: float = 0.02, ping_s: float = 1.0, port: int = 0,
                 instruments: dict[str, set[str]] | None = None) -> None:
        self.interval_s = interval_s
        self.ping_s = ping_s
        self.port = port
        self.frames: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for market, files in FILES.items():
            by_stream: dict[str, list[dict[str, Any]]] = {}
            for name in files:
                for line in (FIXTURES / name).read_text().splitlines():
                    frame = json.loads(line)
                    if "stream" in frame:
                        by_stream.setdefault(frame["stream"], []).append(frame["data"])
            self.frames[market] = by_stream
        self.instruments = instruments or {"futures": {"BTCUSDT", "ETHUSDT", "SOLUSDT"},
                                           "spot": {"BTCUSDT", "ETHUSDT", "SOLUSDT"}}
        self.books: dict[tuple[str, str], DepthFeed] = {}
        self.connections: list[PeerConnection] = []
        self.connections_total: Counter[str] = Counter()
        self.subscribe_requests: Counter[tuple[str, str]] = Counter()
        self.unsubscribe_requests: Counter[tuple[str, str]] = Counter()
        self.depth_requests: Counter[tuple[str, str]] = Counter()
        self.info_requests = 0
        self.sent: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._stalled = False
        self._depth_fail = False

    # -- lifecycle ---------------------------------------------------------------------------

    def routes(self, app: web.Application) -> None:
        for path in ENDPOINTS:
            app.router.add_get(path, self._websocket)
        app.router.add_get("/fapi/v1/depth", self._depth)
        app.router.add_get("/api/v3/depth", self._depth)
        app.router.add_get("/fapi/v1/exchangeInfo", self._info)
        app.router.add_get("/api/v3/exchangeInfo", self._info)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_base(self) -> str:
        """The futures WebSocket base (``…/public/stream`` and ``…/market/stream`` under it)."""
        return f"ws://127.0.0.1:{self.port}"

    @property
    def spot_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    def settings_values(self) -> dict[str, str]:
        """The ``[binance]`` settings pointing at this peer."""
        return {"futures_public_url": f"{self.ws_base}/public/stream",
                "futures_market_url": f"{self.ws_base}/market/stream",
                "futures_rest_url": self.base_url, "spot_url": self.spot_url,
                "spot_rest_url": self.base_url}

    # -- switches ----------------------------------------------------------------------------

    def fail_depth(self, failing: bool = True) -> None:
        self._depth_fail = failing

    def book(self, market: str = "futures", symbol: str = "BTCUSDT") -> DepthFeed:
        """The venue's book of ``symbol`` (created on first use)."""
        feed = self.books.get((market, symbol))
        if feed is None:
            feed = DepthFeed(market, symbol, self.interval_s, lambda: self._stalled)
            self.books[(market, symbol)] = feed
        return feed

    def inject(self, fault: str, market: str = "futures", symbol: str = "BTCUSDT") -> None:
        self.book(market, symbol).inject(fault)

    def subscribed(self, market: str) -> set[str]:
        return {s for c in self.connections if c.market == market for s in c.streams}

    # -- websocket ---------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        market, endpoint = ENDPOINTS[request.path]
        ws = web.WebSocketResponse(autoping=True, heartbeat=self.ping_s)
        await ws.prepare(request)
        conn = PeerConnection(market, endpoint, ws, request)
        self.connections.append(conn)
        self.connections_total[endpoint] += 1
        for stream in filter(None, request.query.get("streams", "").split("/")):
            self._start(conn, stream)
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
            method, request_id = request["method"], request.get("id")
        except (ValueError, KeyError, TypeError):
            await self._error(conn, 3 if not text.startswith("{") else 2,
                              "Invalid JSON: expected value at line 1 column 1", None)
            return
        conn.received.append(request)
        params = request.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE") and (
                not isinstance(params, list) or not all(isinstance(p, str) for p in params)):
            await self._error(conn, 2, "Invalid request: params must be a list of streams",
                              request_id)
            return
        if method == "SUBSCRIBE":
            for stream in params:
                self.subscribe_requests[(conn.endpoint, stream)] += 1
                self._start(conn, stream)
            await self._send(conn, dumps({"result": None, "id": request_id}))
        elif method == "UNSUBSCRIBE":
            for stream in params:
                self.unsubscribe_requests[(conn.endpoint, stream)] += 1
                task = conn.streams.pop(stream, None)
                if task is not None:
                    task.cancel()
            await self._send(conn, dumps({"result": None, "id": request_id}))
        elif method == "LIST_SUBSCRIPTIONS":
            await self._send(conn, dumps({"result": sorted(conn.streams), "id": request_id}))
        else:
            await self._error(conn, 2, f"Invalid request: unknown variant `{method}`, expected "
                              "one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`",
                              request_id)

    async def _error(self, conn: PeerConnection, code: int, msg: str, request_id: Any) -> None:
        if conn.market == "futures":
            body: dict[str, Any] = {"error": {"code": code, "msg": msg}}
        else:
            body = {"code": code, "msg": msg}
        if request_id is not None:
            body["id"] = request_id
        await self._send(conn, dumps(body))

    def _start(self, conn: PeerConnection, stream: str) -> None:
        if stream in conn.streams:
            return
        symbol, _, name = stream.partition("@")
        symbol = symbol.upper()
        served = conn.market == "spot" or (name in PUBLIC) == (conn.endpoint == "public")
        if symbol not in self.instruments[conn.market] or not served:
            conn.streams[stream] = asyncio.create_task(asyncio.sleep(0))  # accepted, silent
            return
        if name == "depth@100ms":
            feed = self.book(conn.market, symbol)
            conn.streams[stream] = asyncio.create_task(
                feed.serve(lambda text: self._send(conn, text)))
            return
        frames = self._frames_for(conn.market, symbol, name)
        conn.streams[stream] = asyncio.create_task(self._replay(conn, stream, frames))

    def _frames_for(self, market: str, symbol: str, name: str) -> list[dict[str, Any]]:
        recorded = self.frames[market].get(f"btcusdt@{name}")
        if recorded is None and name.startswith("kline_"):
            base = next(v for k, v in self.frames[market].items() if "@kline_" in k)
            span = KLINE_MS.get(name[6:], 60_000)
            recorded = [{**f, "k": {**f["k"], "i": name[6:], "t": f["k"]["t"] - f["k"]["t"] % span,
                                    "T": f["k"]["t"] - f["k"]["t"] % span + span - 1}}
                        for f in base]
        out = []
        for frame in recorded or []:
            frame = {**frame, "s": symbol} if "s" in frame else dict(frame)
            if isinstance(frame.get("k"), dict):
                frame["k"] = {**frame["k"], "s": symbol}
            if isinstance(frame.get("o"), dict):
                frame["o"] = {**frame["o"], "s": symbol}
            out.append(frame)
        return out

    async def _replay(self, conn: PeerConnection, stream: str,
                      frames: list[dict[str, Any]]) -> None:
        if not frames:
            return
        log = self.sent.setdefault((conn.market, stream), [])
        shift, span = 0, 60_000
        while True:
            for frame in frames:
                await asyncio.sleep(self.interval_s)
                while self._stalled:
                    await asyncio.sleep(0.01)
                data = _shifted(frame, shift) if shift else frame
                log.append(data)
                if not await self._send(conn, dumps({"stream": stream, "data": data})):
                    return
            shift += span

    # -- REST --------------------------------------------------------------------------------

    async def _depth(self, request: web.Request) -> web.StreamResponse:
        market = "futures" if request.path.startswith("/fapi") else "spot"
        symbol = request.query.get("symbol", "")
        self.depth_requests[(market, symbol)] += 1
        if self._depth_fail:
            return web.Response(status=503, text="Service Unavailable")
        if symbol not in self.instruments[market]:
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        limit = int(request.query.get("limit", "100"))
        return web.Response(text=dumps(self.book(market, symbol).snapshot(limit)),
                            content_type="application/json")

    async def _info(self, request: web.Request) -> web.StreamResponse:
        self.info_requests += 1
        market = "futures" if request.path.startswith("/fapi") else "spot"
        name = "exchangeInfo-fapi.json" if market == "futures" else "exchangeInfo-api.json"
        info = json.loads((FIXTURES / name).read_text())
        template = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
        listed = {s["symbol"] for s in info["symbols"]}
        for symbol in sorted(self.instruments[market] - listed):
            info["symbols"].append({**template, "symbol": symbol, "pair": symbol})
        info["symbols"] = [s for s in info["symbols"]
                           if s["symbol"] in self.instruments[market] or s["status"] != "TRADING"
                           or s.get("contractType", "PERPETUAL") != "PERPETUAL"]
        return web.Response(text=dumps(info), content_type="application/json")


def _shifted(frame: dict[str, Any], shift: int) -> dict[str, Any]:
    """A frame of a later replay round: its times moved on by ``shift`` ms."""
    out = dict(frame)
    for key in ("E", "T", "O", "C"):
        if isinstance(out.get(key), int):
            out[key] += shift
    for key in ("k", "o"):
        if isinstance(out.get(key), dict):
            inner = dict(out[key])
            for sub in ("t", "T"):
                if isinstance(inner.get(sub), int):
                    inner[sub] += shift
            out[key] = inner
    return out
