"""Quote sessions of one connection: start, update, stop, offers on a timer, accept.

Each started session (by ``key``) sends an offer at once and then every ``interval_s``
until ``max_offers`` offers went unanswered (``timeout``), it is stopped, or one of its quotes
is accepted. A session whose amount is 0 or empty (the seed's own ``startSession`` sends
``"amountFrom": ""``) sends nothing and counts nothing until an ``updateSession`` gives it
an amount. Quotes are kept (full precision) until they expire; an order for an expired or
unknown quote fails with the reason. A rate that cannot be had gives ``offer-failed``.
Each start (a ``startSession``, or an ``updateSession`` to another pair) first asks ``admit``
(:mod:`cryptowire.rfq.starts`); a refused one gets an error and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from cryptowire.clock import now_ms
from cryptowire.logthrottle import log_exception
from cryptowire.rfq.providers import LiquidityProvider, ProviderError
from cryptowire.rfq.quote import Quote, QuoteError, make_quote, parse_amount, parse_currency
from cryptowire.rfq.starts import StartRefused
from cryptowire.sources.prices import Hold, RateError, RateProvider

log = logging.getLogger("cryptowire.rfq")

MAX_SESSIONS_PER_CONNECTION = 10
MAX_LIVE_QUOTES = 64


@dataclass(frozen=True, slots=True)
class RfqConfig:
    interval_s: float = 4.0
    commission: Decimal = Decimal("0.01")
    quote_ttl_s: float = 10.0
    max_offers: int = 121
    display_decimals: int = 2


@dataclass(slots=True)
class QuoteSession:
    key: str
    curr_from: str
    curr_to: str
    amount_from: Decimal
    offers: int = 0
    hold: Hold = frozenset()  # the tickers this session's prepare took
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)


Send = Callable[[dict[str, Any]], None]
#: Asked before each start: ``None`` admits it (and counts it), else why not.
Admit = Callable[[], StartRefused | None]


class RfqConnection:
    """The RFQ state of one socket; ``send`` queues a JSON object to it."""

    def __init__(self, uuid: str, config: RfqConfig, rates: RateProvider,
                 provider: LiquidityProvider, send: Send, *, may_trade: bool,
                 key_id: str | None = None, admit: Admit | None = None) -> None:
        self.uuid = uuid
        self.config = config
        self.rates = rates
        self.provider = provider
        self.send = send
        self.may_trade = may_trade
        self.key_id = key_id
        self.admit = admit
        self.sessions: dict[str, QuoteSession] = {}
        self.quotes: dict[str, Quote] = {}

    def _base(self, key: str) -> dict[str, Any]:
        return {"key": key, "channel": "rfq"}

    async def handle(self, action: str, body: dict[str, Any]) -> None:
        uuid = body.get("uuid")
        if uuid is not None and uuid != self.uuid:
            self.send({"status": "error", "error": {
                "message": f"Unknown session uuid {str(uuid)[:64]!r}: use the handshake value "
                           "this connection received."}})
            return
        key = body.get("key")
        if action in ("acceptOffer", "placeOrder"):
            await self.accept(body)
            return
        if not isinstance(key, str) or not key or len(key) > 128:
            self.send({"status": "error", "error": {"message": "'key' (a string) is required."}})
            return
        if action == "stopSession":
            await self.stop(key)
            self.send({"action": "stopped", **self._base(key)})
            return
        try:
            curr_from = parse_currency(body.get("currFrom"), "currFrom")
            curr_to = parse_currency(body.get("currTo"), "currTo")
            amount = parse_amount(body.get("amountFrom", ""))
        except QuoteError as exc:
            self.send({"action": "offer-failed", "message": f"Offer failed: {exc.message}",
                       **self._base(key)})
            return
        session = self.sessions.get(key)
        if action == "startSession" or session is None:
            if session is None and len(self.sessions) >= MAX_SESSIONS_PER_CONNECTION:
                self.send({"status": "error", "error": {
                    "message": f"At most {MAX_SESSIONS_PER_CONNECTION} quote sessions per "
                               "connection."}})
                return
            if not self._admitted(key):
                return
            await self.stop(key)
            session = QuoteSession(key, curr_from, curr_to, amount)
            session.hold = await self.rates.prepare(curr_from, curr_to)
            self.sessions[key] = session
            self.send({"action": "connected", **self._base(key)})
            session.task = asyncio.get_running_loop().create_task(self._offers(session))
            return
        # updateSession: change the amount or pair and re-quote at once
        if (curr_from, curr_to) != (session.curr_from, session.curr_to):
            if not self._admitted(key):
                return
            hold, session.hold = session.hold, await self.rates.prepare(curr_from, curr_to)
            await self.rates.release(hold)
        session.curr_from, session.curr_to, session.amount_from = curr_from, curr_to, amount
        session.offers = 0
        session.wake.set()

    def _admitted(self, key: str) -> bool:
        refused = self.admit() if self.admit is not None else None
        if refused is None:
            return True
        self.send({"status": "error", "error": {"message": refused.message, "key": key,
                                                "retryAfterMs": refused.retry_after_ms}})
        return False

    async def _offers(self, session: QuoteSession) -> None:
        cfg = self.config
        while True:
            if not session.amount_from:
                # Nothing to quote yet: no offer, no count; updateSession wakes us.
                session.wake.clear()
                await session.wake.wait()
                continue
            if session.offers >= cfg.max_offers:
                self.send({"action": "timeout", "message": f"No offer accepted after "
                           f"{cfg.max_offers} offers.", **self._base(session.key)})
                self.sessions.pop(session.key, None)
                hold, session.hold = session.hold, frozenset()
                await self.rates.release(hold)
                return
            try:
                await self._offer(session)
            except Exception:
                # One bad offer must not end the session's offers silently.
                log_exception(log, "rfq offer failed (session %s)", session.key)
                self.send({"action": "offer-failed", "message": "Offer failed: internal "
                           "error; the next offer follows.", **self._base(session.key)})
            session.wake.clear()
            try:
                await asyncio.wait_for(session.wake.wait(), cfg.interval_s)
            except TimeoutError:
                pass

    async def _offer(self, session: QuoteSession) -> None:
        session.offers += 1
        base = self._base(session.key)
        try:
            rate = await self.rates.rate(session.curr_from, session.curr_to)
        except RateError as exc:
            self.send({"action": "offer-failed", "message": f"Offer failed: {exc.message}",
                       **base})
            return
        now = now_ms()
        quote = make_quote(key=session.key, curr_from=session.curr_from,
                           curr_to=session.curr_to, amount_from=session.amount_from,
                           rate=rate.value, commission=self.config.commission,
                           rate_path=rate.path, now_ms=now,
                           ttl_ms=int(self.config.quote_ttl_s * 1000))
        self._keep(quote, now)
        self.send({**quote.display(self.config.display_decimals), "action": "offer",
                   "currFrom": quote.curr_from, "currTo": quote.curr_to, **base})

    def _keep(self, quote: Quote, now: int) -> None:
        for qid in [q for q, v in self.quotes.items() if v.expires_ms < now]:
            del self.quotes[qid]
        while len(self.quotes) >= MAX_LIVE_QUOTES:
            del self.quotes[next(iter(self.quotes))]
        self.quotes[quote.quote_id] = quote

    async def accept(self, body: dict[str, Any]) -> None:
        quote_id = body.get("quoteId")
        key = body.get("key")
        # Echoed only as the strings they must be: any JSON value here (nested deeper than
        # orjson writes, say) would make the reply itself fail.
        base = {"channel": "rfq", "key": key[:128] if isinstance(key, str) else None,
                "quoteId": quote_id[:64] if isinstance(quote_id, str) else None}
        if not self.may_trade:
            self.send({"action": "orderFailed", "message": "Order failed: this needs an API "
                       "key with the 'rfq' scope.", **base})
            return
        quote = self.quotes.get(quote_id) if isinstance(quote_id, str) else None
        if quote is None:
            self.send({"action": "orderFailed", "message": "Order failed: unknown quote "
                       f"{str(quote_id)[:64]!r}.", **base})
            return
        if now_ms() > quote.expires_ms:
            self.send({"action": "orderFailed", "message": "Order failed: the quote expired; "
                       "accept a newer offer.", **base})
            return
        try:
            fill = await self.provider.execute(quote, self.key_id)
        except ProviderError as exc:
            self.send({"action": "orderFailed", "message": f"Order failed: {exc.message}",
                       **base})
            return
        self.quotes.pop(quote.quote_id, None)
        await self.stop(quote.key)
        self.send({"action": "orderSuccess", "channel": "rfq", "key": quote.key,
                   "quoteId": quote.quote_id, "tradeId": fill.trade_id,
                   "amountFrom": fill.amount_from, "amountTo": fill.amount_to,
                   "exchangeRate": fill.rate, "provider": fill.provider})

    async def stop(self, key: str) -> None:
        session = self.sessions.pop(key, None)
        if session is None:
            return
        if session.task is not None:
            session.task.cancel()
            await asyncio.gather(session.task, return_exceptions=True)
        hold, session.hold = session.hold, frozenset()
        await self.rates.release(hold)

    async def close(self) -> None:
        for key in list(self.sessions):
            await self.stop(key)
