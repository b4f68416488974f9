"""Telegram alerts through python-telegram-bot against a local Bot-API-shaped peer: a
swap and a burn of a tracked token reach the chats bound to its group, a 429 with
``retry_after`` is waited out, a chat that blocked the bot does not stop the others."""

from __future__ import annotations

import asyncio

from tests.integration.evm.evmhub import HubFactory
from tests.peers.anvil import Dex
from tests.peers.telegram import TelegramPeer
from tests.waiting import eventually


async def test_swaps_and_burns_are_posted_with_429_honoured(evm_hub_factory: HubFactory,
                                                            dex: Dex) -> None:
    async with TelegramPeer() as peer:
        hub = await evm_hub_factory(telegram={
            "enabled": True, "bot_token": peer.token, "base_url": peer.base_url,
            "max_retries": 3, "timeout_s": 5})
        await hub.track(dex)  # group "alpha"
        admin = hub.source.admin
        assert admin is not None
        await admin.store.bind_chat("alpha", "-1001")
        await admin.store.bind_chat("alpha", "-1002")
        await admin.store.bind_chat("other", "-1003")
        peer.forbidden_chats.add("-1002")
        peer.rate_limit_next(1, retry_after=1)
        first = dex.tokens[0]
        tx = await dex.swap(first, buy=True, amount_in=10**18)
        burn = await dex.burn(first, 2 * 10**first.decimals)
        async with asyncio.timeout(15):
            while len(peer.messages) < 2:
                await asyncio.sleep(0.05)
        # Every alert queued (one per event, in order) has been tried on every chat of its
        # group: nothing more can be posted, so the peer's list is final.
        notifier = hub.source.notifier
        assert notifier is not None
        await eventually(lambda: notifier.sent + notifier.failed >= 4 and notifier.queue.empty(),
                         what="both alerts tried on both chats")
        assert [m.chat_id for m in peer.messages] == ["-1001", "-1001"]
        swap_msg, burn_msg = (m.text for m in peer.messages)
        assert f"BUY {first.symbol}" in swap_msg and "WETH" in swap_msg
        assert f"https://explorer.test/tx/{tx}" in swap_msg
        assert f"BURN 2 {first.symbol}" in burn_msg and burn in burn_msg
        assert peer.messages[0].parse_mode == "HTML"
        # The 429 was answered, then the same message went out after retry_after.
        sends = [at for method, at in peer.calls if method == "sendMessage"]
        assert sends[1] - sends[0] >= 0.9
        assert notifier.sent == 2 and notifier.failed == 2  # the blocked chat, twice
        assert hub.source.watchers["anvil"].stats.errors == 0


async def test_telegram_outage_never_blocks_the_watcher(evm_hub_factory: HubFactory,
                                                        dex: Dex) -> None:
    hub = await evm_hub_factory(telegram={
        "enabled": True, "bot_token": "1:x", "base_url": "http://127.0.0.1:9/bot",
        "timeout_s": 0.5, "queue_size": 2})
    await hub.track(dex)
    admin = hub.source.admin
    assert admin is not None
    await admin.store.bind_chat("alpha", "-1")
    for i in range(5):
        await dex.swap(dex.tokens[i % 2], buy=True, amount_in=10**17)
    watcher = hub.source.watchers["anvil"]
    async with asyncio.timeout(10):
        while watcher.stats.events < 5:
            await asyncio.sleep(0.05)
    notifier = hub.source.notifier
    assert notifier is not None and notifier.sent == 0
    assert notifier.dropped >= 3 and notifier.queue.qsize() <= 2
