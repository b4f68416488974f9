"""The seed 000 "swaps and burns" dialect (PROTOCOLS.md 2.3), sans I/O.

One command per connection, bare text frames: the API key, then ``swaps`` | ``burns`` (or
the README's singular ``swap`` | ``burn``) | ``add_token`` | ``remove_token`` |
``token_symbol`` (the last three followed by one JSON frame). Pushes are batched per poll
per chain::

    {"data": {"chain": 1, "events": {"<token>": {"symbol": "PEPE", "address": "<token>",
        "txs": [{"txHash": "0x..", "purchased": 1234.567, "token_price": 0.0000012,
                 "swapped": 0.5, "taker": "0x.."}]}}}}

(burns: ``txs`` items ``{"txHash", "amount", "from", "to"}``). This dialect keeps the JSON
numbers its seed sent and only buys, as its clients expect. The numbers carry the exact
digits of the native channels' decimal strings: each is a number token written from the
string (:func:`cryptowire.jsonnum.number`), never a float, so
``123456789012345678.123456789012345678`` goes out digit for digit.

Fan-out: :class:`Swaps000Encoder` turns one publication into one *line* (encoded once for
every 000 session); :meth:`Swaps000Encoder.batch` merges the lines a session got in one
event-loop tick - the watcher publishes a poll's events in one tick - into one framed
message per chain, cached so sessions that got the same lines share the bytes. The merge
does not decode the numbers again: each line's ``tx`` object is spliced into the batch as
the bytes :func:`event_line` wrote (``orjson.Fragment``), taken from the parts the encoder
kept for its last :data:`KNOWN_LINES` lines, or else cut out of the line after checking it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from cryptowire.events import Publication
from cryptowire.jsonnum import number
from cryptowire.logthrottle import log_throttled
from cryptowire.wire.dialect import IGNORED, Ignored, Invalid
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


#: Between a line's head (chain, token, symbol) and its ``tx`` object. orjson escapes every
#: ``"`` inside a string, so these bytes only ever occur as the key itself.
_TX_KEY = b',"tx":'

#: How many lines an encoder remembers the parts of (see :meth:`Swaps000Encoder.batch`).
KNOWN_LINES = 2048

#: One event line taken apart: chain, token, symbol, and the ``tx`` object's JSON bytes.
Parts = tuple[int, str, str | None, bytes]


def _event_parts(pub: Publication) -> Parts | None:
    """The parts of the line of one swap (buys only) or burn publication, or ``None``."""
    if pub.type != "update":
        return None
    kind = pub.channel.split(":", 1)[0]
    data: dict[str, Any] = orjson.loads(pub.data_json)  # money fields are strings here
    if kind == "swap":
        if data.get("side") != "buy":
            return None
        tx: dict[str, Any] = {
            "txHash": data["tx_hash"], "purchased": number(data["token_amount"]),
            "token_price": number(data["price_in_paired"]),
            "swapped": number(data["paired_amount"]), "taker": data["taker"],
        }  # fmt: skip
    elif kind == "burn":
        tx = {"txHash": data["tx_hash"], "amount": number(data["amount"]),
              "from": data["from"], "to": data["to"]}
    else:
        return None
    return data["chain"], data["token"], data["symbol"], orjson.dumps(tx)


def _line(parts: Parts) -> bytes:
    """The line of ``parts``, without its newline (what ``orjson.dumps`` of the whole
    object gives, byte for byte)."""
    chain, token, symbol, tx = parts
    head = orjson.dumps({"chain": chain, "token": token, "symbol": symbol})
    return head[:-1] + _TX_KEY + tx + b"}"


def event_line(pub: Publication) -> bytes | None:
    """The compact line of one swap (buys only) or burn publication, or ``None``.

    ``{"chain": 1, "token": "0x..", "symbol": "PEPE", "tx": {...}}\\n``: the amounts in
    ``tx`` are JSON number tokens with the exact digits of the publication's decimal strings
    (``null`` for a value that is not a finite decimal); no float is involved.
    """
    parts = _event_parts(pub)
    return None if parts is None else _line(parts) + b"\n"


def _not_json(text: str) -> None:
    raise ValueError(f"{text} is not JSON")


def _is_json_object(raw: bytes) -> bool:
    """Whether ``raw`` is one JSON object, checked without turning a number into a float."""
    try:
        value = json.loads(raw, parse_float=str, parse_int=str, parse_constant=_not_json)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        return False
    return isinstance(value, dict)


def _parse_line(line: bytes) -> Parts | None:
    """The parts of one :func:`event_line`, or ``None`` for anything else.

    Only the head is decoded (it holds no amount); the ``tx`` object is validated as JSON
    and kept as its bytes, numbers untouched.
    """
    line = line.strip(b" \t\r\n")  # JSON whitespace: the line's own newline, say
    cut = line.find(_TX_KEY)
    if cut < 0 or not line.endswith(b"}"):
        return None
    try:
        head = orjson.loads(line[:cut] + b"}")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(head, dict) or "symbol" not in head:
        return None
    chain, token, symbol = head.get("chain"), head.get("token"), head.get("symbol")
    if type(chain) is not int or not isinstance(token, str) \
            or not (symbol is None or isinstance(symbol, str)):
        return None
    tx = line[cut + len(_TX_KEY):-1]
    if not _is_json_object(tx):
        return None
    return chain, token, symbol, tx


def _messages(items: Iterable[Parts]) -> list[bytes]:
    """One push message per chain, in order; each ``tx`` spliced in as its bytes."""
    chains: dict[int, dict[str, dict[str, Any]]] = {}
    for chain, token, symbol, tx in items:
        events = chains.setdefault(chain, {})
        entry = events.setdefault(token, {"symbol": symbol, "address": token, "txs": []})
        entry["txs"].append(orjson.Fragment(tx))
    return [orjson.dumps({"data": {"chain": chain, "events": events}})
            for chain, events in chains.items()]


def _dropped(line: bytes) -> None:
    log_throttled(log, logging.ERROR, "000 batch: dropped %d bytes that are not an event line",
                  len(line))


def batch_messages(lines: list[bytes]) -> list[bytes]:
    """The 000 push messages (JSON, unframed) for ``lines``: one per chain, in order.

    Each ``tx`` goes into its chain's message as the exact bytes of its line
    (``orjson.Fragment``), so the amounts keep every digit. Never raises: bytes that are not
    an event line (a whole frame written to a streaming session by mistake, say) are left
    out and logged.
    """
    items: list[Parts] = []
    for line in lines:
        parts = _parse_line(line)
        if parts is None:
            _dropped(line)
        else:
            items.append(parts)
    return _messages(items)


class Swaps000Encoder:
    """The hub-side encoder of 000 sessions (lines, see the module docstring)."""

    name = "swaps000"

    def __init__(self) -> None:
        self._last_in = b""
        self._last_out = b""
        # line (without its newline) -> its parts, for the last KNOWN_LINES lines made here
        self._known: dict[bytes, Parts] = {}

    def frame_publication(self, pub: Publication) -> bytes | None:
        parts = _event_parts(pub)
        if parts is None:
            return None
        line = _line(parts)
        known = self._known
        if line not in known and len(known) >= KNOWN_LINES:
            del known[next(iter(known))]  # the oldest
        known[line] = parts
        return line + b"\n"

    def batch(self, data: bytes) -> bytes:
        """Framed 000 messages for the lines in ``data`` (one session's tick).

        A line this encoder made is merged from the parts it kept; any other bytes are
        parsed and checked as :func:`batch_messages` does (so no number is decoded either
        way).
        """
        if data == self._last_in:
            return self._last_out
        known = self._known
        items: list[Parts] = []
        for line in data.split(b"\n"):
            if not line:
                continue
            parts = known.get(line) or _parse_line(line)
            if parts is None:
                _dropped(line)
            else:
                items.append(parts)
        out = b"".join(text_frame(m) for m in _messages(items))
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


@dataclass(slots=True)
class SwapsState:
    """Where one 000 connection is: ``key`` (its first frame), ``command``, a command of
    :data:`WITH_PAYLOAD` waiting for its JSON, or ``streaming``; ``told``: a streaming
    client was told (once) that its frames are ignored."""

    step: str = "key"
    told: bool = False


@dataclass(frozen=True, slots=True)
class Key:
    """The first frame: the API key (stripped; empty when none was sent)."""

    key: str


@dataclass(frozen=True, slots=True)
class Command:
    """The event frame: one of :data:`COMMANDS` (an alias resolved)."""

    name: str


@dataclass(frozen=True, slots=True)
class Payload:
    """The JSON frame a command of :data:`WITH_PAYLOAD` waited for, as sent."""

    command: str
    text: str


def ignored(state: SwapsState) -> Invalid | Ignored:
    """A client frame on a streaming session: said once, then dropped."""
    if state.told:
        return IGNORED
    state.told = True
    return Invalid(text_frame(error(400, "This connection streams; client frames are ignored.")))


class Swaps000Dialect:
    """The 000 socket's frames (:class:`~cryptowire.wire.dialect.Dialect`); whole frames,
    which the server writes past the batching of a streaming session."""

    name = "swaps000"

    def encoder(self) -> Swaps000Encoder:
        return Swaps000Encoder()

    def refused(self, code: str, message: str) -> bytes:
        return text_frame(error(401 if code == "UNAUTHORIZED" else 503, message))

    def no_key(self, timeout_s: float) -> bytes:
        return text_frame(error(
            401, f"No API key within {timeout_s:g} s: send it as the first frame."))

    def dropped(self, rate: int) -> bytes:
        return text_frame(error(
            429, f"More than {rate} messages per second; this one was dropped."))

    def flooding(self) -> bytes:
        return text_frame(error(429, "Flooding: closing."))

    def binary(self) -> bytes:
        return text_frame(error(400, "Send text frames."))

    def new_state(self) -> SwapsState:
        return SwapsState()

    def parse(self, text: str, state: SwapsState) -> Key | Command | Payload | Invalid | Ignored:
        """The frame for the connection's step; the step itself moves on as the server acts
        (a key accepted, a command allowed)."""
        step = state.step
        if step == "key":
            return Key(text.strip())
        if step == "command":
            name = command(text.strip())
            if name not in COMMANDS:
                return Invalid(text_frame(unknown_command(name)))
            return Command(name)
        if step in WITH_PAYLOAD:
            return Payload(step, text)
        return ignored(state)  # streaming: the seed's clients send nothing more
