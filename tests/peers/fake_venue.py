"""A tiny made-up venue over a real local WebSocket, for the shared supervisor's tests.

Its protocol (what ``tests/integration/sources/test_exchange_supervisor.py`` declares):

- sockets at ``/ws/<endpoint>``; the client sends the text ``ping``, the peer answers
  ``pong`` (a socket open when :meth:`FakeVenuePeer.mute` was called answers nothing at
  all: a stalled upstream; sockets opened later are fine);
- ``{"id":"<n>","op":"sub"|"unsub","args":[<stream>..]}`` is answered
  ``{"id":"<n>","ok":true}``, or ``{"id":"<n>","ok":false,"msg":".."}`` when one of the args
  is refused (the whole request fails, as Bybit does); each subscribed stream at once gets a
  first data frame ``{"s":<stream>,"v":"1","ts":<n>}``; :meth:`push` sends more;
- :meth:`FakeVenuePeer.hold` makes a socket lag (pushed frames queued until released);
- ``GET /instruments`` lists the native symbols; ``GET /snapshot?stream=..`` answers
  ``{"stream":..,"seq":<n>}``.

Numbered frames and books (for socket rotation): every frame of a stream carries ``"n"``, the
venue's frame number of that stream, the same on every socket (a subscribe's first frame
carries the current state and number). A stream ``k.<symbol>`` is a book the venue keeps:
the first frame of a subscription is ``{"s","type":"snapshot","b":[..],"a":[..],"n","ts"}``
(the whole book), :meth:`push_book` changes it and sends ``{"type":"delta",..}`` with the
changed levels (size "0" removes); :attr:`FakeVenuePeer.history` keeps the book after each
number. :attr:`FakeVenuePeer.refuse_connections` answers new sockets 503.
"""

from __future__ import annotations

import itertools
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web
from tests.waiting import eventually

from cryptowire.books import OrderBook


@dataclass(eq=False)
class PeerSocket:
    endpoint: str
    ws: web.WebSocketResponse
    received: list[Any] = field(default_factory=list)  # decoded requests and "ping"
    streams: set[str] = field(default_factory=set)
    muted: bool = False
    held: list[str] | None = None  # pushed frames held back (a lagging socket)


class FakeVenuePeer:
    def __init__(self, symbols: tuple[str, ...] = ("btc-usdt", "eth-usdt", "sol-usdt")) -> None:
        self.symbols = list(symbols)
        self.sockets: list[PeerSocket] = []
        self.refused: set[str] = set()
        self.snapshots: Counter[str] = Counter()
        self.pings = 0
        self.refuse_connections = False
        self.numbers: Counter[str] = Counter()  # stream -> number of its last frame
        self.values: dict[str, str] = {}  # stream -> its latest value (ticker-like streams)
        self.books: dict[str, OrderBook] = {}
        self.history: dict[str, dict[int, tuple[list[list[str]], list[list[str]]]]] = {}
        self.port = 0
        self._ts = itertools.count(1)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, endpoint: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/{endpoint}"

    async def __aenter__(self) -> FakeVenuePeer:
        app = web.Application()
        app.router.add_get("/ws/{endpoint}", self._websocket)
        app.router.add_get("/instruments", self._instruments)
        app.router.add_get("/snapshot", self._snapshot)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.drop()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- control --------------------------------------------------------------------------

    def open_sockets(self, endpoint: str | None = None) -> list[PeerSocket]:
        return [s for s in self.sockets if not s.ws.closed
                and (endpoint is None or s.endpoint == endpoint)]

    def subscribed(self, endpoint: str | None = None) -> list[set[str]]:
        """The streams of each open socket (of ``endpoint``)."""
        return [set(s.streams) for s in self.open_sockets(endpoint)]

    def requests(self, op: str) -> list[list[str]]:
        return [r["args"] for s in self.sockets for r in s.received
                if isinstance(r, dict) and r.get("op") == op]

    def mute(self) -> None:
        """Stall every open socket: it reads and answers nothing from now on."""
        for sock in self.open_sockets():
            sock.muted = True

    async def push(self, stream: str, value: str) -> int:
        """Send a data frame of ``stream`` to every socket carrying it; how many got it."""
        self.numbers[stream] = max(self.numbers[stream], 1) + 1  # the initial state is 1
        self.values[stream] = value
        return await self._send_all(stream, self._frame(stream, value))

    async def push_book(self, stream: str, bids: list[list[str]], asks: list[list[str]]
                        ) -> int:
        """Change the book ``stream`` and send the delta to every socket carrying it."""
        book = self._book(stream)
        book.apply(bids, asks)
        n = self.numbers[stream] = self.numbers[stream] + 1
        self.history[stream][n] = (book.levels("bids"), book.levels("asks"))
        return await self._send_all(stream, orjson.dumps(
            {"s": stream, "type": "delta", "b": bids, "a": asks, "n": n,
             "ts": next(self._ts)}).decode())

    def hold(self, sock: PeerSocket) -> None:
        """Hold pushed frames back from ``sock`` (it lags behind the others) until
        :meth:`release`; acks, first frames and pongs still go."""
        sock.held = []

    async def release(self, sock: PeerSocket) -> None:
        held, sock.held = sock.held or [], None
        for text in held:
            try:
                await sock.ws.send_str(text)
            except ConnectionError:  # closed meanwhile
                return

    async def _send_all(self, stream: str, text: str) -> int:
        sent = 0
        for sock in self.open_sockets():
            if stream in sock.streams:
                if sock.held is not None:
                    sock.held.append(text)
                    sent += 1
                    continue
                try:
                    await sock.ws.send_str(text)
                except ConnectionError:  # the client is closing it (a rotated socket)
                    continue
                sent += 1
        return sent

    def _book(self, stream: str) -> OrderBook:
        if stream not in self.books:
            self.books[stream] = OrderBook()
            self.numbers[stream] = self.numbers[stream] or 1
            self.history[stream] = {self.numbers[stream]: ([], [])}
        return self.books[stream]

    async def drop(self) -> None:
        for sock in self.open_sockets():
            await sock.ws.close()

    async def wait(self, predicate: Any, what: str, timeout: float = 5.0) -> None:
        await eventually(predicate, timeout, what)

    # -- handlers -------------------------------------------------------------------------

    def _frame(self, stream: str, value: str) -> str:
        return orjson.dumps({"s": stream, "v": value, "n": self.numbers[stream] or 1,
                             "ts": next(self._ts)}).decode()

    def _first(self, stream: str) -> str:
        """A subscription's first frame: the current state, with its number."""
        if not stream.startswith("k."):
            return self._frame(stream, self.values.get(stream, "1"))
        book = self._book(stream)
        return orjson.dumps({"s": stream, "type": "snapshot", "b": book.levels("bids"),
                             "a": book.levels("asks"), "n": self.numbers[stream],
                             "ts": next(self._ts)}).decode()

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if self.refuse_connections:
            raise web.HTTPServiceUnavailable(text="no new connections")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        sock = PeerSocket(request.match_info["endpoint"], ws)
        self.sockets.append(sock)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT or sock.muted:
                continue
            if msg.data == "ping":
                self.pings += 1
                sock.received.append("ping")
                await ws.send_str("pong")
                continue
            await self._request(sock, orjson.loads(msg.data))
        return ws

    async def _request(self, sock: PeerSocket, req: dict[str, Any]) -> None:
        sock.received.append(req)
        args = list(req["args"])
        bad = [a for a in args if a in self.refused]
        if bad:
            await sock.ws.send_str(orjson.dumps(
                {"id": req["id"], "ok": False, "msg": f"unknown stream {bad[0]}"}).decode())
            return
        if req["op"] == "unsub":
            sock.streams.difference_update(args)
        else:
            sock.streams.update(args)
        await sock.ws.send_str(orjson.dumps({"id": req["id"], "ok": True}).decode())
        if req["op"] == "sub":
            for arg in args:
                await sock.ws.send_str(self._first(arg))

    async def _instruments(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"list": self.symbols})

    async def _snapshot(self, request: web.Request) -> web.StreamResponse:
        stream = request.query["stream"]
        self.snapshots[stream] += 1
        return web.json_response({"stream": stream, "seq": self.snapshots[stream]})
