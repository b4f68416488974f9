"""EvmStore against real SQLite files and the real Postgres: every test runs on both.

The watchlist, the per-chain cursor, the event log (``commit_range`` / ``event_blocks`` /
``rewind`` / ``events``) and the Telegram bindings, through the same code on both databases,
with the tables of migration ``0002``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any, cast

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from tests.integration.store.clock import T0, Clock

from cryptowire.errors import StoreError
from cryptowire.onchain import EventKind, OnchainEvent, TrackedToken
from cryptowire.store import SqlStore
from cryptowire.store import evm as evm_module
from cryptowire.store.evm import EvmStore, onchain_events

pytestmark = pytest.mark.integration

ETH, BSC = 1, 56
TOKEN_A = "0x" + "a1" * 20
TOKEN_B = "0x" + "b2" * 20
PAIR_A = "0x" + "c3" * 20
WETH = "0x" + "d4" * 20
BIG_AMOUNT = "123456789012345678.123456789012345678"
TINY_PRICE = "0.000000000000000001234567890123"


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(evm_module, "now_ms", c)
    return c


@pytest.fixture
async def sql(store_url: str) -> AsyncIterator[SqlStore]:
    s = await SqlStore.open(store_url)  # migrates to head, 0002 included
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def store(sql: SqlStore, clock: Clock) -> EvmStore:
    return EvmStore(sql.engine)  # as EvmSource.start / the CLI / the REST handlers do


def block_hash(block: int, fork: str = "0") -> str:
    return f"0x{fork}{block:063x}"


def event(block: int, index: int, *, kind: EventKind = "swap", chain: int = ETH,
          token: str = TOKEN_A, fork: str = "0", **extra: Any) -> OnchainEvent:
    """A decoded event shaped like ``decode_swap`` / ``decode_burn`` output."""
    tx_hash = f"0x{block:032x}{index:032x}"
    payload: dict[str, Any] = {
        "chain": chain, "token": token, "symbol": "AAA",
        "tx_hash": tx_hash, "log_index": index, "block": block, "time": T0 + block * 1000,
    }  # fmt: skip
    if kind == "swap":
        payload.update(pair=PAIR_A, side="buy", token_amount="1.5", paired_amount="0.25",
                       price_in_paired="0.1666666666666666666666666667", taker=WETH)
    else:
        payload.update(amount="1000", **{"from": WETH, "to": "0x" + "00" * 20})
    payload.update(extra)
    return OnchainEvent(kind=kind, chain=chain, token=token,
                        tx_hash=tx_hash, log_index=index, block=block,
                        block_hash=block_hash(block, fork), time=T0 + block * 1000,
                        payload=payload)


def keys(rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(r["block"], r["log_index"]) for r in rows]


async def stored_count(sql: SqlStore) -> int:
    async with sql.engine.connect() as conn:
        return int((await conn.execute(
            select(func.count()).select_from(onchain_events))).scalar_one())


# -- watchlist --------------------------------------------------------------------------


def tracked(chain: int, address: str, symbol: str, *, added_at: int = 0,
            **extra: Any) -> TrackedToken:
    return TrackedToken(chain=chain, address=address, symbol=symbol, decimals=18,
                        name=f"{symbol} token", added_at=added_at, **extra)


async def test_add_get_list_remove_tokens(store: EvmStore, clock: Clock) -> None:
    full = TrackedToken(
        chain=ETH, address=TOKEN_A, symbol="AAA", name="Token A", decimals=9, pair=PAIR_A,
        paired=WETH, paired_symbol="WETH", paired_decimals=18, is_token0=False,
        group="alpha", added_at=T0 + 20,
    )  # fmt: skip
    assert await store.list_tokens() == []
    assert await store.get_token(ETH, TOKEN_A) is None

    assert await store.add_token(full) == full  # explicit added_at kept
    clock.now = T0 + 10
    b = await store.add_token(tracked(ETH, TOKEN_B, "BBB"))
    assert b == tracked(ETH, TOKEN_B, "BBB", added_at=T0 + 10)  # added_at from the clock
    c = await store.add_token(tracked(BSC, TOKEN_A, "CCC", added_at=T0))  # same address
    # Same added_at as b: the address breaks the tie.
    d = await store.add_token(tracked(ETH, "0x" + "0f" * 20, "DDD", added_at=T0 + 10))

    assert await store.get_token(ETH, TOKEN_A) == full  # every field round-trips
    assert await store.get_token(BSC, TOKEN_A) == c
    assert await store.get_token(BSC, TOKEN_B) is None
    # Ordered by (chain, added_at, address).
    assert await store.list_tokens() == [d, b, full, c]
    assert await store.list_tokens(ETH) == [d, b, full]
    assert await store.list_tokens(BSC) == [c]
    assert await store.list_tokens(137) == []

    assert await store.remove_token(ETH, TOKEN_A) is True
    assert await store.remove_token(ETH, TOKEN_A) is False
    assert await store.remove_token(137, TOKEN_B) is False
    assert await store.get_token(ETH, TOKEN_A) is None
    assert await store.get_token(BSC, TOKEN_A) == c  # the other chain's entry is kept
    assert await store.list_tokens() == [d, b, c]


async def test_token_addresses_are_lower_cased(store: EvmStore) -> None:
    mixed = "0xAbCd" + "0123456789aBcDeF" * 2 + "Ef01"
    assert len(mixed) == 42
    added = await store.add_token(tracked(ETH, mixed, "MIX", added_at=T0))
    assert added.address == mixed.lower()
    assert await store.get_token(ETH, mixed.upper().replace("0X", "0x")) == added
    assert await store.get_token(ETH, mixed.lower()) == added
    assert [t.address for t in await store.list_tokens()] == [mixed.lower()]
    assert await store.remove_token(ETH, mixed) is True
    assert await store.list_tokens() == []


async def test_duplicate_token_is_a_store_error(store: EvmStore) -> None:
    first = await store.add_token(tracked(ETH, TOKEN_A, "AAA", added_at=T0))
    for again in (TOKEN_A, TOKEN_A.upper().replace("0X", "0x")):
        with pytest.raises(StoreError, match=f"already tracked on chain {ETH}"):
            await store.add_token(tracked(ETH, again, "OTHER", added_at=T0 + 1))
    assert await store.list_tokens() == [first]  # the first entry is untouched
    # The store stays usable after the failed transactions (Postgres aborts them).
    other_chain = await store.add_token(tracked(BSC, TOKEN_A, "AAA", added_at=T0))
    assert await store.list_tokens() == [first, other_chain]


# -- cursor and commit_range ------------------------------------------------------------


async def test_cursor_absent_then_set_by_commit_range(store: EvmStore) -> None:
    assert await store.get_cursor(ETH) is None
    assert await store.commit_range(ETH, [], 100, block_hash(100)) == []
    assert await store.get_cursor(ETH) == (100, block_hash(100))
    assert await store.commit_range(ETH, [], 150, block_hash(150)) == []
    assert await store.get_cursor(ETH) == (150, block_hash(150))
    assert await store.get_cursor(BSC) is None  # per chain
    await store.commit_range(BSC, [], 7, block_hash(7))
    assert await store.get_cursor(BSC) == (7, block_hash(7))
    assert await store.get_cursor(ETH) == (150, block_hash(150))
    # Block numbers beyond 32 bits (BigInteger on Postgres).
    await store.commit_range(ETH, [], 2**40, block_hash(2**40))
    assert await store.get_cursor(ETH) == (2**40, block_hash(2**40))


async def test_chain_ids_beyond_32_bits(store: EvmStore) -> None:
    """Chain ids above 2**31 exist (Palm: 11297108109); Postgres stores them since 0005."""
    palm = 11297108109
    await store.add_token(tracked(palm, "0x" + "ab" * 20, "PALM"))
    assert [t.chain for t in await store.list_tokens(palm)] == [palm]
    stored = await store.commit_range(palm, [event(5, 0, chain=palm)], 5, block_hash(5))
    assert [e.chain for e in stored] == [palm]
    assert await store.get_cursor(palm) == (5, block_hash(5))
    assert len(await store.events("swap", palm)) == 1


async def test_commit_range_stores_events_once(store: EvmStore, sql: SqlStore) -> None:
    e1, e2, e3 = event(10, 0), event(11, 4, kind="burn"), event(12, 1)
    assert await store.commit_range(ETH, [e1, e2], 11, block_hash(11)) == [e1, e2]
    assert await stored_count(sql) == 2
    assert await store.get_cursor(ETH) == (11, block_hash(11))

    # The range seen again (plus one more block): only the new event is new.
    assert await store.commit_range(ETH, [e1, e2, e3], 12, block_hash(12)) == [e3]
    assert await stored_count(sql) == 3
    assert await store.get_cursor(ETH) == (12, block_hash(12))
    assert await store.commit_range(ETH, [e3, e1, e2], 12, block_hash(12)) == []
    assert await stored_count(sql) == 3

    assert await store.events("swap", ETH) == [e1.payload, e3.payload]
    assert await store.events("burn", ETH) == [e2.payload]


async def test_same_tx_and_log_index_on_another_chain_is_another_event(
        store: EvmStore, sql: SqlStore) -> None:
    on_eth, on_bsc = event(10, 0), event(10, 0, chain=BSC)
    assert on_eth.tx_hash == on_bsc.tx_hash
    assert await store.commit_range(ETH, [on_eth], 10, block_hash(10)) == [on_eth]
    assert await store.commit_range(BSC, [on_bsc], 10, block_hash(10)) == [on_bsc]
    assert await stored_count(sql) == 2
    assert await store.events("swap", ETH) == [on_eth.payload]
    assert await store.events("swap", BSC) == [on_bsc.payload]


async def test_commit_range_is_one_transaction(store: EvmStore, sql: SqlStore) -> None:
    e1 = event(10, 0)
    await store.commit_range(ETH, [e1], 10, block_hash(10))
    # The same key twice in one range violates (chain, tx_hash, log_index) at the INSERT,
    # after the seen-check: the whole unit of work is rolled back, and the failure is a
    # StoreError (what the watcher counts and retries), not a raw driver error.
    e2 = event(11, 0)
    twin = replace(e2, payload={**e2.payload, "side": "sell"})
    with pytest.raises(StoreError, match="store block range failed"):
        await store.commit_range(ETH, [e2, twin, event(12, 0)], 12, block_hash(12))
    assert await stored_count(sql) == 1
    assert await store.get_cursor(ETH) == (10, block_hash(10))
    assert await store.events("swap", ETH) == [e1.payload]
    # And the store is usable afterwards.
    assert await store.commit_range(ETH, [e2], 12, block_hash(12)) == [e2]
    assert await store.get_cursor(ETH) == (12, block_hash(12))


class _Interleaved:
    """An AsyncConnection stand-in that runs ``between`` after the first statement."""

    def __init__(self, conn: AsyncConnection, between: Callable[[], Awaitable[object]]) -> None:
        self._conn = conn
        self._between: Callable[[], Awaitable[object]] | None = between

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        result = await self._conn.execute(*args, **kwargs)
        if self._between is not None:
            between, self._between = self._between, None
            await between()
        return result


class RacedStore(EvmStore):
    """An EvmStore whose next transaction lets ``rival`` write right after its first read
    (for ``commit_range``: between the check for already-stored events and the insert)."""

    rival: Callable[[], Awaitable[object]] | None = None

    @asynccontextmanager
    async def _begin(self, what: str, *, unique: bool = False
                     ) -> AsyncIterator[AsyncConnection]:
        async with super()._begin(what, unique=unique) as conn:
            rival, self.rival = self.rival, None
            yield cast(AsyncConnection, _Interleaved(conn, rival)) if rival else conn


async def test_commit_range_losing_a_race_is_a_store_error(
        store_url: str, sql: SqlStore, store: EvmStore) -> None:
    # Two nodes watching the same chain into one database: the other one stores the same
    # events between this one's check and its insert.
    e1, e2 = event(10, 0), event(10, 1)
    other_sql = await SqlStore.open(store_url)
    try:
        other = EvmStore(other_sql.engine)
        raced = RacedStore(sql.engine)
        raced.rival = lambda: other.commit_range(ETH, [e1], 10, block_hash(10))
        with pytest.raises(StoreError, match="store block range failed"):
            await raced.commit_range(ETH, [e1, e2], 11, block_hash(11))
        # Rolled back: only the rival's event and cursor are there.
        assert await stored_count(sql) == 1
        assert await store.get_cursor(ETH) == (10, block_hash(10))
        # The watcher's retry of the range stores the rest.
        assert await raced.commit_range(ETH, [e1, e2], 11, block_hash(11)) == [e2]
        assert await store.events("swap", ETH) == [e1.payload, e2.payload]
        assert await store.get_cursor(ETH) == (11, block_hash(11))
    finally:
        await other_sql.close()


async def test_exact_decimal_strings_round_trip(store: EvmStore, sql: SqlStore) -> None:
    uint256_max = str(2**256 - 1)
    swap = event(10, 0, token_amount=BIG_AMOUNT, paired_amount="0.000000000000000001",
                 price_in_paired=TINY_PRICE, raw=uint256_max)
    burn = event(10, 1, kind="burn", amount=BIG_AMOUNT)
    await store.commit_range(ETH, [swap, burn], 10, block_hash(10))

    [got_swap] = await store.events("swap", ETH)
    [got_burn] = await store.events("burn", ETH, token=TOKEN_A, since=(0, 0))
    assert got_swap == swap.payload and got_burn == burn.payload
    assert got_swap["token_amount"] == BIG_AMOUNT
    assert got_swap["paired_amount"] == "0.000000000000000001"
    assert got_swap["price_in_paired"] == TINY_PRICE
    assert got_swap["raw"] == uint256_max
    assert got_burn["amount"] == BIG_AMOUNT
    for value in (got_swap["token_amount"], got_swap["price_in_paired"], got_burn["amount"]):
        assert type(value) is str

    async with sql.engine.connect() as conn:
        texts = (await conn.execute(select(onchain_events.c.payload))).scalars().all()
    stored = " ".join(texts)
    for literal in (BIG_AMOUNT, TINY_PRICE, uint256_max):
        assert f'"{literal}"' in stored  # stored verbatim as JSON strings

    removed = await store.rewind(ETH, 9, block_hash(9))
    assert [e.payload for e in removed] == [swap.payload, burn.payload]
    assert removed[0].payload["price_in_paired"] == TINY_PRICE


# -- reorgs -----------------------------------------------------------------------------


async def test_event_blocks_distinct_newest_first(store: EvmStore) -> None:
    await store.commit_range(ETH, [event(10, 0), event(10, 3, kind="burn"), event(12, 1),
                                   event(15, 0)], 15, block_hash(15))
    await store.commit_range(BSC, [event(13, 0, chain=BSC)], 13, block_hash(13))
    every = [(15, block_hash(15)), (12, block_hash(12)), (10, block_hash(10))]
    assert await store.event_blocks(ETH, 0) == every
    assert await store.event_blocks(ETH, 10) == every  # since_block is inclusive
    assert await store.event_blocks(ETH, 11) == every[:2]
    assert await store.event_blocks(ETH, 15) == every[:1]
    assert await store.event_blocks(ETH, 16) == []
    assert await store.event_blocks(BSC, 0) == [(13, block_hash(13))]
    assert await store.event_blocks(137, 0) == []


async def test_rewind_removes_later_events_and_moves_cursor(
        store: EvmStore, sql: SqlStore) -> None:
    e10, e12a, e12b, e15 = event(10, 0), event(12, 0), event(12, 3, kind="burn"), event(15, 2)
    other = event(11, 0, chain=BSC)
    # Committed out of order: rewind still returns the removed events oldest first.
    await store.commit_range(ETH, [e15, e12b, e10, e12a], 15, block_hash(15))
    await store.commit_range(BSC, [other], 20, block_hash(20))

    removed = await store.rewind(ETH, 10, block_hash(10))
    assert removed == [e12a, e12b, e15]  # every field round-trips, ordered (block, log)
    assert await store.get_cursor(ETH) == (10, block_hash(10))
    assert await store.event_blocks(ETH, 0) == [(10, block_hash(10))]
    assert await store.events("swap", ETH) == [e10.payload]
    assert await store.events("burn", ETH) == []
    # The other chain is untouched.
    assert await store.get_cursor(BSC) == (20, block_hash(20))
    assert await store.events("swap", BSC) == [other.payload]
    assert await stored_count(sql) == 2

    # The new fork re-includes a transaction at the same (tx_hash, log_index): it is new.
    e12_new = event(12, 0, fork="f")
    assert await store.commit_range(ETH, [e12_new], 13, block_hash(13, "f")) == [e12_new]
    assert await store.event_blocks(ETH, 0) == [(12, block_hash(12, "f")),
                                                (10, block_hash(10))]

    # Nothing after the block: nothing removed, but the cursor still moves.
    assert await store.rewind(ETH, 12, block_hash(12, "f")) == []
    assert await store.get_cursor(ETH) == (12, block_hash(12, "f"))
    # Rewinding a chain with no cursor creates it.
    assert await store.rewind(137, -1, "") == []
    assert await store.get_cursor(137) == (-1, "")


# -- the events query -------------------------------------------------------------------


@pytest.fixture
async def history(store: EvmStore) -> None:
    await store.commit_range(ETH, [
        event(10, 0), event(10, 1), event(11, 0), event(11, 1, kind="burn"),
        event(12, 0, token=TOKEN_B), event(12, 2), event(13, 0),
    ], 13, block_hash(13))  # fmt: skip
    await store.commit_range(BSC, [event(12, 5, chain=BSC)], 13, block_hash(13))


SWAPS = [(10, 0), (10, 1), (11, 0), (12, 0), (12, 2), (13, 0)]


@pytest.mark.usefixtures("history")
async def test_events_newest_limit_oldest_first(store: EvmStore) -> None:
    assert keys(await store.events("swap", ETH)) == SWAPS
    assert keys(await store.events("swap", ETH, limit=2)) == [(12, 2), (13, 0)]
    assert keys(await store.events("swap", ETH, limit=1)) == [(13, 0)]
    assert keys(await store.events("swap", ETH, token=TOKEN_A)) == [
        (10, 0), (10, 1), (11, 0), (12, 2), (13, 0)]
    assert keys(await store.events("swap", ETH, token=TOKEN_A, limit=3)) == [
        (11, 0), (12, 2), (13, 0)]
    assert keys(await store.events("swap", ETH, token=TOKEN_B.upper().replace("0X", "0x"))
                ) == [(12, 0)]
    assert keys(await store.events("burn", ETH)) == [(11, 1)]
    assert keys(await store.events("burn", ETH, token=TOKEN_B)) == []
    assert keys(await store.events("swap", BSC)) == [(12, 5)]
    assert await store.events("swap", 137) == []


@pytest.mark.usefixtures("history")
async def test_events_since_is_exclusive_and_pages_forward(store: EvmStore) -> None:
    assert keys(await store.events("swap", ETH, since=(0, 0))) == SWAPS
    assert keys(await store.events("swap", ETH, since=(10, 0))) == SWAPS[1:]
    assert keys(await store.events("swap", ETH, since=(10, 1))) == SWAPS[2:]
    # The first `limit` after `since`, not the newest ones.
    assert keys(await store.events("swap", ETH, since=(10, 1), limit=2)) == [(11, 0), (12, 0)]
    assert keys(await store.events("swap", ETH, since=(12, 0))) == [(12, 2), (13, 0)]
    assert keys(await store.events("swap", ETH, since=(12, 1))) == [(12, 2), (13, 0)]
    assert keys(await store.events("swap", ETH, since=(13, 0))) == []
    assert keys(await store.events("swap", ETH, token=TOKEN_A, since=(11, 0), limit=1)
                ) == [(12, 2)]
    assert keys(await store.events("burn", ETH, since=(11, 0))) == [(11, 1)]
    assert keys(await store.events("burn", ETH, since=(11, 1))) == []
    # Paging forward with the last (block, log_index) seen visits every event once.
    seen: list[tuple[int, int]] = []
    since = (-1, -1)
    while page := await store.events("swap", ETH, since=since, limit=4):
        seen += keys(page)
        since = seen[-1]
    assert seen == SWAPS


# -- Telegram bindings ------------------------------------------------------------------


async def test_chat_bindings(store: EvmStore, clock: Clock) -> None:
    assert await store.bindings() == {}
    assert await store.bind_chat("alpha", "-100123") is True
    assert await store.bind_chat("alpha", "-100123") is False  # idempotent
    clock.now = T0 + 1
    assert await store.bind_chat("alpha", "42") is True
    clock.now = T0 + 2
    assert await store.bind_chat("beta", "-100123") is True
    clock.now = T0 + 3
    assert await store.bind_chat("Alpha", "7") is True  # groups are case-sensitive

    # By group, then in the order they were bound.
    assert await store.bindings() == {"Alpha": ["7"], "alpha": ["-100123", "42"],
                                      "beta": ["-100123"]}
    assert await store.bindings(["beta"]) == {"beta": ["-100123"]}
    assert await store.bindings(["alpha", "nobody"]) == {"alpha": ["-100123", "42"]}
    assert await store.bindings(iter(["beta", "alpha"])) == {"alpha": ["-100123", "42"],
                                                            "beta": ["-100123"]}
    assert await store.bindings([]) == {}

    assert await store.unbind_chat("alpha", "-100123") is True
    assert await store.unbind_chat("alpha", "-100123") is False  # idempotent
    assert await store.unbind_chat("nobody", "42") is False
    assert await store.bindings() == {"Alpha": ["7"], "alpha": ["42"], "beta": ["-100123"]}

    clock.now = T0 + 4
    assert await store.bind_chat("alpha", "-100123") is True  # bound again: now the newest
    assert await store.bindings(["alpha"]) == {"alpha": ["42", "-100123"]}
    assert await store.unbind_chat("alpha", "42") is True
    assert await store.unbind_chat("alpha", "-100123") is True
    assert await store.bindings(["alpha"]) == {}
