"""Helpers of the hub-level Bybit tests (fixtures in conftest.py).

``peer`` (conftest) is a :class:`~tests.peers.bybit_peer.BybitPeer` on a free loopback port.
``hub_factory(**overrides)`` (conftest) starts a node with :func:`bybit_hub_settings` (SQLite
store in ``tmp_path``, memory bus, ``demo.mode = "off"``, ``bybit`` settings pointing at the
peer) behind aiohttp's ``AppRunner``/``TCPSite`` on a free port; with ``source={...}`` it runs
``BybitSource(peer.settings(), **source)`` (small ping/watchdog periods), otherwise the node
builds its sources from the settings as ``cryptowire serve`` does (BybitSource alone).

Clients are real: :mod:`websockets` connections (:meth:`BybitHub.connect`), and
:class:`LightClient` (a bare asyncio protocol doing the RFC 6455 handshake and frame parsing
by hand) when a test needs a thousand of them. :func:`expected_stream` is the independent
reading of what the peer sends: the tests compare the hub's output with it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from tests.integration.hubkit import ServedHub
from tests.peers.bybit_peer import BybitPeer
from tests.waiting import eventually
from websockets.asyncio.client import ClientConnection, connect

from cryptowire.settings import Settings, load_settings

#: The reconnect contract of issue 3, and the bound of every "at once" wait on loopback.
TIMEOUT = 5.0


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def bybit_hub_settings(tmp_path: Path, peer: BybitPeer | None, **overrides: Any) -> Settings:
    """Test defaults + ``overrides``; an empty config file keeps a stray ./cryptowire.toml out."""
    config = tmp_path / "cryptowire.toml"
    config.touch()
    defaults: dict[str, Any] = {
        "store": {"url": f"sqlite+aiosqlite:///{tmp_path / 'cryptowire.db'}"},
        "bus": {"url": "memory://"},
        "demo": {"mode": "off"},
        "binance": {"enabled": False},  # Bybit under test (tests/integration/binance_hub/)
        "demand": {"linger_s": 0.2},
        "evm": {"enabled": False},
        "services": {"enabled": False},  # the seed 004 services read tickers: not under test
        "okx": {"enabled": False},  # another venue: its own tests (tests/integration/okx_hub)
        "server": {"shutdown_grace_s": 2.0, "max_connections_per_key": 5000},
    }
    if peer is not None:
        defaults["bybit"] = peer.settings().model_dump()
    return load_settings(config, **_merge(defaults, overrides))


@dataclass
class BybitHub(ServedHub):
    """One running node, its address and helpers."""

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def connect(self) -> ClientConnection:
        # An unbounded queue keeps reading the socket while a test is not looking, so the
        # close handshake at teardown is never stuck behind unread data frames.
        ws = await connect(self.ws_url, open_timeout=TIMEOUT, ping_interval=None, proxy=None,
                           max_size=2**24, max_queue=None, close_timeout=2)
        self.clients.append(ws)
        return ws

    async def get(self, path: str) -> tuple[int, dict[str, Any]]:
        async with self.http.get(f"{self.url}{path}") as resp:
            body: dict[str, Any] = await resp.json()
            return resp.status, body



HubFactory = Callable[..., Awaitable[BybitHub]]


# -- websockets helpers ------------------------------------------------------------------------


async def recv_json(ws: ClientConnection, timeout: float = TIMEOUT) -> Any:
    return orjson.loads(await asyncio.wait_for(ws.recv(), timeout))


def is_data(msg: Any) -> bool:
    return isinstance(msg, dict) and ("offset" in msg or "stream" in msg)


async def call(ws: ClientConnection, frame: dict[str, Any] | str,
               timeout: float = TIMEOUT) -> Any:
    """Send ``frame``; the next message that is not a data frame."""
    await ws.send(frame if isinstance(frame, str) else orjson.dumps(frame).decode())
    async with asyncio.timeout(timeout):
        while True:
            msg = await recv_json(ws, timeout)
            if not is_data(msg):
                return msg


async def subscribe(ws: ClientConnection, *channels: str) -> dict[str, Any]:
    reply: dict[str, Any] = await call(ws, {"op": "subscribe", "args": list(channels)})
    assert reply["op"] == "subscribe", reply
    return reply


async def wait_for(predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> float:
    """Poll ``predicate``; the seconds it took, or AssertionError after ``timeout``."""
    return await eventually(predicate, timeout, what)


# -- an independent reading of the fixtures -----------------------------------------------------

#: Mudrex/cryptowire ticker field <- Bybit ticker field (PROTOCOLS.md section 1).
TICKER_FIELDS = {
    "price": "lastPrice", "markPrice": "markPrice", "indexPrice": "indexPrice",
    "high24h": "highPrice24h", "low24h": "lowPrice24h", "prevPrice24h": "prevPrice24h",
    "volume24h": "volume24h", "turnover24h": "turnover24h", "change24hPercent": "price24hPcnt",
    "tickDirection": "tickDirection", "openInterest": "openInterest",
    "openInterestValue": "openInterestValue", "fundingRate": "fundingRate",
    "nextFundingTime": "nextFundingTime",
}  # fmt: skip
KLINE_BYBIT = {"1m": "1", "3m": "3", "5m": "5", "15m": "15", "30m": "30", "1h": "60",
               "2h": "120", "4h": "240", "6h": "360", "12h": "720", "1d": "D", "1w": "W",
               "1M": "M"}


def ticker_of(state: dict[str, Any]) -> dict[str, Any]:
    def get(name: str) -> Any:
        value = state.get(name)
        return None if value == "" else value

    out: dict[str, Any] = {"symbol": state["symbol"]}
    out.update({name: get(up) for name, up in TICKER_FIELDS.items()})
    pct = out["change24hPercent"]  # Bybit's fraction as a percent: the point moved 2 places
    out["change24hPercent"] = None if pct is None else f"{Decimal(pct).scaleb(2):f}"
    out["bid"] = {"price": get("bid1Price"), "size": get("bid1Size")}
    out["ask"] = {"price": get("ask1Price"), "size": get("ask1Size")}
    return out


def messages_of(frames: list[dict[str, Any]], interval: str | None = None,
                ) -> list[tuple[int, Any]]:
    """``(ts, data)`` of every message the hub must deliver for ``frames`` (one topic), in order.

    Tickers: a snapshot replaces the state, a delta overlays it; one message per frame with
    the full state. Klines: one message per candle, with the canonical ``interval`` asked for.
    Trades: one message per frame, whose data is the list of the frame's trades.
    """
    out: list[tuple[int, Any]] = []
    state: dict[str, Any] = {}
    for frame in frames:
        kind = frame["topic"].split(".")[0]
        if kind == "tickers":
            if frame["type"] == "snapshot":
                state = dict(frame["data"])
            else:
                state = {**state, **frame["data"]}
            out.append((frame["ts"], ticker_of(state)))
        elif kind == "kline":
            assert interval is not None
            out.extend((frame["ts"], {
                "symbol": frame["topic"].split(".")[2], "interval": interval,
                "openTime": c["start"], "closeTime": c["end"], "open": c["open"],
                "high": c["high"], "low": c["low"], "close": c["close"],
                "volume": c["volume"], "turnover": c["turnover"], "confirmed": c["confirm"],
            }) for c in frame["data"])
        else:
            out.append((frame["ts"], [{
                "id": t["i"], "symbol": t["s"], "price": t["p"], "quantity": t["v"],
                "side": t["S"].lower(), "time": t["T"], "isBlockTrade": t.get("BT", False),
            } for t in frame["data"]]))
    return out


def expected_stream(peer: BybitPeer, category: str, topic: str, interval: str | None = None,
                    rounds: int = 20) -> list[tuple[int, Any]]:
    """What the hub must deliver for ``topic`` over ``rounds`` replay rounds of the peer (each
    round resends the frames with ``ts`` moved forward; a round starts with a snapshot)."""
    frames = peer.frames_for(category, topic)
    assert frames, f"the peer has no frames for {category} {topic}"
    span = peer.round_span_ms(category, topic)
    one = messages_of(frames, interval)
    return [(ts + r * span, data) for r in range(rounds) for ts, data in one]


def string_leaves(value: Any, key: str = "") -> list[tuple[str, str]]:
    """Every ``(key, string)`` pair of a JSON value (decimal strings among them)."""
    if isinstance(value, str):
        return [(key, value)]
    if isinstance(value, dict):
        return [leaf for k, v in value.items() for leaf in string_leaves(v, k)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in string_leaves(v, key)]
    return []


# -- a light client, for a thousand connections in one process -----------------------------------

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame (RFC 6455 5.3), mask all zero bytes but set."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + b"\x00\x00\x00\x00" + payload  # a zero mask leaves the payload as is


class LightClient(asyncio.Protocol):
    """One WebSocket client: handshake, subscribe, then count and keep text messages."""

    def __init__(self, subscribe: bytes) -> None:
        self.subscribe = subscribe
        key = base64.b64encode(os.urandom(16))
        self.key = key
        self.accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())  # noqa: S324
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.buf = b""
        self.open = False
        self.replies: list[Any] = []
        self.data = 0
        self.closed = False
        self.close_code: int | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + self.key +
                        b"\r\nSec-WebSocket-Version: 13\r\n\r\n")

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("lost during the handshake"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if not self.open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            head = buf[:end]
            if not head.startswith(b"HTTP/1.1 101") or self.accept not in head:
                self.opened.set_exception(ConnectionError(f"bad handshake: {head[:200]!r}"))
                assert self.transport is not None
                self.transport.close()
                return
            self.open = True
            self.opened.set_result(None)
            assert self.transport is not None
            self.transport.write(client_frame(self.subscribe))
            buf = buf[end + 4:]
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            n = buf[pos + 1] & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = struct.unpack_from("!H", buf, pos + 2)[0]
                head = 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = struct.unpack_from("!Q", buf, pos + 2)[0]
                head = 10
            if size - pos < head + n:
                break
            opcode = buf[pos] & 0x0F
            payload = buf[pos + head: pos + head + n]
            if opcode == 0x1:
                if payload.startswith(b'{"op"') or payload.startswith(b'{"id"'):
                    self.replies.append(orjson.loads(payload))
                else:
                    self.data += 1
            elif opcode == 0x9 and self.transport is not None:
                self.transport.write(client_frame(payload, 0xA))
            elif opcode == 0x8:
                if len(payload) >= 2:
                    self.close_code = struct.unpack("!H", payload[:2])[0]
                if self.transport is not None:
                    self.transport.close()
            pos += head + n
        self.buf = buf[pos:]

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(client_frame(struct.pack("!H", 1000), 0x8))
            self.transport.close()


async def light_clients(port: int, n: int, subscribe: dict[str, Any], *,
                        concurrency: int = 100) -> list[LightClient]:
    """``n`` connected clients, each having sent ``subscribe`` once open."""
    loop = asyncio.get_running_loop()
    payload = orjson.dumps(subscribe)
    sem = asyncio.Semaphore(concurrency)

    async def one() -> LightClient:
        async with sem:
            _, client = await loop.create_connection(lambda: LightClient(payload),
                                                     "127.0.0.1", port)
            await asyncio.wait_for(client.opened, TIMEOUT * 2)
            return client

    return list(await asyncio.gather(*(one() for _ in range(n))))
