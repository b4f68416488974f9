"""A :class:`Session` is a plain record: no link back to the hub or the fan-out (issue 11,
item 3). Frames go out, and the session closes, by handing it to the fan-out."""

from __future__ import annotations

import ast
import asyncio
import inspect
from pathlib import Path

from tests.unit.core.test_hub import CountingEncoder, FakeTransport

import cryptowire.core.session as session_module
from cryptowire.core.fanout import Fanout
from cryptowire.core.hub import Hub
from cryptowire.core.session import Session


def _closer(closes: list[tuple[int, int, str]]) -> object:
    def close(session: Session, code: int, reason: str) -> None:
        closes.append((session.id, code, reason))

    return close


def test_a_session_is_built_without_any_hub_and_refers_to_none() -> None:
    closes: list[tuple[int, int, str]] = []
    session = Session(FakeTransport(), CountingEncoder(), _closer(closes))  # type: ignore[arg-type]
    for name in Session.__slots__:
        if name == "__weakref__":
            continue
        value = getattr(session, name)
        assert not isinstance(value, (Fanout, Hub)), name
        # A bound method of the fan-out or hub would be a link back too.
        assert not isinstance(getattr(value, "__self__", None), (Fanout, Hub)), name
    for name in ("outbox", "fanout", "hub", "send", "flush", "close"):
        assert not hasattr(session, name), name


def test_the_session_module_imports_neither_the_fanout_nor_the_hub() -> None:
    tree = ast.parse(Path(inspect.getfile(session_module)).read_text())
    names = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    names |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
              for alias in node.names}
    assert not {n for n in names if n and n.startswith(("cryptowire.core.fanout",
                                                         "cryptowire.core.hub"))}


async def test_the_fanout_sends_flushes_and_closes_a_session_it_is_handed() -> None:
    fanout = Fanout(outbound_limit=1 << 20)
    closes: list[tuple[int, int, str]] = []
    transport = FakeTransport()
    session = Session(transport, CountingEncoder(), _closer(closes))  # type: ignore[arg-type]
    fanout.send(session, b"a;")
    fanout.send(session, b"b;")
    fanout.flush(session)
    assert transport.writes == [b"a;b;"]
    fanout.send(session, b"c;")
    await asyncio.sleep(0)  # the end-of-tick flush
    assert transport.writes == [b"a;b;", b"c;"]
    fanout.send(session, b"last;")
    fanout.close(session, 1001, "bye")
    fanout.close(session, 1000, "again")  # the socket's closer runs once
    assert transport.writes[-1] == b"last;"
    assert closes == [(session.id, 1001, "bye")]
    assert session.closed
