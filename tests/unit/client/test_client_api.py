"""The public API of ``cryptowire.client`` is chosen in its ``__init__`` and pinned here;
the package depends only on ``wire/``, ``events.py``, ``errors.py`` (and aiohttp/orjson)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import cryptowire.client as client

PUBLIC = {
    "AuthRejected", "Backoff", "Book", "BookError", "Client", "ClientError", "ClientEvent",
    "ConnectError",
    "ConnectionLost", "Disconnected", "Gap", "Message", "Position", "Reconnected",
    "Rejected", "RequestError", "RequestTimeout", "SubscribeError", "SubscribeReply",
    "UnsubscribeReply", "connect",
}


def test_public_names_are_pinned() -> None:
    assert set(client.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(client, name) is not None


def test_connect_signature() -> None:
    params = inspect.signature(client.connect).parameters
    assert list(params)[:2] == ["url", "api_key"]
    assert params["api_key"].default is None
    assert params["backoff_max_s"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["backoff_max_s"].default == 30.0


def test_message_types_are_frozen_dataclasses() -> None:
    msg = client.Message("app:x", "update", "e1", 1, 0, "app", {"a": "1"})
    assert [f for f in msg.__dataclass_fields__] == [
        "channel", "type", "epoch", "offset", "ts", "source", "data"]
    gap = client.Gap("app:x", "why")
    for frozen in (msg, gap):
        try:
            frozen.channel = "other"  # type: ignore[misc]
        except AttributeError:
            continue
        raise AssertionError(f"{type(frozen).__name__} is mutable")


def test_errors_sit_in_cryptowires_tree() -> None:
    from cryptowire.errors import AuthError, CryptowireError

    assert issubclass(client.AuthRejected, AuthError)
    assert issubclass(client.ClientError, CryptowireError)
    assert issubclass(client.SubscribeError, ValueError)
    assert issubclass(client.ConnectError, ConnectionError)
    assert issubclass(client.RequestTimeout, TimeoutError)


ALLOWED = ("cryptowire.client", "cryptowire.wire", "cryptowire.events", "cryptowire.errors",
           "cryptowire.jsonnum",  # jsonnum: a leaf (Decimal -> plain string), stdlib only
           "cryptowire.closecodes", "cryptowire.backoff",  # leaves too: stdlib only
           "cryptowire.books")  # the sans-I/O order book: stdlib and jsonnum only


def test_client_imports_only_wire_events_errors() -> None:
    package = Path(client.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name.startswith("cryptowire"):
                    assert name.startswith(ALLOWED), f"{path.name} imports {name}"
            assert "cryptowire.wire.native" not in names, "wire.native pulls in the core"
