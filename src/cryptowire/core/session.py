"""A client connection as the core sees it (:class:`Session`), who is on it
(:class:`Principal`), and the two seams to the outside: the ``Transport`` it writes to and the
dialect's ``Encoder``. A session is a plain record with no link to the hub or the fan-out:
what it sends and when it closes are decided by the fan-out (:mod:`cryptowire.core.fanout`),
which callers hand the session to (``fanout.send(session, frame)``, ``fanout.flush(session)``,
``fanout.close(session, code, reason)``)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from cryptowire.events import Publication


class Transport(Protocol):
    """What the hub needs of a connection: asyncio's ``WriteTransport`` subset."""

    def write(self, data: bytes) -> None: ...

    def get_write_buffer_size(self) -> int: ...

    def is_closing(self) -> bool: ...


class Encoder(Protocol):
    """A dialect's publication framer: the full wire frame for a publication, or ``None``."""

    name: str

    def frame_publication(self, pub: Publication) -> bytes | None: ...


@dataclass(slots=True, frozen=True)
class Principal:
    """Who is on a session: an API key (id + scopes), a JWT, or anonymous. What each may
    do is decided by :func:`cryptowire.core.access.authorize` alone."""

    key_id: str | None = None
    name: str = "anonymous"
    scopes: frozenset[str] = frozenset()
    #: The ``pg:`` channel names a JWT's ``channels`` claim grants (``None``: not a token
    #: of that shape).
    channels: frozenset[str] | None = None

    @property
    def anonymous(self) -> bool:
        return self.key_id is None


#: The principal of a session that presented no key (immutable, so one for all of them).
ANONYMOUS = Principal()

_session_ids = itertools.count(1)


class Group:
    """The live subscribers of one channel in one dialect, and the group's frames of the
    current tick (see the module docstring: *solo* and *shared* sessions)."""

    __slots__ = ("solo", "shared", "frames", "size", "queued")

    def __init__(self) -> None:
        self.solo: set[Session] = set()
        self.shared: set[Session] = set()
        self.frames: list[bytes] = []
        self.size = 0
        self.queued = False  # in the hub's list of groups to write at the end of the tick

    def __len__(self) -> int:
        return len(self.solo) + len(self.shared)

    def __contains__(self, session: object) -> bool:
        return session in self.solo or session in self.shared


class Session:
    """One client connection as the core sees it: a transport, a dialect, subscriptions.

    A record: it refers to no hub or fan-out (send, flush and close through the fan-out).
    ``on_close`` is data, the socket's own closer (called once, by the fan-out)."""

    __slots__ = (
        "id", "transport", "encoder", "principal", "channels", "pending", "pending_bytes",
        "closed", "on_close", "remote", "connected_ms", "groups", "solo_in",
        "inbound", "seen", "buffered",
        "__weakref__",
    )

    def __init__(
        self, transport: Transport, encoder: Encoder,
        close: Callable[[Session, int, str], None], *, principal: Principal | None = None,
        remote: str = "", connected_ms: int = 0,
    ) -> None:
        self.id = next(_session_ids)
        self.transport = transport
        self.encoder = encoder
        self.principal = principal or ANONYMOUS
        self.channels: set[str] = set()
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.closed = False
        self.on_close = close
        self.remote = remote
        self.connected_ms = connected_ms
        #: How many groups this session is live in, and the group when that is exactly one.
        self.groups = 0
        self.solo_in: Group | None = None
        #: The dialect's inbound limiter (a rate bucket), kept here rather than in a map.
        self.inbound: object = None
        #: Event-loop time of the last frame from the client (pongs included), for liveness.
        self.seen = 0.0
        #: Bytes its transport held after the last write (for the node-wide bound).
        self.buffered = 0
