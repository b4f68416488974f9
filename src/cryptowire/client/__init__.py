"""The Python client of cryptowire's native protocol (``docs/client.md``).

::

    from cryptowire.client import Gap, Message, connect

    async with connect("ws://127.0.0.1:8000/ws", api_key=None) as client:
        await client.subscribe("ticker:BTCUSDT", "app:signals")
        async for item in client:
            if isinstance(item, Message):
                print(item.channel, item.offset, item.data)
            elif isinstance(item, Gap):
                print("lost messages on", item.channel, item.reason)

The client reconnects by itself (capped, jittered backoff), authenticates again,
re-subscribes and recovers every message it missed from the hub's history; when history
cannot cover the outage it yields a :class:`Gap`. It depends only on ``cryptowire.wire``,
``cryptowire.events``/``errors`` and aiohttp's client, so it runs without a hub installed
beside it. Errors (:class:`ClientError` and :class:`AuthRejected`) sit in cryptowire's tree
under :class:`~cryptowire.errors.CryptowireError`.
"""

from cryptowire.backoff import Backoff
from cryptowire.client._client import Client, connect
from cryptowire.client._errors import (
    AuthRejected,
    ClientError,
    ConnectError,
    ConnectionLost,
    RequestError,
    RequestTimeout,
    SubscribeError,
)
from cryptowire.client._messages import (
    ClientEvent,
    Disconnected,
    Gap,
    Message,
    Position,
    Reconnected,
    Rejected,
    SubscribeReply,
    UnsubscribeReply,
)

__all__ = [
    "AuthRejected",
    "Backoff",
    "Client",
    "ClientError",
    "ClientEvent",
    "ConnectError",
    "ConnectionLost",
    "Disconnected",
    "Gap",
    "Message",
    "Position",
    "Reconnected",
    "Rejected",
    "RequestError",
    "RequestTimeout",
    "SubscribeError",
    "SubscribeReply",
    "UnsubscribeReply",
    "connect",
]
