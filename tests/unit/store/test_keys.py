"""API key format, hashing and checks, without a database."""

from __future__ import annotations

import dataclasses
import hashlib
import re

import pytest

from cryptowire.errors import StoreError
from cryptowire.store.keys import (
    VALID_SCOPES,
    ApiKey,
    check_key,
    check_name,
    format_scopes,
    generate_key,
    hash_key,
    new_key_id,
    new_prefix,
    parse_prefix,
    parse_scopes,
)

KEY_RE = re.compile(r"cw_[a-z0-9]{8}_[A-Za-z0-9_-]{43}")


def test_valid_scopes() -> None:
    assert VALID_SCOPES == frozenset({"read", "rfq", "publish", "admin"})


def test_generated_key_format() -> None:
    for _ in range(200):
        plaintext, prefix = generate_key()
        assert KEY_RE.fullmatch(plaintext)
        assert plaintext.startswith(f"cw_{prefix}_")
        assert parse_prefix(plaintext) == prefix


def test_generated_keys_differ() -> None:
    keys = {generate_key()[0] for _ in range(100)}
    assert len(keys) == 100


def test_generate_key_with_given_prefix() -> None:
    plaintext, prefix = generate_key("abcd1234")
    assert prefix == "abcd1234"
    assert plaintext.startswith("cw_abcd1234_")


@pytest.mark.parametrize("prefix", ["ABCD1234", "abc", "abcd12345", "abcd_123"])
def test_generate_key_refuses_bad_prefix(prefix: str) -> None:
    with pytest.raises(StoreError):
        generate_key(prefix)


def test_ids_and_prefixes() -> None:
    assert re.fullmatch(r"[0-9a-f]{12}", new_key_id())
    assert re.fullmatch(r"[a-z0-9]{8}", new_prefix())


def test_secret_may_contain_underscores() -> None:
    plaintext = "cw_abcd1234_" + "_" * 43
    assert parse_prefix(plaintext) == "abcd1234"


@pytest.mark.parametrize(
    "plaintext",
    [
        "",
        "cw_",
        "cw_abcd1234_",
        "cw_abcd1234_" + "a" * 42,  # secret too short
        "cw_abcd1234_" + "a" * 44,  # secret too long
        "cw_ABCD1234_" + "a" * 43,  # upper-case prefix
        "cw_abcd123_" + "a" * 44,  # prefix too short
        "xx_abcd1234_" + "a" * 43,
        "cw_abcd1234_" + "a" * 42 + "=",  # not base64url
        "cw_abcd1234_" + "a" * 43 + "\n",
        " cw_abcd1234_" + "a" * 43,
        "cw-abcd1234-" + "a" * 43,
    ],
)
def test_parse_prefix_refuses_wrong_format(plaintext: str) -> None:
    assert parse_prefix(plaintext) is None


def test_hash_is_hex_sha256_of_whole_key() -> None:
    plaintext, _ = generate_key()
    assert hash_key(plaintext) == hashlib.sha256(plaintext.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", hash_key(plaintext))


def test_check_key() -> None:
    plaintext, prefix = generate_key()
    other, _ = generate_key(prefix)
    stored = hash_key(plaintext)
    assert check_key(plaintext, stored)
    assert not check_key(other, stored)  # same prefix, wrong secret
    assert not check_key(plaintext[:-1], stored)
    assert not check_key(plaintext, "")


def test_parse_scopes() -> None:
    assert parse_scopes(["read", "rfq"]) == {"read", "rfq"}
    assert parse_scopes("read, Admin,") == {"read", "admin"}
    assert parse_scopes(iter(["publish", "publish"])) == {"publish"}


@pytest.mark.parametrize("scopes", [["read", "write"], ["superuser"], "read,root"])
def test_parse_scopes_refuses_unknown(scopes: list[str] | str) -> None:
    with pytest.raises(StoreError, match="unknown scope"):
        parse_scopes(scopes)


@pytest.mark.parametrize("scopes", [[], "", [" "]])
def test_parse_scopes_refuses_none(scopes: list[str] | str) -> None:
    with pytest.raises(StoreError, match="at least one scope"):
        parse_scopes(scopes)


def test_format_scopes_sorted() -> None:
    assert format_scopes({"rfq", "admin", "read"}) == "admin,read,rfq"


def test_check_name() -> None:
    assert check_name("  trading bot ") == "trading bot"
    for bad in ["", "   ", "x" * 101]:
        with pytest.raises(StoreError):
            check_name(bad)


def test_api_key_record() -> None:
    key = ApiKey("0123456789ab", "abcd1234", "n", frozenset({"read"}), 1, None, None)
    assert not key.revoked
    assert dataclasses.replace(key, revoked_at=2).revoked
    with pytest.raises(dataclasses.FrozenInstanceError):
        key.name = "other"  # type: ignore[misc]
    assert not hasattr(key, "__dict__")  # slots
