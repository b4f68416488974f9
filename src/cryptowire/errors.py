"""The exception tree of cryptowire.

::

    CryptowireError
     ├── ConfigError (ValueError)          settings that cannot work
     ├── ChannelError (ValueError)         a channel name the grammar refuses; ``reason`` says why
     ├── ProtocolError (ValueError)        a client frame that cannot be understood; ``code`` is
     │                                     the wire error code (``INVALID_JSON``, ``UNKNOWN_OP``...)
     ├── BookError (ValueError)            an order book level that is not two decimal strings
     │                                     (``books.py``; the message is not applied)
     ├── AuthError (PermissionError)       no/wrong key (``UNAUTHORIZED``), scope (``FORBIDDEN``)
     ├── SourceError                       an upstream refused or failed (reason for the client)
     ├── StoreError                        the store failed or refused (duplicate, not found)
     └── BusError                          the bus (Redis) is unreachable or refused
          └── FencedError                  a publish with a lost lease's stale fence

Adapters re-raise foreign exceptions as one of these with ``raise ... from exc`` so a client
always gets a reason it can act on.
"""

from __future__ import annotations


class CryptowireError(Exception):
    """Root of every error cryptowire raises on purpose."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(CryptowireError, ValueError):
    """The settings cannot work (for example a JWT secret shorter than 32 characters)."""


class ChannelError(CryptowireError, ValueError):
    """A channel name was refused; ``message`` says what to send instead."""

    code = "INVALID_ARGS"

    def __init__(self, arg: str, reason: str) -> None:
        super().__init__(reason)
        self.arg = arg
        self.reason = reason


class ProtocolError(CryptowireError, ValueError):
    """A client frame could not be understood."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class AuthError(CryptowireError, PermissionError):
    """Missing or wrong credentials (``UNAUTHORIZED``) or a missing scope (``FORBIDDEN``)."""

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.code = "FORBIDDEN" if forbidden else "UNAUTHORIZED"


class SourceError(CryptowireError):
    """An upstream source refused a topic or failed."""

    code = "INVALID_ARGS"


class StoreError(CryptowireError):
    """The store refused an operation (duplicate, not found) or failed.

    When the database itself failed, ``detail`` has the driver's words: ``str()`` (what the
    server logs) shows them, ``message`` (what a client is told) never does.
    """

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail

    def __str__(self) -> str:
        return self.message if self.detail is None else f"{self.message}: {self.detail}"


class BusError(CryptowireError):
    """The bus (Redis) is unreachable or refused an operation."""


class FencedError(BusError):
    """A publish carried a stale fencing token: its lease was lost; nothing was published."""
