"""Who a :class:`~.connection.Connection` reports to (the :class:`~.source.ExchangeSource`)."""

from __future__ import annotations

from typing import Protocol, TypeVar

from cryptowire.sources.exchange.codec import Data

#: The connection type (:class:`~.connection.Connection`; generic to keep imports one-way).
C = TypeVar("C", contravariant=True)


class Sink(Protocol[C]):
    """Who the connection reports to (the :class:`~.source.ExchangeSource`)."""

    async def opened(self, conn: C, streams: list[str], lost: dict[str, int],
                     reason: str) -> None:
        """A socket is up and about to (re)subscribe ``streams``; ``lost`` (stream key ->
        ms of the last frame before the loss) owe their channels a gap, published now."""

    async def data(self, conn: C, item: Data) -> None:
        """A data frame of a desired stream (exceptions count as a malformed frame)."""

    async def refused(self, conn: C, stream: str, reason: str) -> None:
        """The venue refused ``stream`` (already dropped from this socket)."""

    async def dropped(self, conn: C, reason: str) -> None:
        """The socket is gone (gaps follow on reconnect); may set ``conn.retired`` to end
        the supervision instead (a rotation took its streams over)."""

    async def expiring(self, conn: C) -> None:
        """The socket reached ``Limits.rotate_after_s``: rotate it (without awaiting it)."""
