"""Credentials: where a key may come from, and the scope checks.

A key is accepted from the ``X-API-Key`` header, the ``api_key`` query parameter,
``Authorization: Bearer <key>``, or later the native ``auth`` op. Keys are verified against
their SHA-256 hash in the store (constant-time compare); the plaintext is never logged.
"""

from __future__ import annotations

from aiohttp import web

from cryptowire.core.node import Node
from cryptowire.core.session import ANONYMOUS, Principal
from cryptowire.errors import AuthError
from cryptowire.server.context import NODE

ADMIN = "admin"


def request_key(request: web.Request) -> str | None:
    """The API key presented on an HTTP or upgrade request, if any."""
    key = request.headers.get("X-API-Key") or request.query.get("api_key")
    if key:
        return key
    auth = request.headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


#: The principal of a keyless session where anonymous reading is allowed.
ANONYMOUS_READER = Principal(scopes=frozenset({"read"}))

async def principal_for(node: Node, key: str | None) -> Principal:
    """Resolve ``key`` to a principal; anonymous when ``key`` is ``None``.

    Raises :class:`AuthError` (``UNAUTHORIZED``) for an unknown, malformed or revoked key.
    """
    if key is None:  # shared instances: Principal is immutable
        return ANONYMOUS_READER if node.settings.server.anonymous_read else ANONYMOUS
    if _looks_like_jwt(key):
        return _jwt_principal(node, key)
    assert node.store is not None
    record = await node.store.verify_key(key)
    if record is None:
        raise AuthError("Invalid or revoked API key.")
    return Principal(key_id=record.id, name=record.name, scopes=record.scopes)


def _looks_like_jwt(value: str) -> bool:
    return not value.startswith("cw_") and value.count(".") == 2


def _jwt_principal(node: Node, token: str) -> Principal:
    """An HS256 JWT signed with ``auth.jwt_secret`` stands for a key: claim ``scopes``
    (default ``["read"]``), ``sub`` names it; ``exp`` is checked when it is presented."""
    import jwt

    from cryptowire.store.keys import VALID_SCOPES

    secret = node.settings.auth.jwt_secret
    if secret is None:
        raise AuthError("A JWT was given but this hub has no auth.jwt_secret; use an API key.")
    try:
        claims = jwt.decode(token, secret.get_secret_value(), algorithms=["HS256"],
                            options={"verify_aud": False})
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("JWT expired.") from exc
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"Invalid JWT: {exc}") from exc
    scopes = claims.get("scopes", ["read"])
    if not isinstance(scopes, list) or not set(scopes) <= VALID_SCOPES:
        raise AuthError(f"JWT claim 'scopes' must be a list of {', '.join(sorted(VALID_SCOPES))}.")
    sub = str(claims.get("sub", "jwt"))[:100]
    return Principal(key_id=f"jwt:{sub}", name=sub, scopes=frozenset(scopes))


def has_scope(principal: Principal, scope: str) -> bool:
    return ADMIN in principal.scopes or scope in principal.scopes


def require(principal: Principal, scope: str) -> None:
    if not has_scope(principal, scope):
        if principal.anonymous:
            raise AuthError(f"This needs an API key with the '{scope}' scope.")
        raise AuthError(f"Key '{principal.name}' lacks the '{scope}' scope.", forbidden=True)


async def rest_principal(request: web.Request, scope: str) -> Principal:
    """Authenticate a REST request and check ``scope``."""
    node = request.app[NODE]
    principal = await principal_for(node, request_key(request))
    require(principal, scope)
    return principal
