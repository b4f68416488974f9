"""Where a new subscription's stream starts (PROTOCOLS.md 1 recovery, 4.2 latest value).

For each channel a subscribe takes, :func:`plan_start` asks the broker where the session's
frames begin, in this order:

1. a ``recover`` that the history still covers: the missed publications, replayed (no
   snapshot: the client has the state before them);
2. a stateful channel (ticker, kline, book) whose state is known: one ``snapshot``
   publication at the offset of the last publication it includes, and the live frames
   after that offset (a failed ``recover`` lands here too, ``recovered: false``);
3. otherwise the stream as it stands: from the position read when the subscribe began
   (with what was published since), or, when that cannot be read, from the top.

The hub sends the reply, then the snapshot, the backlog and the publications it held
meanwhile, each once and in offset order (:mod:`cryptowire.core.hub`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from cryptowire.core.channels import Channel
from cryptowire.events import Publication


class Broker(Protocol):
    """What the hub needs of a broker (:class:`cryptowire.bus.base.Broker` provides it)."""

    async def subscribe(self, channel: str) -> None: ...

    async def unsubscribe(self, channel: str) -> None: ...

    async def position(self, channel: str) -> tuple[str, int]: ...

    async def history_since(
        self, channel: str, epoch: str, offset: int
    ) -> list[Publication] | None: ...

    async def state(self, channel: str) -> Publication | None: ...


@dataclass(slots=True)
class SubscribeResult:
    """What a subscribe produced, for the dialect to put into its reply."""

    accepted: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)
    positions: dict[str, tuple[str, int]] = field(default_factory=dict)
    recovered: dict[str, bool] = field(default_factory=dict)


@dataclass(slots=True)
class Start:
    """Where one channel's frames start for one session: after ``(epoch, offset)``, with
    ``snapshot`` (the state at ``offset``) first if any, then ``backlog``."""

    epoch: str
    offset: int
    backlog: list[Publication] = field(default_factory=list)
    snapshot: Publication | None = None
    #: The answer to the session's ``recover`` of the channel (``None``: it asked none).
    recovered: bool | None = None


async def plan_start(broker: Broker, channel: Channel, recover: tuple[str, int] | None,
                     origin: tuple[str, int], *, conflated: bool = False) -> Start:
    """Where ``channel`` starts (see the module docstring); ``origin`` is the position read
    when the subscribe began, ``recover`` what the client asked to resume from.

    A ``conflated`` stateful channel catches up with the snapshot even when the recovery
    succeeds (its frames are snapshots anyway): ``recovered`` still says whether it did."""
    name = channel.name
    if recover is not None:
        missed = await broker.history_since(name, *recover)
        if missed is not None:
            snap = await broker.state(name) if conflated and channel.stateful else None
            if snap is not None:
                return Start(snap.epoch, snap.offset, snapshot=snap, recovered=True)
            return Start(recover[0], recover[1], missed, recovered=True)
    if channel.stateful:
        # Read after the node subscribed to the channel: every publication past this
        # state's offset reaches the hub live, so none is missed between the two.
        snap = await broker.state(name)
        if snap is not None:
            return Start(snap.epoch, snap.offset, snapshot=snap,
                         recovered=None if recover is None else False)
    if recover is None:
        missed = await broker.history_since(name, *origin)
        if missed is not None:
            return Start(origin[0], origin[1], missed)
    epoch, top = await broker.position(name)  # nothing to replay: from the top
    return Start(epoch, top, recovered=None if recover is None else False)
