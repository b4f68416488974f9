"""The order book side of the OKX replay peer: one venue book per ``instId``.

A :class:`OkxBookFeed` is OKX's ``books`` book of one instrument (400 levels a side, docs:
#order-book-trading-market-data-ws-order-book-channel). It starts from the fixture's snapshot
(``tests/fixtures/okx/<inst>-books.jsonl``) and moves by the fixture's updates, one every
``interval_s`` while anyone is subscribed (its own clock, shared by every subscriber, like the
exchange's); at the end of the fixture it goes back to the fixture's first book by an update
that changes exactly what differs, and plays the updates again, so the stream never ends.
``seqId`` is the feed's own: each update's ``prevSeqId`` is the previous ``seqId`` (the
documented keep-alive, empty with ``prevSeqId == seqId``, included).

A new subscription gets ``action":"snapshot"`` of the book as it is now (``prevSeqId`` -1),
then every later update. ``checksum`` is ``0`` (OKX since 2026-06-23) unless the feed was made
with ``checksum=True``: then each message carries the documented CRC32 of the top 25 levels.

The feed knows what it sent: :meth:`OkxBookFeed.book_at` is the venue's book after the message
with a given ``seqId`` (the last ``HISTORY`` messages), so a test compares a client's rebuilt
book with the venue's at every step.

Faults (:meth:`OkxBookFeed.inject`), applied to the next update:

- ``"gap"``: the update is lost (the book moves by it, nobody gets it): the next one's
  ``prevSeqId`` does not match what the client has;
- ``"checksum"``: the update is sent with a wrong non-zero ``checksum`` (the book is right);
- ``"reset"``: the documented sequence reset after maintenance: ``seqId`` drops to a small
  value (``prevSeqId`` still chains): not a break.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptowire.sources.venues.okx_book import checksum as okx_checksum

Level = list[str]  # OKX's [px, sz, "0", orders]
FAULTS = ("gap", "checksum", "reset")
HISTORY = 5000


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


class OkxBookFeed:
    """The venue book of one instrument; see the module docstring."""

    def __init__(self, inst_id: str, fixture: Path, interval_s: float,
                 stalled: Callable[[], bool], *, checksum: bool = False) -> None:
        msgs = [json.loads(line) for line in fixture.read_text().splitlines() if line.strip()]
        assert msgs and msgs[0]["action"] == "snapshot", f"{fixture}: no snapshot first"
        self.inst_id = inst_id
        self.interval_s = interval_s
        self.stalled = stalled
        self.checksum = checksum
        first = msgs[0]["data"][0]
        self.start: dict[str, dict[Decimal, Level]] = {
            side: {Decimal(lv[0]): lv for lv in first[side]} for side in ("bids", "asks")}
        self.updates = [m["data"][0] for m in msgs[1:]]
        self.book = {side: dict(levels) for side, levels in self.start.items()}
        self.seq = int(first["seqId"])
        self.ts = int(first["ts"])
        self.position = 0
        self.sent = 0
        self.subscribers: list[Callable[[str], Awaitable[bool]]] = []
        self.history: OrderedDict[int, dict[str, list[Level]]] = OrderedDict()
        self._faults: deque[str] = deque()
        self._task: asyncio.Task[None] | None = None
        self._remember()

    # -- what tests read --------------------------------------------------------------------

    def levels(self, side: str) -> list[Level]:
        """The book's side now, best first, as OKX levels."""
        book = self.book[side]
        return [book[k] for k in sorted(book, reverse=side == "bids")]

    def book_at(self, seq: int) -> dict[str, list[Level]]:
        """The venue's book (``[px, sz]`` levels, best first) after the message ``seq``."""
        return self.history[seq]

    def inject(self, fault: str) -> None:
        assert fault in FAULTS, fault
        self._faults.append(fault)

    def message(self, action: str, asks: list[Level], bids: list[Level], prev: int,
                *, wrong_checksum: bool = False) -> dict[str, Any]:
        crc = okx_checksum(self.levels("bids"), self.levels("asks")) if self.checksum else 0
        if wrong_checksum:
            crc = (crc ^ 0x5A5A5A) or 1
        return {"arg": {"channel": "books", "instId": self.inst_id}, "action": action,
                "data": [{"asks": asks, "bids": bids, "ts": str(self.ts), "checksum": crc,
                          "prevSeqId": prev, "seqId": self.seq}]}

    def snapshot(self) -> dict[str, Any]:
        return self.message("snapshot", self.levels("asks"), self.levels("bids"), -1)

    # -- streaming --------------------------------------------------------------------------

    async def stream(self, send: Callable[[str], Awaitable[bool]]) -> None:
        """Serve one subscriber: the snapshot now, then the updates (until cancelled)."""
        if not await send(dumps(self.snapshot())):
            return
        self.subscribers.append(send)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        try:
            await asyncio.Event().wait()
        finally:
            self.subscribers.remove(send)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while self.subscribers:
            await asyncio.sleep(self.interval_s)
            if self.stalled():
                continue
            fault = self._faults.popleft() if self._faults else None
            msg = self._step(fault)
            if fault == "gap":
                continue
            text = dumps(msg)
            for send in list(self.subscribers):
                await send(text)
            self.sent += 1

    def _step(self, fault: str | None) -> dict[str, Any]:
        """Move the book by the next update; the message that says so."""
        if self.position >= len(self.updates):
            asks, bids = self._back_to_start("asks"), self._back_to_start("bids")
            self.position, fixture_step, keepalive = 0, 1, False
        else:
            data = self.updates[self.position]
            self.position += 1
            asks, bids = data["asks"], data["bids"]
            keepalive = not asks and not bids and data["prevSeqId"] == data["seqId"]
            fixture_step = max(1, data["seqId"] - data["prevSeqId"])
            for side, levels in (("asks", asks), ("bids", bids)):
                for level in levels:
                    if Decimal(level[1]) == 0:
                        self.book[side].pop(Decimal(level[0]), None)
                    else:
                        self.book[side][Decimal(level[0])] = level
        prev = self.seq
        self.ts += 100
        if fault == "reset":
            self.seq = 3
        elif not keepalive:
            self.seq += fixture_step
        self._remember()
        return self.message("update", asks, bids, prev, wrong_checksum=fault == "checksum")

    def _back_to_start(self, side: str) -> list[Level]:
        now, start = self.book[side], self.start[side]
        changes = [[now[k][0], "0", "0", "0"] for k in now if k not in start]
        changes += [start[k] for k in start if now.get(k) != start[k]]
        self.book[side] = dict(start)
        return sorted(changes, key=lambda lv: Decimal(lv[0]), reverse=side == "bids")

    def _remember(self) -> None:
        self.history[self.seq] = {side: [lv[:2] for lv in self.levels(side)]
                                  for side in ("bids", "asks")}
        self.history.move_to_end(self.seq)
        while len(self.history) > HISTORY:
            self.history.popitem(last=False)
