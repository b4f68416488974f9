"""On-chain watcher benchmark: blocks/s scanned and events/s decoded on a local anvil node.

Deploys the test contracts (``tests/fixtures/evm``), 50 tracked tokens each paired with
WETH, mines ``--events`` swaps and burns (a block every 50 transactions) and then
``--empty`` empty blocks, and times a fresh :class:`ChainWatcher` (RPC pool + SQLite event
log, the production code path, publishing to a counter) from block 1 to the head:

- dense phase: the blocks holding the events -> events/s (decode + store + publish);
- sparse phase: the empty blocks -> blocks/s (eth_getLogs in 10,000-block ranges).

Run: ``.venv/bin/python bench/onchain/bench.py [--tokens 50 --events 2000 --empty 10000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script: make tests.peers importable

from tests.peers.anvil import DEAD, AnvilNode, Dex, rpc  # noqa: E402

from cryptowire.onchain import TrackedToken  # noqa: E402
from cryptowire.settings import ChainSettings, EvmSettings  # noqa: E402
from cryptowire.sources.evm.rpc import RpcPool  # noqa: E402
from cryptowire.sources.evm.tokens import TokenAdmin  # noqa: E402
from cryptowire.sources.evm.watcher import ChainWatcher  # noqa: E402
from cryptowire.store.evm import EvmStore  # noqa: E402
from cryptowire.store.sql import SqlStore  # noqa: E402


async def run_watcher(chain: ChainSettings, store: EvmStore, until: int) -> tuple[float, int]:
    pool = RpcPool(chain.rpc_urls, timeout_s=30)
    await pool.start()
    published = 0

    async def on_events(events: list[Any], _: Any) -> None:
        nonlocal published
        published += len(events)

    watcher = ChainWatcher(chain, pool, store, on_events=on_events, on_removed=on_events)
    started = time.perf_counter()
    while (watcher.stats.cursor or 0) < until:
        await watcher.poll()
    elapsed = time.perf_counter() - started
    await pool.close()
    return elapsed, published


async def main(args: argparse.Namespace) -> None:
    async with AnvilNode() as node:
        dex = await Dex(node.url).setup(0)
        for i in range(args.tokens):
            await dex.add_token(f"B{i}", 18 if i % 3 else 9)
        tmp = Path(tempfile.mkdtemp())
        sql = await SqlStore.open(f"sqlite+aiosqlite:///{tmp / 'bench.db'}")
        store = EvmStore(sql.engine)
        evm = EvmSettings(chains=[])
        admin = TokenAdmin(evm, store)
        for t in dex.tokens:
            await store.add_token(TrackedToken(
                chain=31337, address=t.address.lower(), symbol=t.symbol, decimals=t.decimals,
                pair=t.pair.lower(), paired=dex.weth.lower(), paired_symbol="WETH",
                paired_decimals=18, is_token0=t.address.lower() < dex.weth.lower()))
        await admin.close()
        start_block = await dex.block_number() + 1

        rng = random.Random(7)
        await dex.automine(False)
        t0 = time.perf_counter()
        for i in range(args.events):
            token = dex.tokens[rng.randrange(len(dex.tokens))]
            if i % 5 == 4:
                await dex.burn(token, 10**token.decimals, to=DEAD, wait=False)
            else:
                await dex.swap(token, buy=rng.random() < 0.5,
                               amount_in=10**15 * rng.randint(1, 1000), wait=False)
            if i % 50 == 49:
                await dex.mine()
        await dex.mine()
        await dex.automine(True)
        dense_end = await dex.block_number()
        mined_s = time.perf_counter() - t0
        for _ in range(0, args.empty, 5_000):
            await rpc(node.url, "anvil_mine", [hex(5_000)])
        head = await dex.block_number()

        chain = ChainSettings(id=31337, name="anvil", rpc_urls=[node.url], confirmations=0,
                              start_block=start_block, block_interval_s=0.0,
                              max_block_range=10_000)
        dense_s, dense_events = await run_watcher(chain, store, dense_end)
        sparse_s, _ = await run_watcher(chain, store, head)
        dense_blocks = dense_end - start_block + 1
        print(f"machine: {platform.machine()}, {platform.python_version()}, "
              f"{args.tokens} tracked tokens")
        print(f"mined {args.events} txs in {dense_blocks} blocks ({mined_s:.1f} s), "
              f"then {args.empty} empty blocks")
        print(f"dense:  {dense_events} events in {dense_s:.2f} s = "
              f"{dense_events / dense_s:,.0f} events/s ({dense_blocks / dense_s:,.0f} blocks/s)")
        print(f"sparse: {head - dense_end} blocks in {sparse_s:.2f} s = "
              f"{(head - dense_end) / sparse_s:,.0f} blocks/s")
        await sql.close()
        await dex.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--empty", type=int, default=10_000)
    asyncio.run(main(parser.parse_args()))
