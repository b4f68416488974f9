"""The on-chain tables and queries: watchlist, chain cursors, event log, Telegram bindings.

Uses :attr:`SqlStore.engine <cryptowire.store.sql.SqlStore.engine>`; the schema is built by
migration ``0002``. The watcher's unit of work is :meth:`EvmStore.commit_range`: the events
of one block range and the cursor after it, in one transaction, so a crash leaves either
both or neither. Events are unique by ``(chain, tx_hash, log_index)``; a range seen twice
inserts nothing twice. Foreign errors leave as :class:`~cryptowire.errors.StoreError`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy import (
    and_,
    delete,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cryptowire.clock import now_ms
from cryptowire.errors import StoreError
from cryptowire.logthrottle import log_throttled
from cryptowire.onchain import OnchainEvent, TrackedToken
from cryptowire.store.tables import chain_cursors, onchain_events, telegram_bindings, tokens

log = logging.getLogger("cryptowire.store.evm")

_FOREIGN = (SQLAlchemyError, OSError)


def _token(row: Any) -> TrackedToken:
    m = row._mapping
    return TrackedToken(
        chain=m["chain"], address=m["address"], symbol=m["symbol"], name=m["name"],
        decimals=m["decimals"], pair=m["pair"], paired=m["paired"],
        paired_symbol=m["paired_symbol"], paired_decimals=m["paired_decimals"],
        is_token0=bool(m["is_token0"]), group=m["group"], added_at=m["added_at"],
    )  # fmt: skip


def _event(row: Any) -> OnchainEvent:
    m = row._mapping
    return OnchainEvent(
        kind=m["kind"], chain=m["chain"], token=m["token"], tx_hash=m["tx_hash"],
        log_index=m["log_index"], block=m["block"], block_hash=m["block_hash"],
        time=m["time"], payload=orjson.loads(m["payload"]),
    )  # fmt: skip


class EvmStore:
    """Queries of the on-chain source over an :class:`AsyncEngine`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def _begin(self, what: str, *, unique: bool = False
                     ) -> AsyncIterator[AsyncConnection]:
        """A transaction whose foreign errors leave as :class:`StoreError`. With ``unique``,
        an :class:`IntegrityError` is re-raised for the caller to read as "already there";
        otherwise it is a failure like any other (``commit_range`` losing a race to another
        writer of the same events must reach the watcher as a StoreError, which it retries)."""
        try:
            async with self.engine.begin() as conn:
                yield conn
        except _FOREIGN as exc:
            if unique and isinstance(exc, IntegrityError):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            error = StoreError(f"{what} failed (a database error)",
                               detail=f"{type(exc).__name__}: {first}")
            # ``what`` is a literal of this module: one throttle key per operation.
            log_throttled(log, logging.WARNING, f"store: {what} failed: %s", error.detail)
            raise error from exc

    # -- watchlist ------------------------------------------------------------------------

    async def add_token(self, token: TrackedToken) -> TrackedToken:
        """Insert ``token``; :class:`StoreError` when it is already tracked on that chain."""
        added = token.added_at or now_ms()
        row = {
            "chain": token.chain, "address": token.address.lower(), "symbol": token.symbol,
            "name": token.name, "decimals": token.decimals, "pair": token.pair,
            "paired": token.paired, "paired_symbol": token.paired_symbol,
            "paired_decimals": token.paired_decimals, "is_token0": token.is_token0,
            "group": token.group, "added_at": added,
        }  # fmt: skip
        try:
            async with self._begin("add token", unique=True) as conn:
                await conn.execute(insert(tokens).values(row))
        except IntegrityError as exc:
            raise StoreError(f"Token {token.address} is already tracked on chain "
                             f"{token.chain}.") from exc
        return replace(token, address=token.address.lower(), added_at=added)

    async def remove_token(self, chain: int, address: str) -> bool:
        stmt = delete(tokens).where(tokens.c.chain == chain,
                                    tokens.c.address == address.lower())
        async with self._begin("remove token") as conn:
            result = await conn.execute(stmt)
        return bool(result.rowcount)

    async def get_token(self, chain: int, address: str) -> TrackedToken | None:
        stmt = select(tokens).where(tokens.c.chain == chain, tokens.c.address == address.lower())
        async with self._begin("get token") as conn:
            row = (await conn.execute(stmt)).first()
        return _token(row) if row is not None else None

    async def list_tokens(self, chain: int | None = None) -> list[TrackedToken]:
        stmt = select(tokens).order_by(tokens.c.chain, tokens.c.added_at, tokens.c.address)
        if chain is not None:
            stmt = stmt.where(tokens.c.chain == chain)
        async with self._begin("list tokens") as conn:
            return [_token(r) for r in (await conn.execute(stmt)).all()]

    # -- cursor and event log -------------------------------------------------------------

    async def get_cursor(self, chain: int) -> tuple[int, str] | None:
        stmt = select(chain_cursors.c.block, chain_cursors.c.hash).where(
            chain_cursors.c.chain == chain)
        async with self._begin("read cursor") as conn:
            row = (await conn.execute(stmt)).first()
        return (int(row[0]), str(row[1])) if row is not None else None

    @staticmethod
    async def _set_cursor(conn: AsyncConnection, chain: int, block: int, block_hash: str
                          ) -> None:
        values = {"block": block, "hash": block_hash, "updated_at": now_ms()}
        result = await conn.execute(
            update(chain_cursors).where(chain_cursors.c.chain == chain).values(values))
        if not result.rowcount:
            await conn.execute(insert(chain_cursors).values(chain=chain, **values))

    async def commit_range(self, chain: int, events: Sequence[OnchainEvent], block: int,
                           block_hash: str) -> list[OnchainEvent]:
        """Store ``events`` and move the cursor to ``(block, block_hash)`` in one
        transaction; return the events that were new (the others were stored before)."""
        async with self._begin("store block range") as conn:
            fresh = list(events)
            if fresh:
                keys = [(e.tx_hash, e.log_index) for e in fresh]
                seen_stmt = select(onchain_events.c.tx_hash, onchain_events.c.log_index).where(
                    onchain_events.c.chain == chain,
                    tuple_(onchain_events.c.tx_hash, onchain_events.c.log_index).in_(keys))
                seen = {(r[0], r[1]) for r in (await conn.execute(seen_stmt)).all()}
                fresh = [e for e in fresh if (e.tx_hash, e.log_index) not in seen]
            if fresh:
                await conn.execute(insert(onchain_events), [{
                    "chain": e.chain, "kind": e.kind, "token": e.token, "tx_hash": e.tx_hash,
                    "log_index": e.log_index, "block": e.block, "block_hash": e.block_hash,
                    "time": e.time, "payload": orjson.dumps(e.payload).decode(),
                } for e in fresh])
            await self._set_cursor(conn, chain, block, block_hash)
        return fresh

    async def event_blocks(self, chain: int, since_block: int) -> list[tuple[int, str]]:
        """Distinct ``(block, block_hash)`` of stored events from ``since_block``, newest
        first (the reorg search walks them)."""
        stmt = (select(onchain_events.c.block, onchain_events.c.block_hash)
                .where(onchain_events.c.chain == chain, onchain_events.c.block >= since_block)
                .distinct().order_by(onchain_events.c.block.desc()))
        async with self._begin("read event blocks") as conn:
            return [(int(r[0]), str(r[1])) for r in (await conn.execute(stmt)).all()]

    async def rewind(self, chain: int, block: int, block_hash: str) -> list[OnchainEvent]:
        """Delete the events after ``block`` (orphaned by a reorg) and move the cursor back
        to it, in one transaction; return the deleted events, oldest first."""
        where = and_(onchain_events.c.chain == chain, onchain_events.c.block > block)
        async with self._begin("rewind") as conn:
            rows = (await conn.execute(select(onchain_events).where(where).order_by(
                onchain_events.c.block, onchain_events.c.log_index))).all()
            await conn.execute(delete(onchain_events).where(where))
            await self._set_cursor(conn, chain, block, block_hash)
        return [_event(r) for r in rows]

    async def events(
        self, kind: str, chain: int, *, token: str | None = None,
        since: tuple[int, int] | None = None, limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Payloads of stored events, oldest first, strictly after ``since`` =
        ``(block, log_index)`` when given, else the newest ``limit``."""
        c = onchain_events.c
        stmt = select(c.payload, c.block, c.log_index).where(c.chain == chain, c.kind == kind)
        if token is not None:
            stmt = stmt.where(c.token == token.lower())
        if since is not None:
            block, index = since
            stmt = stmt.where(or_(c.block > block, and_(c.block == block, c.log_index > index)))
            stmt = stmt.order_by(c.block, c.log_index).limit(limit)
        else:
            stmt = stmt.order_by(c.block.desc(), c.log_index.desc()).limit(limit)
        async with self._begin("read events") as conn:
            rows = (await conn.execute(stmt)).all()
        if since is None:
            rows = list(reversed(rows))
        return [orjson.loads(r[0]) for r in rows]

    # -- Telegram bindings ----------------------------------------------------------------

    async def bind_chat(self, group: str, chat_id: str) -> bool:
        """Bind ``chat_id`` to ``group``; False when it already was."""
        try:
            async with self._begin("bind chat", unique=True) as conn:
                await conn.execute(insert(telegram_bindings).values(
                    group=group, chat_id=str(chat_id), added_at=now_ms()))
        except IntegrityError:
            return False
        return True

    async def unbind_chat(self, group: str, chat_id: str) -> bool:
        stmt = delete(telegram_bindings).where(telegram_bindings.c.group == group,
                                               telegram_bindings.c.chat_id == str(chat_id))
        async with self._begin("unbind chat") as conn:
            return bool((await conn.execute(stmt)).rowcount)

    async def bindings(self, groups: Iterable[str] | None = None) -> dict[str, list[str]]:
        stmt = select(telegram_bindings.c.group, telegram_bindings.c.chat_id).order_by(
            telegram_bindings.c.group, telegram_bindings.c.added_at)
        if groups is not None:
            stmt = stmt.where(telegram_bindings.c.group.in_(list(groups)))
        out: dict[str, list[str]] = {}
        async with self._begin("read bindings") as conn:
            for group, chat in (await conn.execute(stmt)).all():
                out.setdefault(group, []).append(chat)
        return out
