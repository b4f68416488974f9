"""Publishing app events from a client: the one validation for the native ``publish`` op and
``POST /api/v1/publish``."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from cryptowire.errors import ChannelError, ProtocolError
from cryptowire.events import Event
from cryptowire.jsonnum import dumps_checked
from cryptowire.server.node import ServerNode


async def publish_items(node: ServerNode, items: list[Any]) -> list[dict[str, Any]]:
    """Validate and encode every item first (all or nothing), then publish them, in order.

    Data that cannot be encoded (nested deeper than 254 levels, a lone surrogate) is refused
    here with its item's index, before any item takes an offset."""
    limit = node.settings.server.publish_max_batch
    if len(items) > limit:
        raise ProtocolError("LIMIT_EXCEEDED", f"At most {limit} events per publish.")
    events: list[Event] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "channel" not in item or "data" not in item:
            raise ProtocolError("INVALID_ARGS", f"Item {i}: expected "
                                                '{"channel": "app:<name>", "data": ...}.')
        try:
            channel = node.grammar.parse(item["channel"])
        except ChannelError as exc:
            raise ProtocolError("INVALID_ARGS", f"Item {i}: {exc.reason}") from exc
        if channel.kind != "app":
            raise ProtocolError("INVALID_ARGS", f"Item {i}: only app:<name> channels accept "
                                                f"published events, not '{channel.name}'.")
        try:
            data_json = dumps_checked(item["data"])
        except ValueError as exc:
            raise ProtocolError("INVALID_ARGS", f"Item {i}: 'data' {exc}.") from exc
        # Encoded once, here: the broker writes these bytes as they are.
        events.append(Event(channel=channel.name, data=orjson.Fragment(data_json),
                            source="app"))
    # Concurrently, in order: on the Redis bus the batch is one pipeline (one round trip).
    pubs = await asyncio.gather(*(node.broker.publish(event) for event in events))
    return [{"channel": p.channel, "epoch": p.epoch, "offset": p.offset} for p in pubs]
