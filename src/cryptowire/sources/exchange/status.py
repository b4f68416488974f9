"""What ``/health`` and ``/stats`` show of an :class:`~.source.ExchangeSource`: the worst
socket sets the state; counters are summed; ``extra`` has one entry per market (its socket's
status, or the sum of its sockets' with each under ``sockets`` when it has several) and the
instruments lists."""

from __future__ import annotations

from collections import Counter
from typing import Any

from cryptowire.core.source import SourceState, SourceStatus
from cryptowire.sources.exchange.connection import Connection

#: Connection state -> (severity, what the source reports); the worst socket sets the state.
_STATES: dict[str, tuple[int, SourceState]] = {
    "idle": (0, "up"), "up": (0, "up"), "connecting": (1, "connecting"), "down": (2, "down"),
    "stopped": (3, "stopped"),
}  # fmt: skip
_SUMMED = ("topics", "reconnects", "messages", "errors", "rejections", "rotations")


def label(conn: Connection) -> str:
    """``linear``, ``binance market``, ``okx public #1``: the market, its endpoint when not
    the only one, its shard after the first."""
    text = conn.market.key
    if len(conn.market.endpoints) > 1:
        text += f" {conn.endpoint}"
    return text + (f" #{conn.shard}" if conn.shard else "")


def market_status(conns: list[Connection], resyncs: Counter[str]) -> dict[str, Any]:
    if len(conns) == 1:
        return {**conns[0].status(), "book_resyncs": dict(resyncs)}
    each = [{"endpoint": c.endpoint, "shard": c.shard, **c.status()} for c in conns]
    worst = max(conns, key=lambda c: _STATES[c.state][0])
    last = [c.last_message_ms for c in conns if c.last_message_ms is not None]
    errors = [c.last_error for c in conns if c.last_error]
    return {
        "url": conns[0].url, "state": worst.state,
        **{key: sum(s[key] for s in each) for key in _SUMMED},
        "book_resyncs": dict(resyncs), "last_message_ms": max(last) if last else None,
        "last_error": errors[-1] if errors else None, "sockets": each,
        "rotation_error": next((c.rotation_error for c in conns if c.rotation_error), None),
    }


def source_status(name: str, conns: list[Connection], *, running: bool, enabled: bool,
                  topics: int, resyncs_by_market: dict[str, Counter[str]],
                  instruments: dict[str, Any]) -> SourceStatus:
    by_market: dict[str, list[Connection]] = {}
    for conn in conns:
        by_market.setdefault(conn.market.key, []).append(conn)
    extra: dict[str, object] = {
        key: market_status(group, resyncs_by_market.get(key, Counter()))
        for key, group in by_market.items()}
    if instruments:
        extra["instruments"] = instruments
    state: SourceState
    if not running:
        state, detail = "stopped", "not running"
    elif not enabled:
        state, detail = "stopped", "disabled in settings"
    elif not conns:
        state, detail = "up", "idle: no topics subscribed"
    else:
        state = max((_STATES[c.state] for c in conns), key=lambda pair: pair[0])[1]
        detail = "; ".join(
            f"{label(c)} {c.state} ({len(c.streams)} topics)"
            + (f": {c.last_error}" if c.state != "up" and c.last_error else "")
            + (f"; rotation failed: {c.rotation_error}" if c.rotation_error else "")
            for c in conns)
    last = [c.last_message_ms for c in conns if c.last_message_ms is not None]
    resyncs: Counter[str] = Counter()
    for counter in resyncs_by_market.values():
        resyncs.update(counter)
    return SourceStatus(
        name=name, state=state, detail=detail,
        last_message_ms=max(last) if last else None,
        messages=sum(c.messages for c in conns), errors=sum(c.errors for c in conns),
        reconnects=sum(c.reconnects for c in conns), topics=topics,
        book_resyncs=dict(resyncs), extra=extra,
    )
