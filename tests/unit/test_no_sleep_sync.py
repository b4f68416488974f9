"""Tests wait on conditions, never on a fixed sleep (issue 11 item 8).

Scans every module under ``tests/`` (the peers aside: they pace their own output) for calls
to ``sleep(...)``. A sleep is fine when it is:

- ``sleep(0)``: one turn of the loop, a deterministic yield;
- inside a polling loop: a ``while`` with a condition, or a loop that leaves by ``break``,
  ``return`` or ``raise`` (it waits for something, with a deadline around it);
- listed in :data:`ALLOWED` below, with the reason it is not synchronisation.

Anything else fails: wait for the condition (``tests.waiting.eventually``, ``subscribed``),
a barrier (a marker published after, a round trip), or a hook instead.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

#: ``path::function`` (path relative to ``tests/``, function qualified by its enclosing
#: classes and functions) -> why the sleep there is not synchronisation.
ALLOWED: dict[str, str] = {
    "integration/cluster/test_lease.py::SlowSource.subscribe":
        "a fake source's latency (the slow upstream the test is about)",
    "integration/server/test_faults.py::test_over_the_rate_gets_errors_but_stays_open.served":
        "pacing inside a polled predicate: a faster poll would spend the bucket's tokens",
    "integration/server/test_rest.py::test_publish_a_body_that_arrives_in_pieces.pieces":
        "paces a chunked upload (the client side of the test)",
    "integration/server/test_rest.py::test_publish_chunked_body_over_the_limit_is_413.pieces":
        "paces a chunked upload (the client side of the test)",
    "integration/evm/test_restart.py::test_sigkill_and_restart_loses_and_duplicates_nothing"
    ".mine":
        "paces the mining of swaps (the chain side of the test)",
    "integration/client/test_tail_cli.py::test_tail_json_survives_a_hub_restart"
    ".publish_until_seen":
        "paces a publisher that runs until the client sees its events",
    "integration/client/clienthub.py::publish_numbers":
        "paces a publisher (interval_s between events), like a peer",
    "unit/rfq/test_ticker_rates.py::SlowFeeds.acquire":
        "a fake feed's latency (the slow demand the test is about)",
    "unit/rfq/test_engine.py::"
    "test_the_seeds_empty_amount_waits_for_update_session_and_counts_nothing":
        "nothing happening over ten intervals is the point; there is no event to wait for",
}


def _qualname(stack: list[ast.AST]) -> str:
    return ".".join(n.name for n in stack
                    if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef))


def _exits(loop: ast.While | ast.For | ast.AsyncFor) -> bool:
    """Whether ``loop`` leaves on a condition: a break of its own, a return or a raise."""

    def leaves(node: ast.AST, own: bool) -> bool:
        if isinstance(node, ast.Return | ast.Raise):
            return True
        if isinstance(node, ast.Break):
            return own
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            return False
        nested = isinstance(node, ast.While | ast.For | ast.AsyncFor)  # its breaks are its own
        return any(leaves(child, own and not nested) for child in ast.iter_child_nodes(node))

    return any(leaves(node, True) for node in loop.body)


def _polling(loop: ast.AST) -> bool:
    if isinstance(loop, ast.While):
        constant = isinstance(loop.test, ast.Constant) and bool(loop.test.value)
        return not constant or _exits(loop)
    return isinstance(loop, ast.For | ast.AsyncFor) and _exits(loop)


def _is_sleep(call: ast.Call) -> bool:
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name == "sleep"


def _zero(call: ast.Call) -> bool:
    return (len(call.args) == 1 and isinstance(call.args[0], ast.Constant)
            and call.args[0].value == 0)


def fixed_sleeps(path: Path, root: Path = TESTS) -> Iterator[tuple[str, int]]:
    """``(path::function, line)`` of every sleep in ``path`` outside a polling loop."""
    tree = ast.parse(path.read_text(), str(path))
    rel = path.relative_to(root).as_posix()

    def walk(node: ast.AST, stack: list[ast.AST], loop: ast.AST | None) -> Iterator[
            tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                yield from walk(child, [*stack, child], None)
                continue
            inner = child if isinstance(child, ast.While | ast.For | ast.AsyncFor) else loop
            if isinstance(child, ast.Call) and _is_sleep(child) and not _zero(child) \
                    and not (loop is not None and _polling(loop)):
                yield f"{rel}::{_qualname(stack)}", child.lineno
            yield from walk(child, stack, inner)

    yield from walk(tree, [], None)


def _modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "peers" not in p.relative_to(TESTS).parts)


def test_no_fixed_sleep_synchronises_a_test() -> None:
    found = {site: line for path in _modules() for site, line in fixed_sleeps(path)}
    new = sorted(f"{site} (line {line})" for site, line in found.items() if site not in ALLOWED)
    assert not new, ("a fixed sleep outside a polling loop; wait on a condition "
                     "(tests.waiting.eventually), a barrier or a hook instead:\n"
                     + "\n".join(new))


def test_the_allow_list_names_only_sleeps_that_remain() -> None:
    found = {site for path in _modules() for site, _ in fixed_sleeps(path)}
    assert sorted(set(ALLOWED) - found) == []


def test_the_scan_tells_a_polling_loop_from_a_fixed_sleep(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import asyncio\n"
        "async def poll(p):\n"
        "    while not p():\n"
        "        await asyncio.sleep(0.01)\n"
        "    for _ in range(9):\n"
        "        if p():\n"
        "            break\n"
        "        await asyncio.sleep(0.01)\n"
        "    await asyncio.sleep(0)\n"
        "async def fixed():\n"
        "    await asyncio.sleep(0.3)\n"
        "    for _ in range(3):\n"
        "        await asyncio.sleep(0.1)\n"
        "    while True:\n"
        "        await asyncio.sleep(1)\n")
    assert list(fixed_sleeps(sample, tmp_path)) == [
        ("sample.py::fixed", 11), ("sample.py::fixed", 13), ("sample.py::fixed", 15)]
