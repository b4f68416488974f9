"""The REST mirror's query (``GET /<channel>s``) on SQLite and the real Postgres: filters run
in SQL and give what the exact Python rule gives, within the scan window, under a timeout."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event

from cryptowire.errors import ProtocolError, StoreError
from cryptowire.sources import pgnotify
from cryptowire.sources.pgnotify import mirror_rows, pg_mirror, row_matches
from cryptowire.store import SqlStore

pytestmark = pytest.mark.integration

#: Payload texts as the mirror stores them (NOTIFY's own text: number spellings kept).
PAYLOADS = [
    '{"market_id":1,"price":1.50,"maker_side":true,"who":"0xa","n":null,"tags":["a",1]}',
    '{"market_id":2,"price":1.5,"maker_side":false,"who":"0xb","n":3,"tags":{"k":1}}',
    '{"market_id":"1","price":"1.5","maker_side":"true","who":"null","n":"null"}',
    '{"market_id":340282366920938463463374607431768211455,"price":2,"who":"0xa"}',
    '{"market_id":1e0,"price":-0.0,"who":"x\\ty","tags":["a",1]}',
    '{"market_id":340282366920938463463374607431768211454,"price":0.1}',
    '["not","an","object"]',
    '{"market_id":1.0000000000000001,"who":"\\u00e9"}',
]
FILTERS: list[dict[str, str]] = [
    {}, {"market_id": "1"}, {"market_id": "eq.1"}, {"market_id": "1.0"}, {"market_id": "x"},
    {"market_id": "340282366920938463463374607431768211455"}, {"price": "1.5"},
    {"price": "0"}, {"price": "0.1"}, {"maker_side": "true"}, {"maker_side": "FALSE"},
    {"who": "null"}, {"n": "null"}, {"who": "0xa", "price": "2"}, {"tags": '["a",1]'},
    {"tags": '{"k": 1}'}, {"who": "é"}, {"who": "x\ty"}, {"missing": "1"},
    {"market_id": "1e0"}, {"price": "NaN"}, {"tags": "[1"},
]


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SqlStore]:
    s = await SqlStore.open(store_url)
    try:
        yield s
    finally:
        await s.close()


async def insert(store: SqlStore, payloads: list[str], channel: str = "fill_event") -> None:
    async with store.engine.begin() as conn:
        await conn.execute(pg_mirror.insert(), [
            {"channel": channel, "payload": p, "received_at": 0} for p in payloads])


def expected(payloads: list[str], filters: dict[str, str], limit: int) -> list[str]:
    """The exact Python rule over every row: what the mirror answered before."""
    matching = [p for p in payloads if row_matches(p, filters)]
    return matching[-limit:] if limit else []


async def test_sql_filters_give_what_the_python_rule_gives(store: SqlStore) -> None:
    await insert(store, PAYLOADS)
    await insert(store, ['{"market_id":1}'], channel="other_event")
    for filters in FILTERS:
        for limit in (1, 3, 100):
            got = await mirror_rows(store.engine, "fill_event", limit, dict(filters))
            assert got == expected(PAYLOADS, filters, limit), (filters, limit)


async def test_the_filter_runs_in_sql_and_the_cap_hides_no_match(
        store: SqlStore, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [json.dumps({"market_id": 7 if i % 700 == 0 else i % 5, "i": i})
            for i in range(3500)]
    await insert(store, rows)
    statements: list[str] = []
    event.listen(store.engine.sync_engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    checked: list[Any] = []

    def counting(payload: str, filters: dict[str, str]) -> bool:
        checked.append(payload)
        return row_matches(payload, filters)

    monkeypatch.setattr(pgnotify, "row_matches", counting)
    got = await mirror_rows(store.engine, "fill_event", 100, {"market_id": "7"})
    assert [json.loads(r)["i"] for r in got] == [0, 700, 1400, 2100, 2800]
    # Python saw the matching rows only: the 3,495 others stayed in the database
    assert len(checked) == 5
    select = [s for s in statements if "FROM pg_mirror" in s and "LIMIT" in s]
    assert select and all(("json_extract" in s.lower()) or ("->>" in s)
                          for s in select), select
    # the newest max_scan rows only: 2100 and 2800 are among the newest 1,500
    got = await mirror_rows(store.engine, "fill_event", 100, {"market_id": "7"},
                            max_scan=1500)
    assert [json.loads(r)["i"] for r in got] == [2100, 2800]
    got = await mirror_rows(store.engine, "fill_event", 2, {"market_id": "7"})
    assert [json.loads(r)["i"] for r in got] == [2100, 2800]


async def test_a_row_postgres_cannot_read_as_json_fails_no_query(store: SqlStore) -> None:
    await insert(store, ['{"market_id":1,"i":0}', '{"market_id":1,"who":"x\\u0000y","i":1}',
                         '{"market_id":1,"who":"\\ud800","i":2}', '{"market_id":1,"i":3}'])
    got = await mirror_rows(store.engine, "fill_event", 10, {"market_id": "1"})
    assert [json.loads(r)["i"] for r in got if json.loads(r)["i"] in (0, 3)] == [0, 3]


@pytest.mark.parametrize("filters", [{"a b": "1"}, {"x'": "1"}, {"$.x": "1"},
                                     {"who": "x\u0000y"}, {f"k{i}": "1" for i in range(17)}])
async def test_bad_filter_keys_are_refused(store: SqlStore, filters: dict[str, str]) -> None:
    with pytest.raises(ProtocolError):
        await mirror_rows(store.engine, "fill_event", 10, filters)


async def test_postgres_statement_timeout_cancels_a_long_query(pg_url: str) -> None:
    store = await SqlStore.open(pg_url)
    try:
        await insert(store, [json.dumps({"market_id": i % 3, "pad": "p" * 200, "i": i})
                             for i in range(60_000)])
        with pytest.raises(StoreError, match="rest_statement_timeout_ms"):
            await mirror_rows(store.engine, "fill_event", 10, {"market_id": "9"},
                              timeout_ms=1)
        # the timeout is the query's own: the pool's next connection has none
        got = await mirror_rows(store.engine, "fill_event", 1, {"market_id": "1"})
        assert [json.loads(r)["i"] for r in got] == [59_998]
    finally:
        await store.close()
