"""Every arrow points one way (issue 11 item 7).

Reads the imports of ``src/cryptowire`` (all of them: module level, inside functions, under
``if TYPE_CHECKING:``) and fails on

- a module that no layer of ``docs/architecture.md`` holds, or a layer entry naming nothing;
- an import that runs up the layer order written in ``docs/architecture.md`` (the fenced
  ``layers`` block, bottom-up: the document is the order, the test only reads it);
- an import cycle between modules, type-checking-only imports included (and the package
  ``__init__`` an import runs: ``import a.b.c`` runs ``a/b/__init__.py`` as well).

The restructure of issue 11 emptied both exception lists below; an entry added there later
must name its reason, and an entry that no longer holds fails too, so the lists only shrink.
"""

from __future__ import annotations

from pathlib import Path

from tests.archcheck import layer_problems

REPO = Path(__file__).resolve().parents[2]
SRC = REPO / "src"
DOC = REPO / "docs" / "architecture.md"

#: ``importer -> imported`` running up the layers, and why (issue 11, "Import cycles").
KNOWN_UPWARD: dict[str, str] = {}

#: ``importer -> imported``: the import that closes a known cycle (leaving these out leaves
#: no cycle), and why it is there.
KNOWN_CYCLES: dict[str, str] = {}


def test_the_imports_follow_the_layers_of_docs_architecture() -> None:
    problems = layer_problems(SRC, "cryptowire", DOC.read_text(encoding="utf-8"),
                              known_upward=KNOWN_UPWARD, known_cycles=KNOWN_CYCLES)
    assert not problems, "\n".join(problems)


# --- the checker itself, on a tiny tree -----------------------------------------------------

LAYERS = """
Some prose first.

```layers
base     __init__ low planned?   # bottom
middle   mid
top      high
```
"""


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    src = tmp_path / "src"
    for name, text in {"__init__.py": "", **files}.items():
        path = src / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return src


def check(src: Path, upward: dict[str, str] | None = None,
          cycles: dict[str, str] | None = None) -> list[str]:
    return layer_problems(src, "pkg", LAYERS, known_upward=upward or {},
                          known_cycles=cycles or {})


CLEAN = {
    "low.py": "X = 1\n",
    "mid/__init__.py": "from pkg.mid.part import Y\n",
    "mid/part.py": "from pkg import low\nY = low.X\n",
    "high.py": "from .mid import part\nimport pkg.low\n",
}


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    assert check(tree(tmp_path, CLEAN)) == []


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    src = tree(tmp_path, {**CLEAN, "low.py": "def f():\n    from pkg.high import Z\n",
                          "high.py": "Z = 1\n"})
    assert check(src) == ["low -> high (line 2) runs up the layers: base imports top"]


def test_an_upward_type_checking_import_is_caught(tmp_path: Path) -> None:
    src = tree(tmp_path, {**CLEAN, "high.py": "Z = 1\n", "low.py": (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import high\n")})
    assert check(src) == [
        "low -> high (line 3, under TYPE_CHECKING) runs up the layers: base imports top"]


def test_a_cycle_is_caught(tmp_path: Path) -> None:
    src = tree(tmp_path, {**CLEAN, "mid/part.py": "from . import other\n",
                          "mid/other.py": "from pkg.mid.part import Y\n"})
    assert check(src) == ["import cycle: mid.other -> mid.part -> mid.other"]


def test_a_type_checking_cycle_is_caught(tmp_path: Path) -> None:
    src = tree(tmp_path, {**CLEAN, "mid/part.py": (
        "import typing\nif typing.TYPE_CHECKING:\n    from pkg.mid.other import W\n"),
        "mid/other.py": "from pkg.mid import part\n"})
    assert check(src) == ["import cycle: mid.other -> mid.part -> mid.other"]


def test_a_cycle_through_a_package_init_is_caught(tmp_path: Path) -> None:
    # high.py imports mid.part, which runs mid/__init__.py, which imports high.
    src = tree(tmp_path, {**CLEAN, "mid/__init__.py": "from pkg import high\n",
                          "mid/part.py": "", "high.py": "from pkg.mid.part import Y\n"})
    assert check(src) == [
        "mid -> high (line 1) runs up the layers: middle imports top",
        "import cycle: high -> mid -> high"]


def test_known_violations_pass_and_stale_ones_fail(tmp_path: Path) -> None:
    src = tree(tmp_path, {**CLEAN, "low.py": "import pkg.high\n",
                          "high.py": "import pkg.low\n"})
    assert check(src, upward={"low -> high": "why"}, cycles={"low -> high": "why"}) == []
    fixed = tree(tmp_path, CLEAN)
    assert check(fixed, upward={"low -> high": "why"}, cycles={"low -> high": "why"}) == [
        "low -> high: listed as a known upward import but no longer is one; "
        "remove it from the list",
        "low -> high: listed as closing a known cycle but closes none now; "
        "remove it from the list"]


def test_every_module_needs_a_layer_and_every_entry_a_module(tmp_path: Path) -> None:
    src = tree(tmp_path, {**CLEAN, "stray.py": ""})
    layers = LAYERS.replace("high\n", "high gone\n")
    assert layer_problems(src, "pkg", layers, known_upward={}, known_cycles={}) == [
        "stray: in no layer (place it in the layers block)",
        "gone: the layers block names it, the tree has no such module"]
