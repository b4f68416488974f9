"""API keys without I/O: generate, parse, hash, check, and the :class:`ApiKey` record.

A key reads ``cw_<prefix>_<secret>``: ``prefix`` is 8 lowercase alphanumerics, stored in clear
so a key can be looked up; ``secret`` is ``secrets.token_urlsafe(32)`` (43 characters). Only
the prefix and the hex SHA-256 of the whole key are stored (DESIGN.md, "Security and limits"),
and the plaintext is handed out once, by :meth:`SqlStore.create_key`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass

from cryptowire.errors import StoreError

#: Every scope a key may carry.
VALID_SCOPES: frozenset[str] = frozenset({"read", "rfq", "publish", "admin"})

KEY_PREFIX_LEN = 8
#: Longest name accepted for a key (the column is this wide).
MAX_NAME_LEN = 100

_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
# token_urlsafe(32) is base64url of 32 bytes without padding: always 43 characters.
_KEY_RE = re.compile(r"cw_([a-z0-9]{8})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One stored API key, without its secret. Timestamps are UTC epoch milliseconds."""

    id: str
    prefix: str
    name: str
    scopes: frozenset[str]
    created_at: int
    revoked_at: int | None
    last_used_at: int | None

    @property
    def revoked(self) -> bool:
        """True once the key has been revoked; a revoked key never verifies again."""
        return self.revoked_at is not None


def new_key_id() -> str:
    """A fresh record id: 12 lowercase hex characters."""
    return secrets.token_hex(6)


def new_prefix() -> str:
    """A fresh lookup prefix: 8 lowercase alphanumerics."""
    return "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(KEY_PREFIX_LEN))


def generate_key(prefix: str | None = None) -> tuple[str, str]:
    """Return ``(plaintext, prefix)`` for a new key, using ``prefix`` if given."""
    prefix = new_prefix() if prefix is None else prefix
    plaintext = f"cw_{prefix}_{secrets.token_urlsafe(32)}"
    if _KEY_RE.fullmatch(plaintext) is None:
        raise StoreError("a key prefix must be 8 lowercase letters or digits")
    return plaintext, prefix


def parse_prefix(plaintext: str) -> str | None:
    """The lookup prefix of a well-formed key, or None when the format is wrong."""
    match = _KEY_RE.fullmatch(plaintext)
    return match.group(1) if match else None


def hash_key(plaintext: str) -> str:
    """Hex SHA-256 of the whole key, as stored in ``api_keys.key_hash``."""
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def check_key(plaintext: str, key_hash: str) -> bool:
    """Whether ``plaintext`` hashes to ``key_hash``, compared in constant time."""
    return hmac.compare_digest(hash_key(plaintext), key_hash)


def parse_scopes(scopes: Iterable[str] | str) -> frozenset[str]:
    """Validate scopes given as names or as one comma-separated string.

    Raises :class:`StoreError` for an unknown scope or when none is given.
    """
    items = scopes.split(",") if isinstance(scopes, str) else scopes
    result = frozenset(s.strip().lower() for s in items if s.strip())
    unknown = result - VALID_SCOPES
    if unknown:
        raise StoreError(
            f"unknown scope(s) {', '.join(sorted(unknown))}; "
            f"valid: {', '.join(sorted(VALID_SCOPES))}"
        )
    if not result:
        raise StoreError(f"a key needs at least one scope of {', '.join(sorted(VALID_SCOPES))}")
    return result


def format_scopes(scopes: Iterable[str]) -> str:
    """The stored form of a scope set: sorted and comma-separated."""
    return ",".join(sorted(scopes))


def check_name(name: str) -> str:
    """A key's display name, stripped; :class:`StoreError` if empty, too long or with a
    control character (NUL is refused by Postgres; a newline would forge log lines)."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LEN:
        raise StoreError(f"a key name must be 1 to {MAX_NAME_LEN} characters")
    if not name.isprintable():
        raise StoreError("a key name cannot contain control characters")
    return name
