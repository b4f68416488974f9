"""The order book side of the Bybit replay peer: one venue book per ``orderbook`` topic.

A :class:`BookFeed` is the venue's book of one topic, as Bybit keeps it (docs:
v5/websocket/public/orderbook): it starts from the fixture's snapshot and moves by the
fixture's deltas, one every ``interval_s`` while anyone is subscribed (its own clock, shared
by every subscriber, like the exchange's). A new subscription gets a ``snapshot`` of the
book as it is now (same ``u``, ``seq``, ``ts`` as the last frame that made it), then every
later ``delta``. At the end of the fixture it starts again with the fixture's snapshot,
``u`` still +1, ``ts`` and ``seq`` moved on (a snapshot mid-stream is what Bybit sends "if
there is a problem on Bybit's end").

A topic shallower than the recording (``orderbook.1.*`` from the 50-level fixture) is the
recorded book cut at its depth: its deltas are what changed in the cut (new or resized levels,
size ``"0"`` for a level that left it), as Bybit's shallower topics send.

The feed knows what it sent: :attr:`BookFeed.history` maps the ``ts`` of every frame that
made the venue's book to that book cut at the topic's depth (``(bids, asks)``, best first),
so a test compares a client's rebuilt book with the venue's at every step.

Faults (:meth:`BookFeed.inject`), applied to the next frame:

- ``"gap"``: one delta is lost (the book moves by it, nobody gets it): the next frame's ``u``
  jumps by two;
- ``"restart"``: the service restarts: the next change comes as a frame with ``u = 1``
  carrying the whole book (``type`` ``snapshot`` as Bybit documents it, or ``delta`` to test
  the ``u == 1`` rule alone), and ``u`` goes on from there;
- ``"crossed"``: a bad delta (a bid at the best ask) is sent with the next ``u``; the venue's
  book is not changed by it (the next snapshot is right again), the ``u`` after it goes on.

:meth:`BookFeed.burst` sends the next frames back to back: behind a fault they are the
frames already in flight when the client notices it (they reach it before its re-subscribe
reaches the venue), which it must drop.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from cryptowire.books import OrderBook

Levels = list[list[str]]
FAULTS = ("gap", "restart", "restart-delta", "crossed")


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _changes(old: Levels, new: Levels) -> Levels:
    """The delta from one side of a cut book to the next: new or resized levels, and size
    ``"0"`` for the levels gone (traded away or pushed out of the cut)."""
    was = {Decimal(price): size for price, size in old}
    now = {Decimal(price) for price, _ in new}
    out = [[price, size] for price, size in new if was.get(Decimal(price)) != size]
    return out + [[price, "0"] for price, _ in old if Decimal(price) not in now]


class BookFeed:
    """The venue book of one ``orderbook.<depth>.<symbol>`` topic; see the module docstring."""

    def __init__(self, topic: str, frames: list[dict[str, Any]], interval_s: float,
                 stalled: Callable[[], bool], *, cut: bool = False) -> None:
        assert frames and frames[0]["type"] == "snapshot", f"{topic}: no snapshot to start"
        self.topic = topic
        self.depth = int(topic.split(".")[1])
        self.frames = frames
        self.interval_s = interval_s
        self.stalled = stalled
        #: The frames are a deeper book's: send what changed in the cut at :attr:`depth`
        #: (as Bybit's shallower topics do), not the recorded levels.
        self.cut = cut
        self.book = OrderBook()
        self.history: dict[int, tuple[Levels, Levels]] = {}
        #: ``u`` of each frame in :attr:`history`, in order (a ``u = 1`` restart repeats some).
        self.u_history: list[tuple[int, int]] = []
        #: Every frame broadcast to the subscribers, faults included (not the snapshots each
        #: subscription starts with).
        self.sent: list[dict[str, Any]] = []
        self.subscribers: set[asyncio.Queue[str]] = set()
        self.faults: deque[str] = deque()
        self._burst = 0
        self._index = 0
        self._round = 0
        self._u_shift = 0
        self._extra = 0  # frames injected (crossed): later seq move on by as many
        self._span_ts = frames[-1]["ts"] - frames[0]["ts"] + 100
        self._span_seq = frames[-1]["data"]["seq"] - frames[0]["data"]["seq"] + 10
        self.ts = self.u = self.seq = self.cts = 0
        self._task: asyncio.Task[None] | None = None
        self._advance()  # the fixture's snapshot: the venue's book before anyone came

    # -- what tests read --------------------------------------------------------------------

    def levels(self) -> tuple[Levels, Levels]:
        return self.book.levels("bids", self.depth), self.book.levels("asks", self.depth)

    def book_at(self, ts: int, u: int | None = None) -> tuple[Levels, Levels]:
        """The venue's book (cut at depth) as the frame of ``ts`` left it; when no frame had
        that ``ts``, the latest one whose ``u`` is ``u``. KeyError if neither."""
        if ts in self.history:
            return self.history[ts]
        for frame_ts, frame_u in reversed(self.u_history):
            if frame_u == u:
                return self.history[frame_ts]
        raise KeyError(f"{self.topic}: the venue had no book at ts={ts} or u={u}")

    def inject(self, fault: str) -> None:
        assert fault in FAULTS, fault
        self.faults.append(fault)

    def burst(self, frames: int) -> None:
        """Produce the next ``frames`` frames with no pause between them."""
        self._burst = frames

    # -- serving -------------------------------------------------------------------------

    async def stream(self, send: Callable[[str], Awaitable[bool]]) -> None:
        """One subscription: the snapshot of now, then every frame the feed produces."""
        await asyncio.sleep(self.interval_s)  # the ack goes first, as on Bybit
        queue: asyncio.Queue[str] = asyncio.Queue()
        snapshot = dumps(self.snapshot_frame())  # taken and registered at the same instant
        self.subscribers.add(queue)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"peer-book-{self.topic}")
        try:
            if not await send(snapshot):
                return
            while True:
                if not await send(await queue.get()):
                    return
        finally:
            self.subscribers.discard(queue)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def snapshot_frame(self, kind: str = "snapshot") -> dict[str, Any]:
        bids, asks = self.levels()
        return {"topic": self.topic, "type": kind, "ts": self.ts,
                "data": {"s": self.frames[0]["data"]["s"], "b": bids, "a": asks,
                         "u": self.u, "seq": self.seq}, "cts": self.cts}

    async def _run(self) -> None:
        while self.subscribers:
            if self._burst:
                self._burst -= 1
            else:
                await asyncio.sleep(self.interval_s)
            while self.stalled():
                await asyncio.sleep(0.01)
            frame = self._next()
            self.sent.append(frame)
            text = dumps(frame)
            for queue in list(self.subscribers):
                queue.put_nowait(text)

    # -- the venue ------------------------------------------------------------------------

    def _next(self) -> dict[str, Any]:
        fault = self.faults.popleft() if self.faults else None
        if fault == "gap":
            self._advance()  # lost: the book moved, nobody hears of it
        elif fault in ("restart", "restart-delta"):
            self._advance()
            self._u_shift -= self.u - 1
            self.u = 1
            self._record()
            return self.snapshot_frame("snapshot" if fault == "restart" else "delta")
        elif fault == "crossed":
            return self._crossed()
        return self._advance()

    def _advance(self) -> dict[str, Any]:
        if self._index == len(self.frames):
            self._index = 0
            self._round += 1
        recorded = self.frames[self._index]
        self._index += 1
        data = recorded["data"]
        before = self.levels()
        self.ts = recorded["ts"] + self._round * self._span_ts
        self.cts = recorded.get("cts", recorded["ts"]) + self._round * self._span_ts
        self.u = data["u"] + self._round * len(self.frames) + self._u_shift
        self.seq = data["seq"] + self._round * self._span_seq + self._extra
        if recorded["type"] == "snapshot":
            self.book.snapshot(data["b"], data["a"])
        else:
            self.book.apply(data["b"], data["a"])
        assert not self.book.crossed(), f"{self.topic}: the fixture crossed at u={self.u}"
        self._record()
        if self.cut:
            after = self.levels()
            snapshot = recorded["type"] == "snapshot"
            data = {**data, "b": after[0] if snapshot else _changes(before[0], after[0]),
                    "a": after[1] if snapshot else _changes(before[1], after[1])}
        return {"topic": self.topic, "type": recorded["type"], "ts": self.ts,
                "data": {**data, "u": self.u, "seq": self.seq}, "cts": self.cts}

    def _crossed(self) -> dict[str, Any]:
        ask = self.book.best_ask()
        assert ask is not None
        self._u_shift += 1
        self._extra += 1
        return {"topic": self.topic, "type": "delta", "ts": self.ts + 1,
                "data": {"s": self.frames[0]["data"]["s"], "b": [[ask[0], "1.000"]], "a": [],
                         "u": self.u + 1, "seq": self.seq + 1},
                "cts": self.cts + 1}

    def _record(self) -> None:
        self.history[self.ts] = self.levels()
        self.u_history.append((self.ts, self.u))
