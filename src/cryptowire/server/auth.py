"""Credentials: where a key may come from, and who it stands for.

A key is accepted from the ``X-API-Key`` header, the ``api_key`` query parameter,
``Authorization: Bearer <key>``, or later the native ``auth`` op. Keys are verified against
their SHA-256 hash in the store (constant-time compare); the plaintext is never logged.
"""

from __future__ import annotations

from aiohttp import web

from cryptowire.core.access import Action, check
from cryptowire.core.channels import Channel
from cryptowire.core.session import ANONYMOUS, Principal
from cryptowire.errors import AuthError
from cryptowire.server.context import NODE
from cryptowire.server.node import ServerNode


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


async def principal_for(node: ServerNode, key: str | None) -> Principal:
    """Resolve ``key`` (an API key or a Bearer JWT) to a principal; anonymous when ``key``
    is ``None``. What the principal may do is :func:`~cryptowire.core.access.authorize`'s.

    Raises :class:`AuthError` (``UNAUTHORIZED``) for an unknown, malformed or revoked key.
    """
    if key is None:  # one shared instance: Principal is immutable
        return ANONYMOUS
    if _looks_like_jwt(key):
        return _jwt_principal(node, key)
    assert node.store is not None
    record = await node.store.verify_key(key)
    if record is None:
        raise AuthError("Invalid or revoked API key.")
    return Principal(key_id=record.id, name=record.name, scopes=record.scopes)


def _looks_like_jwt(value: str) -> bool:
    return not value.startswith("cw_") and value.count(".") == 2


def _jwt_principal(node: ServerNode, token: str) -> Principal:
    """An HS256 JWT signed with ``auth.jwt_secret``, presented as a Bearer key (or by the
    ``auth`` op). Its claims bound it: ``mode``/``channels`` (the seed 002 shape) grant
    those ``pg:`` channels; ``scopes`` count only with ``auth.jwt_scopes``; without ``exp``
    it is refused unless ``auth.jwt_require_exp`` is off (``/pg/<JWT>`` sockets verify
    their token themselves and accept one without ``exp``)."""
    import jwt

    from cryptowire.store.keys import VALID_SCOPES

    cfg = node.settings.auth
    if cfg.jwt_secret is None:
        raise AuthError("A JWT was given but this hub has no auth.jwt_secret; use an API key.")
    try:
        claims = jwt.decode(token, cfg.jwt_secret.get_secret_value(), algorithms=["HS256"],
                            options={"verify_aud": False})
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("JWT expired.") from exc
    except jwt.InvalidTokenError as exc:
        raise AuthError(f"Invalid JWT: {exc}") from exc
    if cfg.jwt_require_exp and "exp" not in claims:
        raise AuthError("JWT without 'exp': such tokens are accepted on /pg/<JWT> sockets "
                        "only (auth.jwt_require_exp).")
    channels: frozenset[str] | None = None
    if "mode" in claims or "channels" in claims or "channel" in claims:
        mode = claims.get("mode")
        raw = claims.get("channels", claims.get("channel"))
        names = [raw] if isinstance(raw, str) else raw
        if not isinstance(mode, str) or "r" not in mode or not isinstance(names, list) \
                or not all(isinstance(c, str) for c in names):
            raise AuthError("JWT claims 'mode' (must allow reading) and 'channels' (a list "
                            "of pg channel names) are malformed.")
        channels = frozenset(names)
    scopes: frozenset[str] = frozenset()
    if cfg.jwt_scopes:
        raw_scopes = claims.get("scopes", ["read"] if channels is None else [])
        if not isinstance(raw_scopes, list) or not set(raw_scopes) <= VALID_SCOPES:
            raise AuthError("JWT claim 'scopes' must be a list of "
                            f"{', '.join(sorted(VALID_SCOPES))}.")
        scopes = frozenset(raw_scopes)
    elif channels is None:
        raise AuthError("This JWT names no channels ('mode', 'channels' claims) and JWT "
                        "scopes are not honoured on this hub (auth.jwt_scopes); use an API key.")
    sub = str(claims.get("sub", "jwt"))[:100]
    return Principal(key_id=f"jwt:{sub}", name=sub, scopes=scopes, channels=channels)


async def rest_principal(request: web.Request, target: Channel | str,
                         action: Action) -> Principal:
    """Authenticate a REST request and :func:`~cryptowire.core.access.check` ``action`` on
    ``target``."""
    node = request.app[NODE]
    principal = await principal_for(node, request_key(request))
    check(principal, target, action, node.policy)
    return principal
