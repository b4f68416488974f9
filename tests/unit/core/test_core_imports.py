"""The core and the low-level modules import nothing above them (issue 11, items 1 and 5).

Type-checking-only imports count too: a cycle through ``if TYPE_CHECKING:`` is still a cycle
for a reader. ``core/node.py`` is the application and leaves core (it is not checked here).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import cryptowire

PACKAGE = Path(cryptowire.__file__).parent
#: The bottom layer: each may import only the others.
LOW_LEVEL = ("backoff", "books", "clock", "closecodes", "errors", "events", "jsonnum",
             "logthrottle", "onchain", "redaction", "tasks")
#: What core may import from cryptowire besides itself.
CORE_MAY_IMPORT = tuple(f"cryptowire.{name}" for name in LOW_LEVEL) + ("cryptowire.core",)


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {n for n in names if n == "cryptowire" or n.startswith("cryptowire.")}


def allowed(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_core_imports_only_core_and_the_low_level_modules() -> None:
    for path in sorted((PACKAGE / "core").glob("*.py")):
        if path.name == "node.py":
            continue
        for name in imports_of(path):
            assert allowed(name, CORE_MAY_IMPORT), f"core/{path.name} imports {name}"


def test_low_level_modules_import_only_each_other() -> None:
    mine = tuple(f"cryptowire.{name}" for name in LOW_LEVEL)
    for name in LOW_LEVEL:
        for imported in imports_of(PACKAGE / f"{name}.py"):
            assert allowed(imported, mine), f"{name}.py imports {imported}"


def test_no_cycle_among_the_core_modules() -> None:
    graph = {p.stem: {n.rsplit(".", 1)[-1] for n in imports_of(p)
                      if n.startswith("cryptowire.core.")}
             for p in (PACKAGE / "core").glob("*.py") if p.name not in ("node.py", "__init__.py")}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cyclic = sorted(m for m in graph if reaches(m, m, {m}))
    assert cyclic == [], f"import cycle through {cyclic}"


def test_importing_the_hub_loads_no_backend_or_settings() -> None:
    """The hub (and the wire dialects that use its types) load neither a broker, a store,
    pydantic nor an HTTP stack."""
    probe = ("import sys, cryptowire.core.hub, cryptowire.core.session; "
             "print(' '.join(sorted(sys.modules)))")
    path = os.pathsep.join(filter(None, [str(PACKAGE.parent), os.environ.get("PYTHONPATH")]))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": path}).stdout.split()
    heavy = [m for m in out if m.split(".")[0] in ("pydantic", "redis", "aiohttp", "sqlalchemy")
             or allowed(m, ("cryptowire.bus", "cryptowire.store", "cryptowire.sources",
                            "cryptowire.server", "cryptowire.settings"))]
    assert heavy == []
