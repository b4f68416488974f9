"""What every socket dialect gives the one socket handler (server/connection.py): its
publication framer and the frames for the events every socket has. Sans-I/O: a dialect
builds bytes; the server decides when to send them and closes sockets.

Each dialect module (native, mudrex003, services004, swaps000, rfq001, pg002) has one
object satisfying :class:`Dialect`; the parsing of client frames and the replies to them
stay functions of that module, fed and asserted in ``tests/unit/wire``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # the hub is not loaded by a sans-I/O module
    from cryptowire.core.session import Encoder


class Dialect(Protocol):
    """The frames a socket handler needs of a dialect, whatever the dialect."""

    #: The dialect's name (``native``, ``services004``...), as in the encoder.
    name: str

    def encoder(self) -> Encoder:
        """The publication framer for this dialect's sessions (one per handler)."""
        ...

    def refused(self, code: str, message: str) -> bytes | None:
        """The last frame before the server refuses a session (``code``: the wire error code,
        ``UNAUTHORIZED`` or ``LIMIT_EXCEEDED``; the close code follows), or ``None``."""
        ...

    def no_key(self, timeout_s: float) -> bytes | None:
        """The last frame before a socket that had to present a key and did not within
        ``timeout_s`` is closed with 4001, or ``None``."""
        ...

    def dropped(self, rate: int) -> bytes | None:
        """The reply to a client message over the inbound rate (dropped), or ``None``."""
        ...

    def flooding(self) -> bytes | None:
        """The last frame before a flooding client is closed with 4009, or ``None``."""
        ...

    def binary(self) -> bytes | None:
        """The reply to a binary frame, or ``None`` to ignore it."""
        ...
