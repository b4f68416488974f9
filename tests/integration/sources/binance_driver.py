"""A minimal driver of :class:`BinanceFeed` over real sockets, for the peer tests before the
exchange seam: one aiohttp WebSocket per endpoint, SUBSCRIBE with acks, REST depth fetches,
everything published kept in order. Not the product's connection code (the seam's
supervisor is): just enough I/O to run the sans-I/O feed against the peer."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import orjson

from cryptowire.core.channels import Channel
from cryptowire.events import Event
from cryptowire.sources.venues.binance.feed import BinanceFeed
from cryptowire.sources.venues.binance.frames import Reply
from cryptowire.sources.venues.binance.markets import BinanceMarket, Endpoint, subscribe_request


class Driver:
    def __init__(self, market: BinanceMarket, session: aiohttp.ClientSession) -> None:
        self.feed = BinanceFeed(market)
        self.market = market
        self.session = session
        self.events: list[Event] = []
        self.replies: list[Reply] = []
        self.sockets: dict[Endpoint, aiohttp.ClientWebSocketResponse] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self._id = 0

    async def start(self, *, autoping: bool = True) -> None:
        for endpoint, url in self.market.ws_urls.items():
            ws = await self.session.ws_connect(url, autoping=autoping)
            self.sockets[endpoint] = ws
            self.tasks.append(asyncio.create_task(self._read(endpoint, ws)))

    async def add(self, channel: Channel) -> None:
        new, events = self.feed.add(channel)
        self.events += events
        for endpoint, streams in new.items():
            self._id += 1
            await self.sockets[endpoint].send_str(
                orjson.dumps(subscribe_request(streams, self._id)).decode())

    async def reconnect(self) -> None:
        """New sockets, every stream subscribed again."""
        await self.stop()
        await self.start()
        for endpoint in self.sockets:
            streams = self.feed.streams(endpoint)
            if streams:
                self._id += 1
                await self.sockets[endpoint].send_str(
                    orjson.dumps(subscribe_request(streams, self._id)).decode())

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for ws in self.sockets.values():
            await ws.close()
        self.tasks, self.sockets = [], {}

    async def _read(self, endpoint: Endpoint, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            out = self.feed.on_message(msg.data)
            self.events += out.events
            if out.reply is not None:
                self.replies.append(out.reply)
            for symbol in out.fetch:
                asyncio.get_running_loop().create_task(self._fetch(symbol))
        self.events += self.feed.on_disconnect(endpoint, "closed").events

    async def _fetch(self, symbol: str) -> None:
        async with self.session.get(self.market.depth_url(symbol)) as response:
            if response.status != 200:
                self.feed.on_depth_failure(symbol)
                return
            payload: Any = orjson.loads(await response.read())
        out = self.feed.on_depth_snapshot(symbol, payload)
        self.events += out.events
        for again in out.fetch:
            asyncio.get_running_loop().create_task(self._fetch(again))
