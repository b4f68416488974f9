"""Who may do what: the one authorization rule of every path (docs/security.md, "Access").

Every read and write of every dialect and REST endpoint asks :func:`authorize`; nothing
else decides. It is pure (no I/O): the principal was resolved from its key or token before,
and the two settings it depends on come in as a :class:`Policy`.

The rule, in short:

- an ``admin`` key may do everything;
- *public* reads (market, chain, service and app channels, the watchlist, the RFQ quotes,
  aggregate stats) are open to anonymous clients when ``server.anonymous_read`` is on, and
  to every API key whatever its scopes (scopes add to what anonymous may, never take away),
  and to keys with ``read`` always;
- ``pg:`` channels carry an application's own rows: never anonymous; a JWT reads the ones
  its ``channels`` claim names; an API key with ``read`` reads them when
  ``auth.pg_read_keys`` is on;
- a JWT of the seed 002 shape (claims ``mode``/``channels``, no honoured ``scopes``) reads
  those ``pg:`` channels and nothing else;
- ``publish`` needs the ``publish`` scope, accepting an RFQ quote the ``rfq`` scope, and
  changing the watchlist, keys or bindings, and the per-channel / per-client detail of the
  stats when anonymous reading is off, ``admin``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from cryptowire.core.channels import Channel
from cryptowire.core.session import Principal
from cryptowire.errors import AuthError

Action = Literal["read", "publish", "trade", "admin", "detail"]

#: Targets that are not one channel.
CHANNELS = "channels"  # "some channel": the gate of a subscribe op, publish to app: channels
RFQ = "rfq"            # the RFQ quotes (read) and accepting one (trade)
WATCHLIST = "tokens"   # the token watchlist: list (read), change (admin)
STATS = "stats"        # node statistics: aggregates (read), channel/client lists (detail)
KEYS = "keys"          # API keys and Telegram bindings (admin)

ADMIN = "admin"
READ = "read"


@dataclass(frozen=True, slots=True)
class Policy:
    """The settings the rule depends on (``server.anonymous_read``, ``auth.pg_read_keys``)."""

    anonymous_read: bool = True
    pg_read_keys: bool = True


@dataclass(frozen=True, slots=True)
class Denied:
    """Why not: ``forbidden`` is a valid credential without the right (403 / ``FORBIDDEN``);
    otherwise a key would help (401 / ``UNAUTHORIZED``)."""

    reason: str
    forbidden: bool


def _unkeyed(what: str, scope: str | None = None) -> Denied:
    key = f"an API key with the '{scope}' scope" if scope else "an API key"
    return Denied(f"{what} needs {key} (X-API-Key, ?api_key=, Bearer, or the auth op).",
                  forbidden=False)


def _bound(principal: Principal) -> bool:
    """A token that grants named pg: channels only (the seed 002 JWT)."""
    return principal.channels is not None and not principal.scopes


def _public(principal: Principal, policy: Policy) -> bool:
    """May ``principal`` do what anonymous reading allows (and a key with ``read``)?"""
    if principal.anonymous:
        return policy.anonymous_read
    if _bound(principal):
        return False
    return READ in principal.scopes or policy.anonymous_read


def _need(principal: Principal, scope: str, what: str) -> Denied | None:
    if scope in principal.scopes:
        return None
    if principal.anonymous:
        return _unkeyed(what, scope)
    return Denied(f"Key '{principal.name}' lacks the '{scope}' scope for {what}.", True)


def _read_public(principal: Principal, policy: Policy, what: str) -> Denied | None:
    if _public(principal, policy):
        return None
    if principal.anonymous:
        return _unkeyed(what)
    if _bound(principal):
        return Denied(f"This token reads only the pg: channels it names, not {what}.", True)
    return Denied(f"Key '{principal.name}' lacks the 'read' scope for {what}.", True)


def _read_pg(principal: Principal, channel: Channel, policy: Policy) -> Denied | None:
    if principal.channels is not None and channel.key in principal.channels:
        return None
    if READ in principal.scopes and policy.pg_read_keys:
        return None
    if principal.anonymous:
        return Denied("Postgres channels need an API key (send {\"op\":\"auth\",...}) or a "
                      "JWT naming the channel.", forbidden=False)
    if principal.channels is not None:
        return Denied(f"This token does not name '{channel.name}'.", True)
    if READ in principal.scopes:
        return Denied(f"'{channel.name}': Postgres channels are readable by admin keys and "
                      "JWTs naming them on this hub (auth.pg_read_keys = false).", True)
    return Denied(f"Key '{principal.name}' lacks the 'read' scope for '{channel.name}'.", True)


def authorize(principal: Principal, target: Channel | str, action: Action,
              policy: Policy) -> Denied | None:
    """``None`` when ``principal`` may do ``action`` on ``target``, else why not.

    ``target`` is a parsed channel or one of :data:`CHANNELS`, :data:`RFQ`,
    :data:`WATCHLIST`, :data:`STATS`, :data:`KEYS`.
    """
    if ADMIN in principal.scopes:
        return None
    if isinstance(target, Channel):
        if action == "read":
            if target.kind == "pg":
                return _read_pg(principal, target, policy)
            return _read_public(principal, policy, f"'{target.name}'")
        if action == "publish":
            return _need(principal, "publish", f"publishing to '{target.name}'")
        return _need(principal, ADMIN, f"'{action}' on '{target.name}'")
    if target == CHANNELS:
        if action == "read":  # some channel is readable: public ones, or named pg: ones
            if principal.channels or (READ in principal.scopes and policy.pg_read_keys):
                return None
            return _read_public(principal, policy, "Subscribing")
        if action == "publish":
            return _need(principal, "publish", "Publishing")
    elif target == RFQ:
        if action == "read":  # a key that may accept quotes may see them
            return None if "rfq" in principal.scopes \
                else _read_public(principal, policy, "Quotes")
        if action == "trade":
            return _need(principal, "rfq", "accepting a quote")
    elif target in (WATCHLIST, STATS):
        if action == "read":
            return _read_public(principal, policy, f"Reading {target}")
        if action == "detail" and policy.anonymous_read:
            # Where anonymous reading is on, the node's stats are as public as its data.
            return _read_public(principal, policy, f"Reading {target}")
    return _need(principal, ADMIN, f"'{action}' on {target}")


def check(principal: Principal, target: Channel | str, action: Action,
          policy: Policy) -> None:
    """:func:`authorize`, raising :class:`~cryptowire.errors.AuthError` when denied."""
    denied = authorize(principal, target, action, policy)
    if denied is not None:
        raise AuthError(denied.reason, forbidden=denied.forbidden)


def read_refusal(policy: Policy) -> Callable[[Principal, Channel], str | None]:
    """The hub's access check (``Hub.access``): why ``principal`` may not read ``channel``
    under ``policy``, or ``None``; called once per channel a session subscribes to."""

    def refusal(principal: Principal, channel: Channel) -> str | None:
        denied = authorize(principal, channel, "read", policy)
        return None if denied is None else denied.reason

    return refusal
