"""One chain's watcher: poll ``eth_getLogs`` up to ``head - confirmations``, store, publish.

Each poll (every ``block_interval_s``; at once again while behind):

1. reload the chain's watchlist from the store (so the CLI, REST or another node can change
   it under a running hub);
2. check that the stored cursor's block hash is still the chain's; if not (a reorg), find the
   fork point among the blocks of stored events, delete the orphaned events, move the cursor
   back and hand the deleted events to ``on_removed`` (they go out as ``type: "removed"``);
3. scan ``(cursor, safe head]`` in ranges of at most ``max_block_range`` blocks: ``Swap`` of
   tracked pairs and ``Transfer`` of tracked tokens to the burn addresses, halving the range
   when a provider says it is too large (and growing it back after successes);
4. per range, store the events and the cursor (block number and hash) in one transaction,
   then hand the new events to ``on_events``.

A restart resumes from the stored cursor; the store's unique ``(chain, tx_hash, log_index)``
means a range seen twice never yields an event twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address

from cryptowire.clock import now_ms
from cryptowire.errors import CryptowireError
from cryptowire.onchain import OnchainEvent
from cryptowire.settings import ChainSettings
from cryptowire.sources.evm.abi import SWAP_TOPIC, TRANSFER_TOPIC
from cryptowire.sources.evm.decode import Watchlist, as_int, burn_topic, decode_logs, hexstr
from cryptowire.sources.evm.rpc import RangeTooLarge, RpcPool
from cryptowire.store.evm import EvmStore

log = logging.getLogger("cryptowire.sources.evm.watcher")

EventsFn = Callable[[list[OnchainEvent], Watchlist], Awaitable[None]]


@dataclass(slots=True)
class WatcherStats:
    head: int | None = None
    cursor: int | None = None
    ranges: int = 0
    blocks: int = 0
    logs: int = 0
    events: int = 0
    reorgs: int = 0
    removed: int = 0
    range_halvings: int = 0
    errors: int = 0
    last_error: str = ""
    last_poll_ms: int | None = None


class ChainWatcher:
    """Watches one chain; run :meth:`run` as one supervised asyncio task."""

    def __init__(
        self, chain: ChainSettings, pool: RpcPool, store: EvmStore, *,
        on_events: EventsFn, on_removed: EventsFn, reorg_window: int = 128,
    ) -> None:
        self.chain = chain
        self.pool = pool
        self.store = store
        self.on_events = on_events
        self.on_removed = on_removed
        self.reorg_window = reorg_window
        self.span = chain.max_block_range
        self.stats = WatcherStats()
        self.watchlist = Watchlist(chain.id)
        self._cursor: tuple[int, str] | None = None
        self.caught_up = asyncio.Event()

    async def run(self) -> None:
        """Poll forever; failures are counted and retried at the next poll."""
        while True:
            try:
                behind = await self.poll()
            except CryptowireError as exc:
                self.stats.errors += 1
                self.stats.last_error = exc.message[:300]
                log.warning("chain %s: poll failed: %s", self.chain.name, exc)
                behind = False
            if not behind:
                await asyncio.sleep(self.chain.block_interval_s)

    async def _block(self, number: int) -> dict[str, Any] | None:
        block = await self.pool.call("eth_getBlockByNumber",
                                     lambda w3: w3.eth.get_block(number))
        return dict(block) if block is not None else None

    async def _start_cursor(self, safe: int) -> tuple[int, str]:
        stored = await self.store.get_cursor(self.chain.id)
        if stored is not None:
            return stored
        first = self.chain.start_block if self.chain.start_block is not None else safe + 1
        number = max(first - 1, -1)
        if number < 0:
            return (-1, "")
        block = await self._block(number)
        return (number, hexstr(block["hash"]) if block else "")

    async def poll(self) -> bool:
        """One poll; returns True while the watcher is still behind the safe head."""
        self.stats.last_poll_ms = now_ms()
        self.watchlist = Watchlist(self.chain.id, await self.store.list_tokens(self.chain.id))
        head = int(await self.pool.call("eth_blockNumber", lambda w3: w3.eth.block_number))
        self.stats.head = head
        safe = head - self.chain.confirmations
        if self._cursor is None:
            self._cursor = await self._start_cursor(safe)
        if not await self._check_reorg(head):
            return True
        block, _ = self._cursor
        self.stats.cursor = block
        if block >= safe:
            self.caught_up.set()
            return False
        lo = block + 1
        hi = min(safe, lo + self.span - 1)
        try:
            logs = await self._logs(lo, hi)
        except RangeTooLarge as exc:
            if self.span == 1:
                raise
            self.span = max(1, self.span // 2)
            self.stats.range_halvings += 1
            log.info("chain %s: range too large (%s); now %d blocks", self.chain.name,
                     exc.message, self.span)
            return True
        end = await self._block(hi)
        if end is None:  # the chain got shorter under us: a reorg, seen on the next poll
            return True
        times = await self._times(logs)
        events = decode_logs(logs, self.watchlist, self.chain.burn_addresses, times)
        end_hash = hexstr(end["hash"])
        fresh = await self.store.commit_range(self.chain.id, events, hi, end_hash)
        self._cursor = (hi, end_hash)
        self.stats.cursor = hi
        self.stats.ranges += 1
        self.stats.blocks += hi - lo + 1
        self.stats.logs += len(logs)
        self.stats.events += len(fresh)
        self.span = min(self.chain.max_block_range, self.span * 2)
        if fresh:
            await self.on_events(fresh, self.watchlist)
        if hi >= safe:
            self.caught_up.set()
        return hi < safe

    async def _logs(self, lo: int, hi: int) -> list[Any]:
        wl = self.watchlist
        out: list[Any] = []
        if wl.pairs:
            swaps: Any = {"fromBlock": lo, "toBlock": hi, "topics": [SWAP_TOPIC],
                     "address": [to_checksum_address(p) for p in wl.pairs]}
            out += await self.pool.call("eth_getLogs", lambda w3: w3.eth.get_logs(swaps))
        if wl.tokens and self.chain.burn_addresses:
            burns: Any = {"fromBlock": lo, "toBlock": hi,
                     "topics": [TRANSFER_TOPIC, None,
                                [burn_topic(a) for a in self.chain.burn_addresses]],
                     "address": [to_checksum_address(t) for t in wl.tokens]}
            out += await self.pool.call("eth_getLogs", lambda w3: w3.eth.get_logs(burns))
        return out

    async def _times(self, logs: list[Any]) -> dict[int, int]:
        """Block timestamps (ms) of the logs' blocks: the log's ``blockTimestamp`` when the
        node gives it (EIP-7749-style, anvil and recent geth), else the block header."""
        times: dict[int, int] = {}
        missing: set[int] = set()
        for entry in logs:
            number = as_int(entry["blockNumber"])
            stamp = entry.get("blockTimestamp")
            if stamp is not None:
                times[number] = as_int(stamp) * 1000
            elif number not in times:
                missing.add(number)
        for number in sorted(missing - set(times)):
            block = await self._block(number)
            times[number] = int(block["timestamp"]) * 1000 if block else 0
        return times

    async def _check_reorg(self, head: int) -> bool:
        """True when the cursor is still on the chain; otherwise rewind (False)."""
        assert self._cursor is not None
        number, stored_hash = self._cursor
        if number < 0 or not stored_hash:
            return True
        block = await self._block(number) if number <= head else None
        if block is not None and hexstr(block["hash"]) == stored_hash:
            return True
        fork: tuple[int, str] | None = None
        for ev_block, ev_hash in await self.store.event_blocks(
                self.chain.id, number - self.reorg_window):
            if ev_block > head:
                continue
            canonical = await self._block(ev_block)
            if canonical is not None and hexstr(canonical["hash"]) == ev_hash:
                fork = (ev_block, ev_hash)
                break
        if fork is None:
            back = max(min(number - self.reorg_window, head), -1)
            found = await self._block(back) if back >= 0 else None
            fork = (back, hexstr(found["hash"]) if found else "")
        removed = await self.store.rewind(self.chain.id, fork[0], fork[1])
        self._cursor = fork
        self.stats.reorgs += 1
        self.stats.removed += len(removed)
        log.warning("chain %s: reorg below block %d: rewound to %d, %d events removed",
                    self.chain.name, number, fork[0], len(removed))
        if removed:
            await self.on_removed(removed, self.watchlist)
        return False

    def status(self) -> dict[str, Any]:
        s = self.stats
        return {
            "chain_id": self.chain.id, "head": s.head, "cursor": s.cursor,
            "lag": None if s.head is None or s.cursor is None else s.head - s.cursor,
            "tokens": len(self.watchlist), "span": self.span, "ranges": s.ranges,
            "blocks": s.blocks, "events": s.events, "reorgs": s.reorgs, "removed": s.removed,
            "range_halvings": s.range_halvings, "errors": s.errors,
            "last_error": s.last_error, "rpc": self.pool.health(),
        }  # fmt: skip
