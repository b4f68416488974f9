"""``connect()``: the one way to make a :class:`~cryptowire.client._client.Client`."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from cryptowire.client._client import Client


def connect(
    url: str,
    api_key: str | None = None,
    *,
    backoff_base_s: float = 0.5,
    backoff_max_s: float = 30.0,
    connect_timeout_s: float | None = 10.0,
    request_timeout_s: float = 10.0,
    heartbeat_s: float | None = 20.0,
    max_queue: int = 10_000,
    headers: Mapping[str, str] | None = None,
    session: aiohttp.ClientSession | None = None,
) -> Client:
    """A client for the hub at ``url`` (``ws://host:8000/ws``); use ``async with``.

    Entering waits until the first session is up (connected, authenticated with
    ``api_key`` if given), retrying with backoff for up to ``connect_timeout_s`` (``None``:
    forever); after that every drop is retried for ever, with delays doubling from
    ``backoff_base_s`` up to ``backoff_max_s`` (jittered). ``request_timeout_s`` bounds each
    request, including the wait for a reconnect. ``heartbeat_s`` pings the hub so a silently
    dead connection is noticed. At most ``max_queue`` messages are buffered for ``async
    for``; a consumer that falls further behind stops the reading (and the hub may then
    close it as a slow consumer, which the client recovers from).
    """
    return Client(url, api_key, backoff_base_s=backoff_base_s, backoff_max_s=backoff_max_s,
                  connect_timeout_s=connect_timeout_s, request_timeout_s=request_timeout_s,
                  heartbeat_s=heartbeat_s, max_queue=max_queue, headers=headers,
                  session=session)
