"""Secrets never reach a log line: a filter for the CLI's log handlers.

Credentials travel in request lines and headers (``?api_key=``, ``X-API-Key``,
``Authorization: Bearer``, ``/pg/<JWT>``), and libraries log those: aiohttp logs the first
bytes of a request line or header over 8,190 bytes with the traceback of its ``LineTooLong``.
:class:`SecretRedactor` rewrites every record that reaches a handler it is installed on
(message, arguments, traceback text) so that API keys keep only their public prefix
(``cw_ab12cd34_***``, as ``keys list`` shows it) and tokens and header values read ``***``.
The CLI installs it on its handlers (:func:`install`): a filter on a handler sees the
records of every logger, aiohttp's included, which a filter on a logger would not.
"""

from __future__ import annotations

import logging
import re

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
