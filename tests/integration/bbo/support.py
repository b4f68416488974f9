"""Helpers of the bbo hub tests: a test source serving ``book:`` channels of any venue whose
events the test publishes itself through the node's broker (only Bybit has a source on this
branch), optionally handing Bybit's (``linear``/``spot``) to a real source (the Bybit replay
peer's); the served hub; a reader of ``bbo`` frames."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from tests.integration.hubkit import ServedHub
from websockets.asyncio.client import ClientConnection, connect

from cryptowire.core.channels import Channel
from cryptowire.core.source import PublishFn, Source, SourceStatus
from cryptowire.errors import SourceError
from cryptowire.events import Event

TIMEOUT = 5.0
BYBIT, BINANCE, OKX = "book:1:BTCUSDT", "book:5:BTCUSDT@binance", "book:1:BTCUSDT@okx"
SOURCE = {BYBIT: "bybit", BINANCE: "binance", OKX: "okx"}


@dataclass
class InjectedBooks:
    """Accepts every ``book:`` channel (``refuse`` maps a venue to its refusal reason);
    ``bybit``, when given, serves the Bybit venues."""

    bybit: Source | None = None
    refuse: dict[str, str] = field(default_factory=dict)
    subscribed: list[str] = field(default_factory=list)
    refusals: Counter[str] = field(default_factory=Counter)  # venue -> subscribes refused
    unsubscribed: list[str] = field(default_factory=list)
    name: str = "books"
    kinds: frozenset[str] = frozenset({"book"})

    async def start(self, publish: PublishFn) -> None:
        if self.bybit is not None:
            await self.bybit.start(publish)

    async def stop(self) -> None:
        if self.bybit is not None:
            await self.bybit.stop()

    def _bybit(self, channel: Channel) -> Source | None:
        return self.bybit if channel.venue in ("linear", "spot") else None

    async def subscribe(self, channel: Channel) -> None:
        reason = self.refuse.get(channel.venue or "")
        if reason is not None:
            self.refusals[channel.venue or ""] += 1
            raise SourceError(reason)
        if (bybit := self._bybit(channel)) is not None:
            await bybit.subscribe(channel)
        self.subscribed.append(channel.name)

    async def unsubscribe(self, channel: Channel) -> None:
        if (bybit := self._bybit(channel)) is not None:
            await bybit.unsubscribe(channel)
        self.unsubscribed.append(channel.name)

    @property
    def active(self) -> set[str]:
        out = set(self.subscribed)
        for name in self.unsubscribed:
            out.discard(name)
        return out

    def status(self) -> SourceStatus:
        return SourceStatus(name=self.name, state="up")


class Hub(ServedHub):
    books: InjectedBooks

    async def client(self) -> ClientConnection:
        ws = await connect(f"ws://127.0.0.1:{self.port}/ws", proxy=None, max_queue=None,
                           open_timeout=TIMEOUT, close_timeout=2)
        self.clients.append(ws)
        return ws

    async def book(self, channel: str, kind: str, bids: list[list[str]],
                   asks: list[list[str]]) -> None:
        data: dict[str, Any] = {"symbol": "BTCUSDT", "bids": bids, "asks": asks}
        await self.node.broker.publish(Event(channel=channel, type=kind, data=data,
                                             source=SOURCE[channel]))

    async def gap(self, channel: str) -> None:
        await self.node.broker.publish(Event(channel=channel, type="gap",
                                             data={"reason": "test"}, source=SOURCE[channel]))


HubFactory = Callable[..., Awaitable[Hub]]


class BboReader:
    """The ``bbo:BTCUSDT`` frames one client got, in order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []

    async def subscribe(self) -> dict[str, Any]:
        await self.ws.send(orjson.dumps({"id": 1, "op": "subscribe",
                                         "args": ["bbo:btcusdt"]}).decode())
        async with asyncio.timeout(TIMEOUT):
            while True:
                msg = orjson.loads(await self.ws.recv())
                if msg.get("op") == "subscribe":
                    return dict(msg)

    async def until(self, pred: Callable[[dict[str, Any]], bool], what: str,
                    ) -> dict[str, Any]:
        """Read frames until one satisfies ``pred`` (the latest one read may already)."""
        if self.frames and pred(self.frames[-1]["data"]):
            return self.frames[-1]
        async with asyncio.timeout(TIMEOUT):
            while True:
                msg = orjson.loads(await self.ws.recv())
                if msg.get("channel") != "bbo:BTCUSDT":
                    continue
                if self.frames:
                    assert msg["offset"] == self.frames[-1]["offset"] + 1
                self.frames.append(msg)
                if pred(msg["data"]):
                    return msg
        raise AssertionError(what)  # pragma: no cover - the timeout raises first


def best(data: dict[str, Any], side: str) -> tuple[str, str, str] | None:
    quote = data[side]
    return None if quote is None else (quote["venue"], quote["price"], quote["size"])
