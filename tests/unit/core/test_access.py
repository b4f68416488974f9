"""The one authorization rule (core/access.py): a table of principal x target x action, and a
guard that no other module decides on scopes itself."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cryptowire.core.access import (
    CHANNELS,
    KEYS,
    RFQ,
    STATS,
    WATCHLIST,
    Action,
    Denied,
    Policy,
    authorize,
    check,
)
from cryptowire.core.channels import Channel, ChannelGrammar
from cryptowire.core.session import ANONYMOUS, Principal
from cryptowire.errors import AuthError

G = ChannelGrammar()
TICKER = G.parse("ticker:BTCUSDT")
SWAP = G.parse("swap:eth")
SERVICE = G.parse("service:persistence")
APP = G.parse("app:feed")
PG = G.parse("pg:fill_event")
PG_OTHER = G.parse("pg:cancel_order_event")


def key(*scopes: str) -> Principal:
    return Principal(key_id="k1", name="k", scopes=frozenset(scopes))


JWT_002 = Principal(key_id="jwt:x", name="x", channels=frozenset({"fill_event"}))
JWT_SCOPED = Principal(key_id="jwt:y", name="y", scopes=frozenset({"read", "publish"}))
OPEN = Policy(anonymous_read=True, pg_read_keys=True)
CLOSED = Policy(anonymous_read=False, pg_read_keys=True)
PG_ADMIN_ONLY = Policy(anonymous_read=True, pg_read_keys=False)

A, F = "allow", "403"  # and "401"

# (principal, target, action, policy, expected)
TABLE: list[tuple[str, Principal, Channel | str, Action, Policy, str]] = [
    # anonymous: public reads follow anonymous_read; pg never; no writes
    ("anon ticker open", ANONYMOUS, TICKER, "read", OPEN, A),
    ("anon ticker closed", ANONYMOUS, TICKER, "read", CLOSED, "401"),
    ("anon swap", ANONYMOUS, SWAP, "read", OPEN, A),
    ("anon service", ANONYMOUS, SERVICE, "read", OPEN, A),
    ("anon service closed", ANONYMOUS, SERVICE, "read", CLOSED, "401"),
    ("anon app", ANONYMOUS, APP, "read", OPEN, A),
    ("anon pg", ANONYMOUS, PG, "read", OPEN, "401"),
    ("anon publish", ANONYMOUS, CHANNELS, "publish", OPEN, "401"),
    ("anon publish app", ANONYMOUS, APP, "publish", OPEN, "401"),
    ("anon quotes", ANONYMOUS, RFQ, "read", OPEN, A),
    ("anon quotes closed", ANONYMOUS, RFQ, "read", CLOSED, "401"),
    ("anon trade", ANONYMOUS, RFQ, "trade", OPEN, "401"),
    ("anon watchlist", ANONYMOUS, WATCHLIST, "read", OPEN, A),
    ("anon watchlist change", ANONYMOUS, WATCHLIST, "admin", OPEN, "401"),
    ("anon stats", ANONYMOUS, STATS, "read", OPEN, A),
    ("anon stats detail open", ANONYMOUS, STATS, "detail", OPEN, A),
    ("anon stats closed", ANONYMOUS, STATS, "read", CLOSED, "401"),
    ("anon stats detail closed", ANONYMOUS, STATS, "detail", CLOSED, "401"),
    ("anon keys", ANONYMOUS, KEYS, "admin", OPEN, "401"),
    ("anon subscribe gate", ANONYMOUS, CHANNELS, "read", OPEN, A),
    ("anon subscribe gate closed", ANONYMOUS, CHANNELS, "read", CLOSED, "401"),
    # read key
    ("read ticker closed", key("read"), TICKER, "read", CLOSED, A),
    ("read pg", key("read"), PG, "read", CLOSED, A),
    ("read pg admin-only", key("read"), PG, "read", PG_ADMIN_ONLY, F),
    ("read publish", key("read"), CHANNELS, "publish", OPEN, F),
    ("read trade", key("read"), RFQ, "trade", OPEN, F),
    ("read stats closed", key("read"), STATS, "read", CLOSED, A),
    ("read stats detail closed", key("read"), STATS, "detail", CLOSED, F),
    ("read watchlist change", key("read"), WATCHLIST, "admin", OPEN, F),
    ("read keys", key("read"), KEYS, "admin", OPEN, F),
    # scopes are additive: a key without read may do what anonymous may (item 18)
    ("publish ticker open", key("publish"), TICKER, "read", OPEN, A),
    ("publish ticker closed", key("publish"), TICKER, "read", CLOSED, F),
    ("publish watchlist open", key("publish"), WATCHLIST, "read", OPEN, A),
    ("publish pg", key("publish"), PG, "read", OPEN, F),
    ("publish publish", key("publish"), APP, "publish", CLOSED, A),
    ("rfq quotes closed", key("rfq"), RFQ, "read", CLOSED, A),
    ("rfq trade", key("rfq"), RFQ, "trade", CLOSED, A),
    ("rfq ticker closed", key("rfq"), TICKER, "read", CLOSED, F),
    # admin: everything
    ("admin pg admin-only", key("admin"), PG, "read", PG_ADMIN_ONLY, A),
    ("admin keys", key("admin"), KEYS, "admin", CLOSED, A),
    ("admin stats detail", key("admin"), STATS, "detail", CLOSED, A),
    ("admin publish", key("admin"), APP, "publish", CLOSED, A),
    # a seed 002 JWT: its pg channels, nothing else (item 3)
    ("jwt002 its pg", JWT_002, PG, "read", PG_ADMIN_ONLY, A),
    ("jwt002 other pg", JWT_002, PG_OTHER, "read", OPEN, F),
    ("jwt002 ticker", JWT_002, TICKER, "read", OPEN, F),
    ("jwt002 service", JWT_002, SERVICE, "read", OPEN, F),
    ("jwt002 gate", JWT_002, CHANNELS, "read", CLOSED, A),
    ("jwt002 publish", JWT_002, APP, "publish", OPEN, F),
    ("jwt002 quotes", JWT_002, RFQ, "read", OPEN, F),
    ("jwt002 watchlist", JWT_002, WATCHLIST, "read", OPEN, F),
    ("jwt002 stats", JWT_002, STATS, "read", OPEN, F),
    # a JWT whose scopes are honoured (auth.jwt_scopes) stands for a key of those scopes
    ("jwt scoped ticker", JWT_SCOPED, TICKER, "read", CLOSED, A),
    ("jwt scoped publish", JWT_SCOPED, APP, "publish", CLOSED, A),
    ("jwt scoped keys", JWT_SCOPED, KEYS, "admin", CLOSED, F),
]


@pytest.mark.parametrize(("principal", "target", "action", "policy", "expected"),
                         [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_authorize_table(principal: Principal, target: Channel | str, action: Action,
                         policy: Policy, expected: str) -> None:
    denied = authorize(principal, target, action, policy)
    if expected == A:
        assert denied is None
    else:
        assert isinstance(denied, Denied) and denied.reason
        assert denied.forbidden is (expected == F)


def test_check_raises_the_wire_codes() -> None:
    with pytest.raises(AuthError) as unauthorized:
        check(ANONYMOUS, PG, "read", OPEN)
    assert unauthorized.value.code == "UNAUTHORIZED"
    with pytest.raises(AuthError) as forbidden:
        check(key("read"), KEYS, "admin", OPEN)
    assert forbidden.value.code == "FORBIDDEN"
    check(key("admin"), KEYS, "admin", OPEN)


SRC = Path(__file__).resolve().parents[3] / "src" / "cryptowire"
#: What deciding on one's own looks like: reading scopes, or asking whether a principal is
#: anonymous, to allow or refuse something.
_DECIDING = re.compile(r"\.scopes\b|\bhas_scope\(|\brequire\(|\.anonymous\b|"
                       r"\"pg\" not in|ANONYMOUS_READER")
#: The only places allowed to: the rule itself, the principal's definition, and the lines
#: that report a key's scopes or create keys (not decisions).
_ALLOWED = {
    "core/access.py": None,
    "core/session.py": None,
    "server/auth.py": {"scopes=record.scopes"},
    "server/ws_native.py": {'"scopes": sorted(principal.scopes)'},
    "server/rest.py": {'"scopes": sorted(key.scopes)'},
    # the 000 dialect's protocol: its first frame must be a key (authentication, not a
    # permission), and connection counting tells keys from addresses
    "server/ws_swaps.py": {"if session.principal.anonymous:"},
    "server/connection.py": {"session.principal.key_id"},
    "store/keys.py": None,
    "store/sql.py": None,
}


def test_no_module_decides_access_on_its_own() -> None:
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith(("client/", "cli/")):  # the client library and the key CLI
            continue
        allowed = _ALLOWED.get(rel, set())
        if allowed is None:
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if _DECIDING.search(line) and not any(ok in line for ok in allowed):
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == [], "decide through core.access.authorize:\n" + "\n".join(offenders)
