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

A :class:`Book` keeps a local order book from a ``book:`` channel's frames and says whether
it is valid (``docs/client.md``, "Order books"). ``subscribe(..., interval_ms=250)`` asks for
conflated delivery.

The client reconnects by itself (capped, jittered backoff), authenticates again,
re-subscribes and recovers every message it missed from the hub's history; when history
cannot cover the outage it yields a :class:`Gap`. It depends only on ``cryptowire.wire``,
``cryptowire.events``/``errors``/``books`` and aiohttp's client, so it runs without a hub
installed beside it. Errors (:class:`ClientError`, :class:`AuthRejected`, :class:`BookError`)
sit in cryptowire's tree under :class:`~cryptowire.errors.CryptowireError`.
"""

from cryptowire.backoff import Backoff
from cryptowire.books import BookError
from cryptowire.client._book import Book
from cryptowire.client._client import Client
from cryptowire.client._connect import connect
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
    "Book",
    "BookError",
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
