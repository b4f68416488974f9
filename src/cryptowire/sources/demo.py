"""The demo source: a synthetic market and chain, so a newcomer offline sees data at once.

Random-walk tickers, trades, klines, order books (:mod:`~cryptowire.sources.demo_book`) and
liquidations for a few symbols, and synthetic swaps and burns on one chain. Every event says
``source: "demo"``; prices are ``Decimal`` quantized to the symbol's tick, sent as strings
like real ones. It only produces channels someone subscribed to.

A ``book:`` channel gets a ``snapshot`` when it is subscribed (again), then a ``delta`` every
``demo.book_interval_s`` (PROTOCOLS.md 4.1). Trades and liquidations are events: always type
``update``, never ``snapshot`` (4.2).
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from decimal import Decimal, localcontext

from cryptowire.clock import now_ms
from cryptowire.core.channels import KLINE_INTERVALS, Channel
from cryptowire.core.source import PublishFn, SourceStatus
from cryptowire.errors import SourceError
from cryptowire.events import Event
from cryptowire.jsonnum import decimal_str
from cryptowire.settings import DemoSettings
from cryptowire.sources.demo_book import DemoBook
from cryptowire.tasks import Supervisor

log = logging.getLogger("cryptowire.sources.demo")

#: Start prices; their scale is the symbol's tick. A symbol whose two currencies both have a
#: USDT market here (ETHBTC: ETHUSDT and BTCUSDT) is not a walk of its own: it is the cross
#: of those two, quantized to its tick, so its ticker and an RFQ rate through the cross agree.
_START = {"BTCUSDT": "66000.00", "ETHUSDT": "3200.00", "SOLUSDT": "150.000",
          "ETHBTC": "0.048485"}
_QUOTE = "USDT"
#: Size steps (order quantity grid) of the book levels and liquidations.
_SIZE_STEP = {"BTCUSDT": "0.001", "ETHUSDT": "0.01", "SOLUSDT": "0.1", "ETHBTC": "0.01"}
#: Chance that a demo tick liquidates someone on a subscribed ``liquidation:`` channel.
_LIQUIDATION_ODDS = 0.2
#: Open interest at start, in the base coin, and its step (linear tickers).
_OPEN_INTEREST = {"BTCUSDT": "55000.000", "ETHUSDT": "900000.00", "SOLUSDT": "6000000.0",
                  "ETHBTC": "120000.00"}
_FUNDING_START = Decimal("0.0001")  # Bybit's usual 0.01 % per 8 h, as a fraction
_FUNDING_STEP = Decimal("0.000001")
_FUNDING_CAP = Decimal("0.00375")
_FUNDING_EVERY_MS = 8 * 3_600_000
_INTERVAL_MS = {
    "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": 3_600_000, "2h": 7_200_000, "4h": 14_400_000, "6h": 21_600_000,
    "12h": 43_200_000, "1d": 86_400_000, "1w": 604_800_000, "1M": 2_592_000_000,
}  # fmt: skip
assert set(_INTERVAL_MS) == set(KLINE_INTERVALS)

#: Demo tokens on the demo chain: (address, symbol, decimals).
DEMO_TOKENS = (
    ("0x6982508145454ce325ddbe47a25d4ec3d2311933", "PEPE", 18),
    ("0x95ad61b0a150d79219dcf64e1e6cc01f0b64c4ce", "SHIB", 18),
)
_WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"


class _Market:
    """One symbol's random-walk state (exact: integer ticks times a ``Decimal`` tick)."""

    def __init__(self, symbol: str, rng: random.Random,
                 legs: tuple[_Market, _Market] | None = None) -> None:
        start = Decimal(_START.get(symbol, "100.00"))
        self.symbol = symbol
        self.tick = Decimal(1).scaleb(start.as_tuple().exponent)  # type: ignore[arg-type]
        self.size_step = Decimal(_SIZE_STEP.get(symbol, "0.01"))
        self.legs = legs
        if legs is not None:
            start = self._cross()
        self.price = start
        self.open24 = start
        self.high = start
        self.low = start
        self.volume = Decimal("0")
        self.rng = rng
        self.trade_id = 0
        self.klines: dict[str, dict[str, object]] = {}
        oi = Decimal(_OPEN_INTEREST.get(symbol, "100000.0"))
        self.oi_tick = Decimal(1).scaleb(oi.as_tuple().exponent)  # type: ignore[arg-type]
        self.open_interest = oi
        self.funding = _FUNDING_START

    def _cross(self) -> Decimal:
        assert self.legs is not None
        base, quote = self.legs
        return max(self.tick, (base.price / quote.price).quantize(self.tick))

    def step(self) -> tuple[Decimal, Decimal, str]:
        prev = self.price
        if self.legs is not None:
            self.price = self._cross()
        else:
            move = Decimal(self.rng.randint(-5, 5)) * self.tick
            self.price = max(self.tick, self.price + move)
        self.high = max(self.high, self.price)
        self.low = min(self.low, self.price)
        qty = Decimal(self.rng.randint(1, 5000)) / Decimal(1000)
        self.volume += qty
        self.open_interest = max(self.oi_tick, self.open_interest
                                 + Decimal(self.rng.randint(-50, 50)) * self.oi_tick)
        funding = self.funding + Decimal(self.rng.randint(-2, 2)) * _FUNDING_STEP
        self.funding = min(_FUNDING_CAP, max(-_FUNDING_CAP, funding))
        side = "buy" if self.price >= prev else "sell"
        return self.price, qty, side

    def ticker(self, venue: str | None = None, ts: int | None = None) -> dict[str, object]:
        """The PROTOCOLS.md ticker; a linear (default) one carries the futures fields, a
        spot one has them null, as Bybit's spot tickers do."""
        change = ((self.price - self.open24) / self.open24 * 100).quantize(Decimal("0.0001"))
        spread = self.tick
        price = decimal_str(self.price)
        linear = not (venue or "").endswith("spot")  # spot, binance-spot, okx-spot
        now = now_ms() if ts is None else ts
        next_funding = now - now % _FUNDING_EVERY_MS + _FUNDING_EVERY_MS
        return {
            "symbol": self.symbol, "price": price, "markPrice": price,
            "indexPrice": price, "high24h": decimal_str(self.high),
            "low24h": decimal_str(self.low), "prevPrice24h": decimal_str(self.open24),
            "volume24h": decimal_str(self.volume),
            "turnover24h": decimal_str((self.volume * self.price).quantize(self.tick)),
            "change24hPercent": decimal_str(change), "tickDirection": "PlusTick",
            "bid": {"price": decimal_str(self.price - spread), "size": "1.000"},
            "ask": {"price": decimal_str(self.price + spread), "size": "1.000"},
            "openInterest": decimal_str(self.open_interest) if linear else None,
            "openInterestValue": decimal_str((self.open_interest * self.price).quantize(
                Decimal("0.01"))) if linear else None,
            "fundingRate": decimal_str(self.funding) if linear else None,
            "nextFundingTime": str(next_funding) if linear else None,
        }


def _markets(symbols: list[str], rng: random.Random) -> dict[str, _Market]:
    """The demo markets; a cross (ETHBTC) is built after, and stepped after, its legs."""
    walks = {s: _Market(s, rng) for s in symbols if s.endswith(_QUOTE)}
    crosses: dict[str, _Market] = {}
    for symbol in symbols:
        if symbol in walks:
            continue
        legs = next(((walks[f"{symbol[:i]}{_QUOTE}"], walks[f"{symbol[i:]}{_QUOTE}"])
                     for i in range(1, len(symbol))
                     if f"{symbol[:i]}{_QUOTE}" in walks and f"{symbol[i:]}{_QUOTE}" in walks),
                    None)
        crosses[symbol] = _Market(symbol, rng, legs)
    return {**walks, **crosses}


def _price(paired: Decimal, token_amount: Decimal) -> str:
    """Paired per token to 30 significant digits, as the EVM source writes it
    (``evm.decode.price``): a plain decimal string, never ``"5.6E-9"``."""
    with localcontext() as ctx:
        ctx.prec = 30
        return decimal_str(paired / token_amount, normalize=True)


class DemoSource:
    """Implements :class:`~cryptowire.core.source.Source` with synthetic data."""

    name = "demo"
    kinds = frozenset({"ticker", "trade", "kline", "book", "liquidation", "swap", "burn"})

    def __init__(self, settings: DemoSettings, *, chain_id: int = 1, seed: int | None = None,
                 ) -> None:
        self.settings = settings
        self.chain_id = chain_id
        self._rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
        self._markets = _markets(list(settings.symbols), self._rng)
        self._channels: dict[str, Channel] = {}
        self._publish: PublishFn | None = None
        self._supervisor = Supervisor("demo")
        self._status = SourceStatus(name="demo", state="stopped", demo=True,
                                    detail="synthetic data (demo mode)")
        self._block = 19_000_000
        self._books: dict[str, DemoBook] = {}
        # A snapshot and the deltas of a step are published in order, never interleaved.
        self._book_lock = asyncio.Lock()

    async def start(self, publish: PublishFn) -> None:
        self._publish = publish
        self._status.state = "up"
        self._supervisor.spawn("ticks", self._run)
        self._supervisor.spawn("books", self._run_books)

    async def stop(self) -> None:
        await self._supervisor.stop()
        self._status.state = "stopped"

    async def subscribe(self, channel: Channel) -> None:
        if channel.kind in ("ticker", "trade", "kline", "book", "liquidation"):
            if channel.symbol not in self._markets:
                known = ", ".join(self._markets)
                raise SourceError(f"Unknown symbol '{channel.symbol}' on the demo market. "
                                  f"Demo symbols: {known}.")
            if channel.kind == "liquidation" and (channel.venue or "").endswith("spot"):
                raise SourceError("Spot markets have no liquidations (as on Bybit); use "
                                  f"liquidation:{channel.symbol}.")
        elif channel.kind in ("swap", "burn"):
            if channel.chain != self.settings.chain:
                raise SourceError(f"The demo chain is '{self.settings.chain}'; "
                                  f"'{channel.chain}' has no demo data.")
        else:
            raise SourceError(f"The demo source does not serve {channel.kind} channels.")
        if channel.kind == "book":
            await self._subscribe_book(channel)
        self._channels[channel.name] = channel
        self._status.topics = len(self._channels)

    async def unsubscribe(self, channel: Channel) -> None:
        self._channels.pop(channel.name, None)
        self._status.topics = len(self._channels)
        if channel.kind == "book" and channel.symbol in self._books:
            self._books[channel.symbol].unsubscribe(channel.name)

    async def _subscribe_book(self, channel: Channel) -> None:
        """A (re)subscribed book channel starts with a snapshot of the book cut at depth."""
        assert channel.symbol is not None and channel.depth is not None
        market = self._markets[channel.symbol]
        async with self._book_lock:
            book = self._books.get(market.symbol)
            if book is None:
                book = self._books[market.symbol] = DemoBook(market.symbol, market.tick,
                                                             market.size_step, self._rng)
            snapshot = book.subscribe(channel.name, channel.depth, market.price)
            await self._emit(channel.name, snapshot, "snapshot")

    async def _run_books(self) -> None:
        while True:
            await asyncio.sleep(self.settings.book_interval_s)
            await self.step_books()

    async def step_books(self) -> None:
        """One step of every watched demo book: a delta per ``book:`` channel (public for
        tests)."""
        async with self._book_lock:
            for symbol, book in list(self._books.items()):
                if not book.views:
                    continue
                for name, delta in book.step(self._markets[symbol].price).items():
                    await self._emit(name, delta, "delta")

    def status(self) -> SourceStatus:
        return self._status

    async def _emit(self, channel: str, data: object, kind: str = "update") -> None:
        assert self._publish is not None
        await self._publish(Event(channel=channel, data=data, type=kind, source="demo"))
        self._status.messages += 1
        self._status.last_message_ms = now_ms()

    async def _run(self) -> None:
        n = 0
        while True:
            await asyncio.sleep(self.settings.interval_s)
            n += 1
            await self.tick(n)

    async def tick(self, n: int) -> None:
        """One step of the synthetic market and chain (public for tests)."""
        ts = now_ms()
        for market in self._markets.values():
            price, qty, side = market.step()
            for channel in list(self._channels.values()):
                if channel.symbol != market.symbol:
                    continue
                if channel.kind == "ticker":
                    await self._emit(channel.name, market.ticker(channel.venue, ts))
                elif channel.kind == "trade":
                    market.trade_id += 1
                    await self._emit(channel.name, [{
                        "id": f"demo-{market.trade_id}", "symbol": market.symbol,
                        "price": decimal_str(price), "quantity": decimal_str(qty),
                        "side": side, "time": ts,
                        "isBlockTrade": False,
                    }])
                elif channel.kind == "kline" and channel.interval is not None:
                    await self._emit(channel.name, self._kline(market, channel.interval, ts))
                elif channel.kind == "liquidation" and self._rng.random() < _LIQUIDATION_ODDS:
                    await self._emit(channel.name, self._liquidation(market, ts))
        if n % 4 == 0:
            await self._chain_events(ts)

    def _liquidation(self, market: _Market, ts: int) -> dict[str, object]:
        """A forced close near the price. ``side`` is the liquidated position's, as Bybit's
        ``allLiquidation`` gives it: ``Buy`` a long (at or below the price), ``Sell`` a short
        (at or above it)."""
        side = self._rng.choice(("Buy", "Sell"))
        away = market.tick * self._rng.randint(0, 20)
        price = market.price + away if side == "Sell" else max(market.tick, market.price - away)
        size = Decimal(self._rng.randint(1, 20_000)) * market.size_step
        return {"symbol": market.symbol, "side": side, "price": decimal_str(price),
                "size": decimal_str(size), "time": ts}

    @staticmethod
    def _kline(market: _Market, interval: str, ts: int) -> dict[str, object]:
        span = _INTERVAL_MS[interval]
        open_time = ts - ts % span
        k = market.klines.get(interval)
        price = decimal_str(market.price)
        if k is None or k["openTime"] != open_time:
            k = {"symbol": market.symbol, "interval": interval, "openTime": open_time,
                 "closeTime": open_time + span - 1, "open": price, "high": price,
                 "low": price, "close": price, "volume": "0", "turnover": "0",
                 "confirmed": False}
            market.klines[interval] = k
        k["high"] = decimal_str(max(Decimal(str(k["high"])), market.price))
        k["low"] = decimal_str(min(Decimal(str(k["low"])), market.price))
        k["close"] = price
        k["volume"] = decimal_str(Decimal(str(k["volume"])) + Decimal("0.5"))
        k["turnover"] = decimal_str((Decimal(str(k["volume"])) * market.price)
                                    .quantize(market.tick))
        return dict(k)

    async def _chain_events(self, ts: int) -> None:
        self._block += 1
        chain = self.settings.chain
        token, symbol, _decimals = DEMO_TOKENS[self._rng.randrange(len(DEMO_TOKENS))]
        tx = "0x" + secrets.token_hex(32)
        taker = "0x" + secrets.token_hex(20)
        token_amount = Decimal(self._rng.randint(10**6, 10**9))
        paired = (Decimal(self._rng.randint(1, 5000)) / Decimal(1000)).quantize(Decimal("0.001"))
        swap = {
            "chain": self.chain_id, "pair": "0x" + secrets.token_hex(20), "token": token,
            "symbol": symbol, "side": self._rng.choice(("buy", "sell")),
            "token_amount": decimal_str(token_amount), "paired_amount": decimal_str(paired),
            "price_in_paired": _price(paired, token_amount), "taker": taker,
            "tx_hash": tx, "log_index": 0, "block": self._block, "time": ts, "demo": True,
        }
        for name in (f"swap:{chain}", f"swap:{chain}:{token}"):
            if name in self._channels:
                await self._emit(name, swap)
        if self._rng.random() < 0.3:
            burn = {
                "chain": self.chain_id, "token": token, "symbol": symbol,
                "amount": decimal_str(self._rng.randint(1, 10**6)), "from": taker,
                "to": "0x000000000000000000000000000000000000dEaD", "tx_hash": tx,
                "log_index": 1, "block": self._block, "time": ts, "demo": True,
            }
            for name in (f"burn:{chain}", f"burn:{chain}:{token}"):
                if name in self._channels:
                    await self._emit(name, burn)
