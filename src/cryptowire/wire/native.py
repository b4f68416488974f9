"""The native protocol on ``/ws`` (PROTOCOLS.md section 1), which 003 (Mudrex) clients speak too.

Client frames are JSON objects ``{"id"?, "op", "args"?, "recover"?, "interval_ms"?}``
(``interval_ms``: subscribe only, PROTOCOLS.md 4.3); every reply echoes the
``id`` when one was given. This module turns text into a :class:`Request` (or raises
:class:`~cryptowire.errors.ProtocolError` with the wire error code) and builds every reply and
data frame as bytes. It does no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from cryptowire.clock import now_ms
from cryptowire.errors import ProtocolError
from cryptowire.events import Publication
from cryptowire.jsonnum import loads_exact
from cryptowire.wire.dialect import Invalid
from cryptowire.wire.frames import text_frame

if TYPE_CHECKING:  # the hub is not loaded by a sans-I/O module
    from cryptowire.core.hub import SubscribeResult
    from cryptowire.core.session import Encoder

OPS = ("auth", "subscribe", "unsubscribe", "ping", "channels", "publish",
       "add_token", "remove_token", "list_tokens")
#: Watchlist admin ops (PROTOCOLS.md 3): ``add_token``/``remove_token`` need the admin scope.
TOKEN_OPS = ("add_token", "remove_token", "list_tokens")
ERROR_CODES = (
    "INVALID_JSON", "UNKNOWN_OP", "INVALID_ARGS", "UNAUTHORIZED", "FORBIDDEN",
    "LIMIT_EXCEEDED", "RATE_LIMIT_EXCEEDED", "INTERNAL_ERROR",
)  # fmt: skip

RequestId = int | str | None

#: The ``interval_ms`` a conflated subscribe may ask for (PROTOCOLS.md 4.3), inclusive.
INTERVAL_MS_RANGE = (50, 60_000)

#: The longest string ``id`` accepted (and so echoed); a number is at most 64 bits anyway.
MAX_ID_CHARS = 64


@dataclass(slots=True)
class Request:
    """One parsed client frame."""

    op: str
    id: RequestId = None
    args: list[Any] = field(default_factory=list)
    recover: dict[str, tuple[str, int]] = field(default_factory=dict)
    #: At most one frame per channel per this many ms (``None``: every publication).
    interval_ms: int | None = None


class FrameError(ProtocolError):
    """A :class:`ProtocolError` about a frame whose ``id`` could be read, so that the error
    reply echoes it like every other reply (a client matches replies to requests by id)."""

    def __init__(self, code: str, message: str, rid: RequestId) -> None:
        super().__init__(code, message)
        self.id = rid


def parse_request(text: str | bytes) -> Request:
    """Parse and validate one client frame.

    Raises :class:`ProtocolError`; :class:`FrameError` (carrying the frame's ``id``) once
    the frame is an object with a valid ``id``.
    """
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError("INVALID_JSON", f"Frame is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError("INVALID_JSON",
                            'Frame must be a JSON object such as {"op": "ping"}.')
    rid = obj.get("id")
    if rid is not None and (isinstance(rid, bool) or not isinstance(rid, int | str)):
        raise ProtocolError("INVALID_ARGS", "'id' must be a number or a string.")
    if isinstance(rid, str) and len(rid) > MAX_ID_CHARS:
        # Every reply echoes the id: a long one would make the server write what the client
        # sent back at it, again and again. Not echoed here either.
        raise ProtocolError("INVALID_ARGS", f"'id' must be at most {MAX_ID_CHARS} characters.")
    try:
        if obj.get("op") == "publish":
            obj = _exact(text)
        return _parse_object(obj, rid)
    except ProtocolError as exc:
        raise FrameError(exc.code, exc.message, rid) from exc


def _exact(text: str | bytes) -> dict[str, Any]:
    """A publish frame read again with exact numbers: orjson made floats of integers past
    64 bits (and of every decimal), and published data goes out with the digits it came with."""
    try:
        obj: dict[str, Any] = loads_exact(text)
    except ValueError as exc:
        raise ProtocolError("INVALID_ARGS", f"'publish' data cannot be read: {exc}.") from exc
    return obj


def _parse_object(obj: dict[str, Any], rid: RequestId) -> Request:
    op = obj.get("op")
    if op is None and "action" in obj:
        raise ProtocolError(
            "UNKNOWN_OP",
            f"Unknown action: {obj.get('action')!r}. This socket speaks ops: "
            f"{', '.join(OPS)}.",
        )
    if not isinstance(op, str):
        raise ProtocolError("UNKNOWN_OP", f"Missing 'op'. Use one of: {', '.join(OPS)}.")
    if op not in OPS:
        raise ProtocolError("UNKNOWN_OP", f"Unknown op '{op[:40]}'. Use one of: "
                                          f"{', '.join(OPS)}.")
    args = obj.get("args", [])
    if not isinstance(args, list):
        raise ProtocolError("INVALID_ARGS", "'args' must be a list.")
    req = Request(op=op, id=rid, args=args)
    if op in ("subscribe", "unsubscribe") and not args:
        raise ProtocolError("INVALID_ARGS",
                            f"'{op}' needs a non-empty 'args' list of channels, "
                            'e.g. ["ticker:BTCUSDT"].')
    if op == "auth" and (len(args) != 1 or not isinstance(args[0], str)):
        raise ProtocolError("INVALID_ARGS", "'auth' takes one argument: the API key string.")
    if op == "publish":
        if not args:
            raise ProtocolError("INVALID_ARGS", "'publish' needs args "
                                                '[{"channel": "app:<name>", "data": {...}}].')
        for item in args:
            if not isinstance(item, dict) or "channel" not in item or "data" not in item:
                raise ProtocolError("INVALID_ARGS", "Each publish item is "
                                                    '{"channel": "app:<name>", "data": ...}.')
    if "recover" in obj:
        req.recover = _parse_recover(obj["recover"])
    if "interval_ms" in obj:
        req.interval_ms = _parse_interval(op, obj["interval_ms"])
    return req


def _parse_interval(op: str, value: object) -> int:
    low, high = INTERVAL_MS_RANGE
    if op != "subscribe":
        raise ProtocolError("INVALID_ARGS", "'interval_ms' applies to 'subscribe' only.")
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        shown = orjson.dumps(value).decode()[:40]
        raise ProtocolError("INVALID_ARGS", f"'interval_ms' must be an integer from {low} to "
                                            f"{high} (milliseconds), not {shown}.")
    return value


def _parse_recover(value: object) -> dict[str, tuple[str, int]]:
    if not isinstance(value, dict):
        raise ProtocolError("INVALID_ARGS", "'recover' maps channels to "
                                            '{"epoch": "...", "offset": N}.')
    out: dict[str, tuple[str, int]] = {}
    for channel, pos in value.items():
        if (
            not isinstance(pos, dict)
            or not isinstance(pos.get("epoch"), str)
            or not isinstance(pos.get("offset"), int)
            or isinstance(pos.get("offset"), bool)
        ):
            raise ProtocolError("INVALID_ARGS", f"recover[{channel!r}] must be "
                                                '{"epoch": "<string>", "offset": <integer>}.')
        out[channel] = (pos["epoch"], pos["offset"])
    return out


# -- replies -----------------------------------------------------------------------------


def reply(rid: RequestId, body: dict[str, Any]) -> bytes:
    """Frame a reply, echoing ``rid`` first when given."""
    if rid is not None:
        body = {"id": rid, **body}
    return text_frame(orjson.dumps(body))


def error(code: str, message: str, rid: RequestId = None) -> bytes:
    return reply(rid, {"op": "error", "code": code, "message": message})


def pong(rid: RequestId = None) -> bytes:
    return reply(rid, {"op": "pong", "timestamp": now_ms()})


def subscribe_reply(rid: RequestId, result: SubscribeResult,
                    already: list[str] | None = None) -> bytes:
    """The 003-shaped subscribe reply, plus ``positions`` (and ``recovered`` if asked)."""
    args = [*(already or []), *result.accepted]
    rejected = [{"arg": a, "reason": r} for a, r in result.rejected] or None
    body: dict[str, Any] = {
        "op": "subscribe",
        "success": bool(args) or not rejected,
        "args": args,
        "message": f"Subscribed to {len(args)} streams",
        "rejected": rejected,
        "positions": {ch: {"epoch": e, "offset": o} for ch, (e, o) in result.positions.items()},
    }
    if result.recovered:
        body["recovered"] = result.recovered
    return reply(rid, body)


def unsubscribe_reply(rid: RequestId, removed: list[str],
                      rejected: list[tuple[str, str]]) -> bytes:
    return reply(rid, {
        "op": "unsubscribe", "success": True, "args": removed,
        "message": f"Unsubscribed from {len(removed)} streams",
        "rejected": [{"arg": a, "reason": r} for a, r in rejected] or None,
    })


# -- data frames -------------------------------------------------------------------------


class NativeEncoder:
    """``{"channel","type","epoch","offset","ts","source"?,"data"}``; ``data`` spliced in
    as the bytes the broker encoded once."""

    name = "native"

    def frame_publication(self, pub: Publication) -> bytes | None:
        head: dict[str, Any] = {
            "channel": pub.channel, "type": pub.type, "epoch": pub.epoch,
            "offset": pub.offset, "ts": pub.ts,
        }
        if pub.source:
            head["source"] = pub.source
        return text_frame(orjson.dumps(head)[:-1] + b',"data":' + pub.data_json + b"}")

    def frame_batch(self, pubs: list[Publication]) -> bytes | None:
        """A conflated interval's events of one epoch (PROTOCOLS.md 4.3):
        ``{"channel","type":"batch","epoch","offsets":[from,to],"ts","source"?,"data":[...]}``
        with ``ts`` and ``source`` of the last one."""
        first, last = pubs[0], pubs[-1]
        head: dict[str, Any] = {
            "channel": first.channel, "type": "batch", "epoch": first.epoch,
            "offsets": [first.offset, last.offset], "ts": last.ts,
        }
        if last.source:
            head["source"] = last.source
        data = b"[" + b",".join(p.data_json for p in pubs) + b"]"
        return text_frame(orjson.dumps(head)[:-1] + b',"data":' + data + b"}")


class NativeDialect:
    """The native socket's frames (:class:`~cryptowire.wire.dialect.Dialect`)."""

    name = "native"

    def encoder(self) -> Encoder:
        return NativeEncoder()

    def refused(self, code: str, message: str) -> bytes:
        return error(code, message)

    def no_key(self, timeout_s: float) -> bytes:
        return error("UNAUTHORIZED", f"No API key within {timeout_s:g} s: send "
                     '{"op":"auth","args":["<key>"]} first, or connect with a key.')

    def dropped(self, rate: int) -> bytes:
        return error("RATE_LIMIT_EXCEEDED",
                     f"More than {rate} messages per second; this one was dropped.")

    def flooding(self) -> bytes:
        return error("RATE_LIMIT_EXCEEDED", "Flooding: closing.")

    def binary(self) -> bytes:
        return error("INVALID_JSON",
                     "Binary frames are not supported; send JSON as text frames.")

    def new_state(self) -> None:
        return None

    def parse(self, text: str, state: object = None) -> Request | Invalid:
        """A :class:`Request`, or the error reply (echoing the id once it was read)."""
        try:
            return parse_request(text)
        except FrameError as exc:
            return Invalid(error(exc.code, exc.message, exc.id))
        except ProtocolError as exc:
            return Invalid(error(exc.code, exc.message))
