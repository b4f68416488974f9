"""Telegram alerts: swaps and burns of a token posted to the chats bound to its ``group``.

Messages go through python-telegram-bot's ``ExtBot`` with its ``AIORateLimiter`` (Bot API
flood limits; a 429 ``retry_after`` is waited out and the message retried, up to
``max_retries``); the Bot API base URL is a setting (tests point it at a local peer).

A Telegram outage never blocks the watcher: :meth:`TelegramNotifier.offer` only puts
messages on a bounded queue (dropping the oldest when full, counted), and one supervised
task sends them.
"""

from __future__ import annotations

import asyncio
import html
import logging
from collections.abc import Sequence
from typing import Any

from cryptowire.backoff import backoff_delay
from cryptowire.onchain import OnchainEvent
from cryptowire.settings import ChainSettings, TelegramSettings
from cryptowire.sources.evm.decode import Watchlist
from cryptowire.store.evm import EvmStore
from cryptowire.tasks import Supervisor

log = logging.getLogger("cryptowire.notify.telegram")


def _short(address: str) -> str:
    return f"{address[:6]}…{address[-4:]}"


def format_event(event: OnchainEvent, chain: ChainSettings, paired_symbol: str | None) -> str:
    """The readable HTML message of one swap or burn (amounts exactly as published)."""
    p = event.payload
    sym = html.escape(str(p["symbol"]))
    tx = html.escape(str(p["tx_hash"]))
    link = (f'<a href="{html.escape(chain.explorer_tx_url)}{tx}">tx {tx[:10]}…</a>'
            if chain.explorer_tx_url else f"tx <code>{tx}</code>")
    if event.kind == "swap":
        paired = html.escape(paired_symbol or "paired")
        icon, side = ("🟢", "BUY") if p["side"] == "buy" else ("🔴", "SELL")
        return (f"{icon} <b>{side} {sym}</b> on {html.escape(chain.name)}\n"
                f"{p['token_amount']} {sym} for {p['paired_amount']} {paired}\n"
                f"Price: {p['price_in_paired']} {paired}\n"
                f"Taker: <code>{_short(p['taker'])}</code>\n{link}")
    return (f"🔥 <b>BURN {p['amount']} {sym}</b> on {html.escape(chain.name)}\n"
            f"From <code>{_short(p['from'])}</code> to <code>{_short(p['to'])}</code>\n{link}")


class TelegramNotifier:
    """Queues alerts and sends them to the chats of each token's group."""

    def __init__(self, settings: TelegramSettings, store: EvmStore,
                 chains: Sequence[ChainSettings]) -> None:
        self.settings = settings
        self.store = store
        self.chains = {c.id: c for c in chains}
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(settings.queue_size)
        self.supervisor = Supervisor("telegram")
        self.bot: Any = None
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.ready = False

    async def start(self) -> None:
        from telegram.ext import AIORateLimiter, ExtBot
        from telegram.request import HTTPXRequest

        assert self.settings.bot_token is not None
        timeout = self.settings.timeout_s
        self.bot = ExtBot(
            self.settings.bot_token.get_secret_value(), base_url=self.settings.base_url,
            request=HTTPXRequest(connect_timeout=timeout, read_timeout=timeout,
                                 write_timeout=timeout),
            rate_limiter=AIORateLimiter(max_retries=self.settings.max_retries),
        )
        self.supervisor.spawn("sender", self._run)

    async def stop(self) -> None:
        await self.supervisor.stop()
        if self.bot is not None and self.ready:
            try:
                await self.bot.shutdown()
            except Exception:  # shutting down: nothing left to tell
                log.debug("telegram bot shutdown failed", exc_info=True)

    def offer(self, events: list[OnchainEvent], watchlist: Watchlist) -> None:
        """Queue the alerts of ``events`` (never waits; drops the oldest when full)."""
        for event in events:
            token = watchlist.by_token.get(event.token)
            chain = self.chains.get(event.chain)
            if token is None or not token.group or chain is None:
                continue
            text = format_event(event, chain, token.paired_symbol)
            if self.queue.full():
                self.queue.get_nowait()
                self.dropped += 1
            self.queue.put_nowait((token.group, text))

    async def _run(self) -> None:
        from telegram.error import Forbidden, RetryAfter, TelegramError

        attempt = 0
        while not self.ready:  # getMe: the token works and the API answers
            try:
                await self.bot.initialize()
                self.ready = True
            except TelegramError as exc:
                log.warning("telegram: getMe failed: %s", exc)
                await asyncio.sleep(backoff_delay(attempt, cap=60.0))
                attempt += 1
        while True:
            group, text = await self.queue.get()
            try:
                chats = (await self.store.bindings([group])).get(group, [])
            except Exception:
                log.warning("telegram: cannot read bindings of %s", group, exc_info=True)
                chats = []
            for chat in chats:
                for _ in range(2):
                    try:
                        await self.bot.send_message(chat, text, parse_mode="HTML",
                                                    disable_web_page_preview=True)
                        self.sent += 1
                        break
                    except RetryAfter as exc:  # the rate limiter's retries ran out
                        wait = exc.retry_after
                        await asyncio.sleep(wait if isinstance(wait, int | float)
                                            else wait.total_seconds())
                    except Forbidden as exc:
                        log.warning("telegram: chat %s refused the bot: %s", chat, exc)
                        self.failed += 1
                        break
                    except TelegramError as exc:
                        log.warning("telegram: sending to %s failed: %s", chat, exc)
                        self.failed += 1
                        break
                else:
                    self.failed += 1

    def status(self) -> dict[str, Any]:
        return {"ready": self.ready, "sent": self.sent, "failed": self.failed,
                "dropped": self.dropped, "queued": self.queue.qsize()}
