"""What every socket dialect gives the one socket handler (server/connection.py): its
publication framer and the frames for the events every socket has. Sans-I/O: a dialect
builds bytes; the server decides when to send them and closes sockets.

Each dialect module (native, mudrex003, services004, swaps000, rfq001, pg002) has one
object satisfying :class:`Dialect`. Its :meth:`Dialect.parse` turns a client's text frame
into that dialect's command record, or into :class:`Invalid` carrying the whole reply frame
(so the server never builds a protocol error itself) or :class:`Ignored`; the server
dispatches on the command's type. Per-session dialect state is the plain object
:meth:`Dialect.new_state` returns (``None`` where the dialect keeps none). Fed and asserted
in ``tests/unit/wire``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # the hub is not loaded by a sans-I/O module
    from cryptowire.core.session import Encoder


@dataclass(frozen=True, slots=True)
class Invalid:
    """A client frame the dialect refuses: ``frame`` is the whole reply to send as is."""

    frame: bytes


@dataclass(frozen=True, slots=True)
class Ignored:
    """A client frame the dialect ignores (nothing to do, nothing to answer)."""


#: The one :class:`Ignored` command.
IGNORED = Ignored()


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

    def new_state(self) -> Any:
        """A new session's dialect state, a plain object (``None`` where there is none)."""
        ...

    def parse(self, text: str, state: Any) -> object:
        """The command a client's text frame is, given the session's dialect state (which
        it may advance): the dialect's own command record, :class:`Invalid` or
        :class:`Ignored`."""
        ...
