"""Secrets never reach a log line: a filter for the CLI's log handlers.

Credentials travel in request lines and headers (``?api_key=``, ``X-API-Key``,
``Authorization: Bearer``, ``/pg/<JWT>``), and libraries log those: aiohttp logs the first
bytes of a request line or header over 8,190 bytes with the traceback of its ``LineTooLong``.
:class:`SecretRedactor` rewrites every record that reaches a handler it is installed on
(message, arguments, traceback text) so that API keys keep only their public prefix
(``cw_ab12cd34_***``, as ``keys list`` shows it) and tokens and header values read ``***``.
The CLI installs it on its handlers (:func:`install`): a filter on a handler sees the
records of every logger, aiohttp's included, which a filter on a logger would not.

:func:`redact_url` is the one way a configured URL (an RPC endpoint with a provider key in
its path) is shown: in ``config show``, ``/metrics``, ``/stats`` and log lines;
:func:`hide_password` the one way a database or Redis URL is (its password as ``***``).
A low-level module: it imports nothing from cryptowire.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit, urlunsplit

#: A cryptowire API key (``cw_<8 prefix chars>_<secret>``), possibly cut short.
_KEY = re.compile(r"\bcw_([a-z0-9]{8})_[A-Za-z0-9_-]+")
#: Anything else shaped like one (a malformed or truncated key), but not a bare prefix
#: (``cw_ab12cd34``: public, as ``keys list`` shows it) nor one already redacted.
_KEYISH = re.compile(r"\bcw_(?![a-z0-9]{8}(?:_\*\*\*|(?![A-Za-z0-9_-])))[A-Za-z0-9_-]{6,}")
#: A JWT (base64url of ``{"``... is ``eyJ``), whole or cut short.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){0,2}")
#: Credential query parameters.
_QUERY = re.compile(r"(?i)\b((?:api_key|apikey|access_token|token|jwt)=)[^&\s'\"\\]+")
#: Credential headers, however they are quoted (``X-API-Key: v``, ``'authorization': 'v'``).
_HEADER = re.compile(r"(?i)\b(x-api-key|authorization)(['\"]?\s*[:=]\s*['\"]?)"
                     r"(?>(?:(bearer|basic|token)\s+)?)(?!cw_[a-z0-9]{8}_\*\*\*|eyJ\*\*\*)"
                     r"[^\s,'\"\\]+")
#: An authorization scheme and its credentials on their own (a header value without name);
#: keys and JWTs there are left to their own patterns (which keep a key's public prefix).
_SCHEME = re.compile(r"(?i)\b(bearer|basic)\s+(?!cw_|eyJ)[A-Za-z0-9._~+/=-]{8,}")


def _header(match: re.Match[str]) -> str:
    scheme = f"{match.group(3)} " if match.group(3) else ""
    return f"{match.group(1)}{match.group(2)}{scheme}***"


def redact(text: str) -> str:
    """``text`` with every credential it carries replaced."""
    if "cw_" in text:
        text = _KEY.sub(r"cw_\1_***", text)
        text = _KEYISH.sub("cw_***", text)
    if "eyJ" in text:
        text = _JWT.sub("eyJ***", text)
    text = _QUERY.sub(r"\1***", text)
    text = _HEADER.sub(_header, text)
    return _SCHEME.sub(r"\1 ***", text)


class SecretRedactor(logging.Filter):
    """Rewrites a record's message and traceback text with :func:`redact` (never drops it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logging module's to report
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # What the handler's Formatter would render, rendered here to be cleaned first.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Put a :class:`SecretRedactor` on every handler of ``logger`` (default: the root)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, SecretRedactor) for f in handler.filters):
            handler.addFilter(SecretRedactor())


REDACTED = "***"


def redact_url(url: str) -> str:
    """``url`` as it may be shown to anyone: ``scheme://host[:port]``, followed by ``/***``
    when the URL has anything else (user-info, a path other than ``/``, a query or a
    fragment), which is where providers put keys.

    ``https://eth-mainnet.g.alchemy.com/v2/KEY`` -> ``https://eth-mainnet.g.alchemy.com/***``,
    ``https://rpc.example/?apikey=KEY`` -> ``https://rpc.example/***``,
    ``https://user:pass@rpc.example:8545`` -> ``https://rpc.example:8545/***``,
    ``https://eth.llamarpc.com/`` -> ``https://eth.llamarpc.com``. Something that does not
    parse as ``scheme://host[:port]`` shows as ``***`` only. Idempotent: a redacted URL
    redacts to itself. The host name itself is kept (a key in a subdomain would show).
    """
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number, a malformed IPv6 literal...
        return REDACTED
    if not parts.scheme or not host:
        return REDACTED
    if ":" in host:
        host = f"[{host}]"
    shown = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    hidden = ("@" in parts.netloc or parts.path not in ("", "/") or parts.query
              or parts.fragment)
    return shown + ("/" + REDACTED if hidden else "")


def hide_password(url: str) -> str:
    """``url`` with the password of its user-info replaced by ``***``
    (``postgresql://app:***@db/cw``); other URLs unchanged."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
