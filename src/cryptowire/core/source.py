"""The seam between the core and every source.

A source turns an upstream into :class:`~cryptowire.events.Event` objects and hands them to
``publish``. It never knows about sessions. The core asks it for channels on demand
(:meth:`Source.subscribe` when the first client wants one, :meth:`Source.unsubscribe` after
the last one left) and reads :meth:`Source.status` for ``/health`` and ``/stats``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from cryptowire.core.channels import Channel
from cryptowire.events import Event

PublishFn = Callable[[Event], Awaitable[Any]]
SourceState = Literal["starting", "up", "connecting", "down", "stopped"]


@dataclass(slots=True)
class SourceStatus:
    """What ``/health`` and ``/stats`` report for one source."""

    name: str
    state: SourceState
    detail: str = ""
    demo: bool = False
    last_message_ms: int | None = None
    messages: int = 0
    errors: int = 0
    #: Upstream messages refused one by one (not JSON, cannot be encoded), never published.
    rejected: int = 0
    reconnects: int = 0
    topics: int = 0
    #: Order books re-synchronised after a break, by cause (``sequence``, ``crossed``...):
    #: ``cryptowire_book_resyncs_total{source,reason}``.
    book_resyncs: dict[str, int] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.state == "up"


@runtime_checkable
class Source(Protocol):
    """One producer of events for some channel kinds."""

    name: str
    #: Channel kinds (``ticker``, ``swap``...) this source serves.
    kinds: frozenset[str]

    async def start(self, publish: PublishFn) -> None:
        """Start background work; return once started (not when finished)."""

    async def stop(self) -> None:
        """Stop every task and connection the source owns."""

    async def subscribe(self, channel: Channel) -> None:
        """Start delivering ``channel``; raise :class:`~cryptowire.errors.SourceError` with a
        client-facing reason to refuse it (unknown symbol, upstream rejection)."""

    async def unsubscribe(self, channel: Channel) -> None:
        """Stop delivering ``channel`` (the last subscriber left)."""

    def status(self) -> SourceStatus:
        """Current state for health and stats."""


def venues_of(source: object) -> frozenset[str] | None:
    """The market venues (``linear``, ``binance``...) a source declares in an optional
    ``venues`` attribute; ``None`` when it declares none (it serves its kinds on every venue,
    like the demo source, or has no venues at all)."""
    venues = getattr(source, "venues", None)
    return frozenset(venues) if venues is not None else None


def serves(source: Source, channel: Channel) -> bool:
    """Whether ``source`` can serve ``channel``: its kind, and its venue when the source
    declares venues."""
    if channel.kind not in source.kinds:
        return False
    venues = venues_of(source)
    return venues is None or channel.venue is None or channel.venue in venues


def pick(sources: Iterable[Source], channel: Channel) -> Source | None:
    """The source that serves ``channel``: for a channel with a venue, the first source
    declaring that venue, else the first serving the kind on every venue; otherwise the first
    serving the kind (earlier sources win)."""
    fallback: Source | None = None
    for source in sources:
        if not serves(source, channel):
            continue
        if channel.venue is None or venues_of(source) is not None:
            return source
        fallback = fallback or source
    return fallback
