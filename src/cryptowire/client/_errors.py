"""The client's exceptions, grafted onto cryptowire's tree (``cryptowire.errors``).

::

    CryptowireError
     ├── AuthError (PermissionError)
     │    └── AuthRejected            the hub refused the key: auth reply UNAUTHORIZED/FORBIDDEN,
     │                                or close 4001 (unauthorized) / 4010 (revoked). Never retried.
     └── ClientError
          ├── ConnectError (ConnectionError)  no session within connect_timeout_s, or the
          │                                   upgrade was refused (HTTP 4xx: wrong URL/path)
          ├── ConnectionLost (ConnectionError) the connection dropped before a non-idempotent
          │                                    request (publish) was answered
          ├── RequestTimeout (TimeoutError)   no reply within request_timeout_s
          ├── RequestError                    the hub answered {"op":"error"}; ``code`` is the
          │                                   wire code (INVALID_ARGS, LIMIT_EXCEEDED...)
          └── SubscribeError (ValueError)     every channel of a subscribe was rejected;
                                              ``rejected`` holds each reason
"""

from __future__ import annotations

from cryptowire.client._messages import Rejected
from cryptowire.errors import AuthError, CryptowireError


class ClientError(CryptowireError):
    """Root of the errors only the client raises."""


class AuthRejected(AuthError):
    """The hub refused the API key (or it was revoked); reconnecting would not help.

    ``close_code`` is 4001 or 4010 when the hub closed the connection, else ``None``.
    """

    def __init__(self, message: str, *, close_code: int | None = None,
                 forbidden: bool = False) -> None:
        super().__init__(message, forbidden=forbidden)
        self.close_code = close_code


class ConnectError(ClientError, ConnectionError):
    """No working connection could be made."""


class ConnectionLost(ClientError, ConnectionError):
    """The connection dropped before the hub answered a request that is not safe to resend."""


class RequestTimeout(ClientError, TimeoutError):
    """The hub did not answer a request in time."""


class RequestError(ClientError):
    """The hub answered a request with ``{"op": "error", "code": ..., "message": ...}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.reason = message


class SubscribeError(ClientError, ValueError):
    """Every channel of a subscribe was rejected."""

    def __init__(self, rejected: tuple[Rejected, ...]) -> None:
        reasons = "; ".join(f"{r.arg!r}: {r.reason}" for r in rejected)
        super().__init__(f"No channel could be subscribed. {reasons}")
        self.rejected = rejected
