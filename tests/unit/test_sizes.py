"""Modules stay under 400 lines and functions under 60, data tables aside (issue 11 item 9).

A module is measured in physical lines, a function from its ``def`` to its last line (a
nested function counts in its parent too). Lines inside a multi-line dict, list, set or
tuple display are data, not code, and are left out (so a literal table, or the OpenAPI
document built as one literal, is measured by the code around it).

Today's offenders are listed with their size: a listed one may shrink but not grow, and
one back under the limit must leave the list, so the lists only shrink.
"""

from __future__ import annotations

from pathlib import Path

from tests.archcheck import function_sizes, module_sizes, size_problems

SRC = Path(__file__).resolve().parents[2] / "src"
MODULE_LIMIT = 400
FUNCTION_LIMIT = 60

#: module -> its lines today (each to be split by whoever owns it).
KNOWN_MODULES: dict[str, int] = {
}

#: ``module:function`` -> its lines today.
KNOWN_FUNCTIONS: dict[str, int] = {
}


def test_modules_stay_under_the_limit() -> None:
    problems = size_problems(module_sizes(SRC, "cryptowire"), MODULE_LIMIT, KNOWN_MODULES,
                             "a module")
    assert not problems, "\n".join(problems)


def test_functions_stay_under_the_limit() -> None:
    problems = size_problems(function_sizes(SRC, "cryptowire"), FUNCTION_LIMIT,
                             KNOWN_FUNCTIONS, "a function")
    assert not problems, "\n".join(problems)


# --- the measure itself, on a tiny tree -----------------------------------------------------

SAMPLE = '''\
"""Doc."""

TABLE = {
    "a": 1,
    "b": 2,
}


class Box:
    def method(self) -> dict[str, int]:
        x = 1
        return {
            "x": x,
            "y": 2,
        }

    async def other(self) -> None:
        def inner() -> None:
            pass
        inner()
'''


def test_sizes_leave_data_tables_aside(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "mod.py").write_text(SAMPLE)
    assert module_sizes(tmp_path, "pkg") == {"__init__": 0, "mod": 20 - 3 - 3}
    assert function_sizes(tmp_path, "pkg") == {
        "mod:Box.method": 6 - 3, "mod:Box.other": 4, "mod:Box.other.inner": 2}


def test_the_lists_only_shrink() -> None:
    sizes = {"a": 10, "b": 12, "c": 5, "d": 11}
    assert size_problems(sizes, 10, {"b": 12, "c": 7, "d": 10, "e": 20}, "a module") == [
        "d: 11 lines, grew past its listed 10; split it instead",
        "c: listed at 7 lines, now 5; remove it from the list",
        "e: listed at 20 lines, now gone; remove it from the list"]
