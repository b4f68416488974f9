"""One tick's path and one subscribe's path through the hub, function by function.

Serves an in-process hub (memory bus, SQLite store in a temporary directory, the demo
source with its own timer parked, so nothing else runs), connects one client to ``/ws`` and
traces with :func:`sys.setprofile`:

- **subscribe**: from the server reading the client's ``subscribe`` frame to the reply's
  bytes handed to the socket's transport;
- **tick**: from a source's publish (the ``publish`` function the node hands every source,
  called as the demo source calls it) to the event's bytes handed to the client's transport.

Every call of a cryptowire function in that window is one line: its order, its depth (the
cryptowire frames under it), its layer (``docs/architecture.md``) and ``module.function``.
A frame seen for the first time while resuming (a coroutine woken by the loop) is marked
``resumed``; a call reached from the event loop rather than from a cryptowire caller (a
``call_soon`` callback, a task step) is marked ``loop``. A *layer hop* is a call whose caller
(the cryptowire frame under it, or for a loop callback the call before it) is in another
layer. Run::

    PYTHONPATH=src python bench/trace_paths.py            # both paths, as Markdown
    PYTHONPATH=src python bench/trace_paths.py --write    # into docs/architecture.md

``--write`` replaces what stands between the ``paths`` markers of ``docs/architecture.md``
("Paths"); run it when the tree changes.
"""

from __future__ import annotations

import asyncio
import dis
import sys
import tempfile
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = SRC / "cryptowire"
sys.path.insert(0, str(REPO))

from tests.archcheck import Layers, parse_layers  # noqa: E402

CHANNEL = "ticker:BTCUSDT"
_RESUME = dis.opmap["RESUME"]
_COMPREHENSIONS = {"<listcomp>", "<dictcomp>", "<setcomp>", "<genexpr>"}


@dataclass
class Call:
    name: str  # module.qualname, module relative to cryptowire
    module: str
    depth: int
    layer: str
    resumed: bool
    from_loop: bool
    before: str = ""  # the layer it was reached from
    hop: bool = False


@dataclass
class Tracer:
    """Records cryptowire calls between :meth:`start` and the first transport write."""

    layers: Layers
    calls: list[Call] = field(default_factory=list)
    active: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    _seen: list[types.FrameType] = field(default_factory=list)  # kept alive: ids stay unique
    _seen_ids: set[int] = field(default_factory=set)

    def start(self) -> None:
        self.calls.clear()
        self._seen.clear()
        self._seen_ids.clear()
        self.done.clear()
        self.active = True
        sys.setprofile(self._profile)

    def stop(self) -> None:
        sys.setprofile(None)
        self.active = False

    def _module(self, frame: types.FrameType) -> str | None:
        """The cryptowire module of ``frame`` (None: not ours, or a comprehension)."""
        path = Path(frame.f_code.co_filename)
        if not path.is_relative_to(PACKAGE) or frame.f_code.co_name in _COMPREHENSIONS:
            return None
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        return ".".join(parts) or "__init__"

    def _profile(self, frame: types.FrameType, event: str, arg: Any) -> None:
        if not self.active or event != "call":
            return
        code = frame.f_code
        if code.co_name == "write" and code.co_filename.endswith("selector_events.py"):
            self.calls.append(Call("(asyncio) transport.write", "", self._depth(frame),
                                   "kernel", False, False))
            self.active = False
            self.done.set()
            return
        module = self._module(frame)
        if module is None:
            return
        if id(frame) in self._seen_ids:
            return  # a coroutine resuming after an await: the same call, not a new one
        self._seen.append(frame)
        self._seen_ids.add(id(frame))
        # A coroutine frame resumes at a RESUME with a non-zero argument (after a yield or
        # an await): entered before the trace began, woken now.
        at = frame.f_lasti
        resumed = code.co_code[at] == _RESUME and code.co_code[at + 1] != 0
        depth = self._depth(frame)
        caller = self._caller(frame)
        layer = self.layers.name_of(module)
        call = Call(f"{module}.{code.co_qualname}", module, depth, layer, resumed,
                    caller is None and bool(self.calls))
        before = caller if caller is not None else (self.calls[-1].layer if self.calls
                                                    else layer)
        call.before = before
        call.hop = before != layer
        self.calls.append(call)

    def _depth(self, frame: types.FrameType) -> int:
        """How many cryptowire frames are under ``frame``."""
        depth = 0
        up = frame.f_back
        while up is not None:
            if self._module(up) is not None:
                depth += 1
            up = up.f_back
        return depth

    def _caller(self, frame: types.FrameType) -> str | None:
        """The layer of the nearest cryptowire frame under ``frame``."""
        up = frame.f_back
        while up is not None:
            module = self._module(up)
            if module is not None:
                return self.layers.name_of(module)
            up = up.f_back
        return None


def render(title: str, calls: list[Call]) -> str:
    lines = [f"### {title}", "", "```"]
    for i, call in enumerate(calls, 1):
        marks = " ".join(m for m, on in (("resumed", call.resumed), ("loop", call.from_loop),
                                          ("hop", call.hop)) if on)
        indent = "  " * min(call.depth, 12)
        lines.append(f"{i:3}  {call.layer:<10} {indent}{call.name}" + (f"   [{marks}]"
                                                                      if marks else ""))
    functions = [c for c in calls if c.layer != "kernel"]
    fresh = [c for c in functions if not c.resumed]
    hops = sum(c.hop for c in functions)
    vocabulary = sum(c.hop and "vocabulary" in (c.layer, c.before) for c in functions)
    path = " -> ".join(dict.fromkeys(c.layer for c in functions))
    lines += ["```", "",
              f"{len(fresh)} cryptowire calls (and {len(functions) - len(fresh)} resumed), "
              f"{hops} layer hops ({hops - vocabulary} not counting calls into the "
              f"vocabulary); layers in order of first visit: {path}.", ""]
    return "\n".join(lines)


async def trace(directory: Path) -> str:
    from cryptowire.app.node import Node
    from cryptowire.server.app import create_app
    from cryptowire.server.listener import HubSite
    from cryptowire.settings import load_settings

    config = directory / "cryptowire.toml"
    config.touch()
    settings = load_settings(config, **{
        "store": {"url": f"sqlite+aiosqlite:///{directory / 'cryptowire.db'}"},
        "bus": {"url": "memory://"},
        "demo": {"mode": "on", "interval_s": 3600.0},  # the demo's own timer never fires
        "bybit": {"enabled": False},
        "evm": {"enabled": False},
    })
    tracer = Tracer(parse_layers((REPO / "docs" / "architecture.md").read_text()))
    node = Node(settings)
    runner = web.AppRunner(create_app(node))
    await runner.setup()
    site = HubSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    out = []
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(
                f"ws://127.0.0.1:{port}/ws", heartbeat=None) as ws:
            # a first subscribe warms every lazy import and cache up, then is left
            await ws.send_json({"op": "subscribe", "args": ["trade:BTCUSDT"]})
            await ws.receive_json(timeout=5)
            await ws.send_json({"op": "subscribe", "args": [CHANNEL]})
            tracer.start()  # the frame is in the server's socket buffer now
            reply = await ws.receive_json(timeout=5)
            await asyncio.wait_for(tracer.done.wait(), 5)
            tracer.stop()
            assert reply.get("op") != "error", reply
            out.append(render(f"One subscribe (`{CHANNEL}` on `/ws`, demo source)",
                              list(tracer.calls)))
            demo = node.route(node.grammar.parse(CHANNEL))
            data = {"symbol": "BTCUSDT", "price": "1"}
            await demo._emit(CHANNEL, data)  # warm-up tick
            await ws.receive_json(timeout=5)
            tracer.start()
            await demo._emit(CHANNEL, data)  # as its timer does
            await asyncio.wait_for(tracer.done.wait(), 5)
            tracer.stop()
            await ws.receive_json(timeout=5)
            out.append(render("One tick (the demo source's publication to the client's "
                              "socket, memory bus)", list(tracer.calls)))
    finally:
        tracer.stop()
        await runner.cleanup()
    return "\n".join(out)


BEGIN = "<!-- paths: generated by bench/trace_paths.py -->"
END = "<!-- /paths -->"


def write(doc: Path, text: str) -> None:
    """Replace what stands between the markers of ``doc`` with ``text``."""
    current = doc.read_text(encoding="utf-8")
    head, found, rest = current.partition(BEGIN)
    _, found_end, tail = rest.partition(END)
    if not (found and found_end):
        raise SystemExit(f"{doc}: no {BEGIN} ... {END} markers")
    doc.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        text = asyncio.run(trace(Path(tmp)))
    if "--write" in sys.argv[1:]:
        write(REPO / "docs" / "architecture.md", text)
    else:
        print(text)


if __name__ == "__main__":
    main()
