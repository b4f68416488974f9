"""pgnotify's pure parts: NOTIFY payload decoding (verbatim numbers) and mirror filters."""

from __future__ import annotations

import orjson
import pytest

from cryptowire.errors import ConfigError
from cryptowire.settings import PgNotifySettings
from cryptowire.sources.pgnotify import decode_notification, listen_dsn, row_matches


def test_decode_keeps_key_order_and_number_text() -> None:
    text = ('{"channel": "fill_event", "payload": {"txn_version": 12, "price": 1.50, '
            '"size": 123456789012345678901234567890, "maker_side": true, "time": '
            '"1970-01-01T00:00:00.000000+00:00", "z": null}}')
    channel, payload = decode_notification(text)
    assert channel == "fill_event"
    assert orjson.dumps(payload) == (
        b'{"txn_version":12,"price":1.50,"size":123456789012345678901234567890,'
        b'"maker_side":true,"time":"1970-01-01T00:00:00.000000+00:00","z":null}')


@pytest.mark.parametrize("text", ["nope", "[1]", '{"payload": {}}', '{"channel": "x"}',
                                  '{"channel": "x", "payload": NaN}'])
def test_decode_refuses_other_shapes(text: str) -> None:
    with pytest.raises(ValueError):
        decode_notification(text)


def test_row_filters() -> None:
    row = '{"market_id": 3, "maker_side": true, "price": 1.50, "maker": "0x1", "n": null}'
    assert row_matches(row, {})
    assert row_matches(row, {"market_id": "3", "maker_side": "true", "maker": "0x1"})
    assert row_matches(row, {"market_id": "eq.3", "price": "1.5", "n": "null"})
    assert not row_matches(row, {"market_id": "4"})
    assert not row_matches(row, {"maker_side": "false"})
    assert not row_matches(row, {"missing": "1"})
    assert not row_matches(row, {"market_id": "x"})


def test_listen_dsn() -> None:
    cfg = PgNotifySettings()
    assert listen_dsn(cfg, "postgresql+asyncpg://u@h:5/db") == "postgresql://u@h:5/db"
    with pytest.raises(ConfigError, match="Postgres"):
        listen_dsn(cfg, "sqlite+aiosqlite:///x.db")
    cfg = PgNotifySettings(url="postgresql://a@b/c")
    assert listen_dsn(cfg, "sqlite:///x.db") == "postgresql://a@b/c"
