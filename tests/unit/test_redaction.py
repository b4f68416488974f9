"""The log filter that keeps credentials out of every record (issue 10, item 16)."""

from __future__ import annotations

import io
import logging

import pytest

from cryptowire.redaction import SecretRedactor, install, redact

KEY = "cw_ab12cd34_" + "S" * 43
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJtb2RlIjoiciIsImNoYW5uZWxzIjpbImEiXX0.c2lnbmF0dXJl"


@pytest.mark.parametrize(("text", "clean"), [
    (f"bytearray(b'/ws?api_key={KEY}&pad=xx...')", "bytearray(b'/ws?api_key=***&pad=xx...')"),
    (f"b'{KEY}yyy...'", "b'cw_ab12cd34_***...'"),
    (f"b'{KEY[:20]}'", "b'cw_ab12cd34_***'"),  # cut short in the middle of the secret
    ("b'cw_ab12c'", "b'cw_ab12c'"),  # cut short in the prefix: nothing secret left
    ("b'cw_SECRETHEADER99yyy'", "b'cw_***'"),  # not a well-formed key: all of it
    (f"bytearray(b'/pg/{JWT}zzz...')", "bytearray(b'/pg/eyJ***...')"),
    (f"/pg/market/{JWT[:30]}", "/pg/market/eyJ***"),
    ("b'Bearer abcdefghijklmnopq...'", "b'Bearer ***'"),
    ("X-API-Key: not-a-cw-key\r\nHost: x", "X-API-Key: ***\r\nHost: x"),
    (f"Authorization: Bearer {KEY}", "Authorization: Bearer cw_ab12cd34_***"),
    (f"b'Bearer {KEY}ww...'", "b'Bearer cw_ab12cd34_***...'"),
    ("{'x-api-key': 'secret', 'Authorization': 'Bearer t.o.k'}",
     "{'x-api-key': '***', 'Authorization': 'Bearer ***'}"),
    ("GET /rfq?token=abc&x=1", "GET /rfq?token=***&x=1"),
    ("session 12 closed with 4008", "session 12 closed with 4008"),
    ("key cw_ab12cd34 revoked", "key cw_ab12cd34 revoked"),  # an id or prefix is not secret
])
def test_redact(text: str, clean: str) -> None:
    assert redact(text) == clean


def test_the_filter_cleans_message_arguments_and_traceback() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test.redaction")
    logger.propagate = False
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    install(logger)
    install(logger)  # idempotent
    assert sum(isinstance(f, SecretRedactor) for f in handler.filters) == 1
    try:
        logger.warning("request %s from %s", f"/ws?api_key={KEY}", "127.0.0.1")
        try:
            raise ValueError(f"Got more than 8190 bytes when reading: b'/pg/{JWT}'")
        except ValueError:
            logger.exception("Error handling request")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert KEY[12:] not in out and JWT not in out and "eyJhbGci" not in out
    assert "request /ws?api_key=*** from 127.0.0.1" in out
    assert "ValueError: Got more than 8190 bytes when reading: b'/pg/eyJ***'" in out
