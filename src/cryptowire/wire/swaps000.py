"""The seed 000 "swaps and burns" dialect (PROTOCOLS.md 2.3), sans I/O.

One command per connection, bare text frames: the API key, then ``swaps`` | ``burns`` (or
the README's singular ``swap`` | ``burn``) | ``add_token`` | ``remove_token`` |
``token_symbol`` (the last three followed by one JSON frame). Pushes are batched per poll
per chain::

    {"data": {"chain": 1, "events": {"<token>": {"symbol": "PEPE", "address": "<token>",
        "txs": [{"txHash": "0x..", "purchased": 1234.567, "token_price": 1.2e-06,
                 "swapped": 0.5, "taker": "0x.."}]}}}}

(burns: ``txs`` items ``{"txHash", "amount", "from", "to"}``). This dialect keeps the JSON
numbers its seed sent (the native channels carry the exact decimal strings) and only buys,
as its clients expect.

Fan-out: :class:`Swaps000Encoder` turns one publication into one *line* (encoded once for
every 000 session); :meth:`Swaps000Encoder.batch` merges the lines a session got in one
event-loop tick - the watcher publishes a poll's events in one tick - into one framed
message per chain, cached so sessions that got the same lines share the bytes.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import orjson

from cryptowire.events import Publication
from cryptowire.wire.frames import text_frame

log = logging.getLogger("cryptowire.wire.swaps000")

COMMANDS = ("swaps", "burns", "add_token", "remove_token", "token_symbol")
#: The seed README says "the event you want to subscribe (swap, burn...)": the singular
#: names are the same commands.
ALIASES = {"swap": "swaps", "burn": "burns"}
#: Commands followed by one JSON frame.
WITH_PAYLOAD = ("add_token", "remove_token", "token_symbol")


def command(text: str) -> str:
    """The command a client's event frame names (an alias resolved; otherwise as sent)."""
    return ALIASES.get(text, text)


def _number(text: str) -> float | int:
    """The seed's JSON number for an exact decimal string (this dialect only)."""
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() and abs(value) < 2**53 \
        else float(value)


def event_line(pub: Publication) -> bytes | None:
    """The compact line of one swap (buys only) or burn publication, or ``None``."""
    if pub.type != "update":
        return None
    kind = pub.channel.split(":", 1)[0]
    data: dict[str, Any] = orjson.loads(pub.data_json)
    if kind == "swap":
        if data.get("side") != "buy":
            return None
        tx: dict[str, Any] = {
            "txHash": data["tx_hash"], "purchased": _number(data["token_amount"]),
            "token_price": _number(data["price_in_paired"]),
            "swapped": _number(data["paired_amount"]), "taker": data["taker"],
        }  # fmt: skip
    elif kind == "burn":
        tx = {"txHash": data["tx_hash"], "amount": _number(data["amount"]),
              "from": data["from"], "to": data["to"]}
    else:
        return None
    return orjson.dumps({"chain": data["chain"], "token": data["token"],
                         "symbol": data["symbol"], "tx": tx}) + b"\n"


def _parse_line(line: bytes) -> dict[str, Any] | None:
    """One :func:`event_line` back, or ``None`` for anything else."""
    try:
        item = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(item, dict) or not isinstance(item.get("chain"), int) \
            or not isinstance(item.get("token"), str) or not isinstance(item.get("tx"), dict):
        return None
    return item


def batch_messages(lines: list[bytes]) -> list[bytes]:
    """The 000 push messages (JSON, unframed) for ``lines``: one per chain, in order.

    Never raises: bytes that are not an event line (a whole frame written to a streaming
    session by mistake, say) are left out and logged.
    """
    chains: dict[int, dict[str, dict[str, Any]]] = {}
    for line in lines:
        item = _parse_line(line)
        if item is None:
            log.error("000 batch: dropped %d bytes that are not an event line", len(line))
            continue
        events = chains.setdefault(item["chain"], {})
        entry = events.setdefault(item["token"], {"symbol": item["symbol"],
                                                  "address": item["token"], "txs": []})
        entry["txs"].append(item["tx"])
    return [orjson.dumps({"data": {"chain": chain, "events": events}})
            for chain, events in chains.items()]


class Swaps000Encoder:
    """The hub-side encoder of 000 sessions (lines, see the module docstring)."""

    name = "swaps000"

    def __init__(self) -> None:
        self._last_in = b""
        self._last_out = b""

    def frame_publication(self, pub: Publication) -> bytes | None:
        return event_line(pub)

    def batch(self, data: bytes) -> bytes:
        """Framed 000 messages for the lines in ``data`` (one session's tick)."""
        if data == self._last_in:
            return self._last_out
        lines = [ln for ln in data.split(b"\n") if ln]
        out = b"".join(text_frame(m) for m in batch_messages(lines))
        self._last_in, self._last_out = data, out
        return out


# -- replies -------------------------------------------------------------------------------


def reply(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


def added(symbol: str, address: str) -> bytes:
    return reply({"status": 200, "message": "Successfully added token",
                  "data": {"symbol": symbol, "address": address}})


def add_failed(reason: str) -> bytes:
    return reply({"status": 400, "message": reason})


def removed(ok: bool) -> bytes:
    return reply({"status": "removed" if ok else "failed"})


def symbol(value: str) -> bytes:
    return reply({"status": 200, "message": None, "data": {"symbol": value}})


def error(status: int, message: str) -> bytes:
    """A clear error (the seed closed silently: *seed bug*)."""
    return reply({"status": status, "message": message})


def unknown_command(text: str) -> bytes:
    return error(400, f"Unknown event {text[:40]!r}. Send one of: {', '.join(COMMANDS)} "
                      f"({', '.join(ALIASES)} are accepted for {', '.join(ALIASES.values())}).")
