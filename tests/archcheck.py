"""The tree read as a graph: modules, their imports, the layer order, sizes (issue 11 items 7, 9).

Pure functions over a source tree (``src/`` and a package name), so the checks can be shown
to work on a tiny synthetic tree as well as on ``src/cryptowire``:

- :func:`scan_imports`: every ``import`` of every module, wherever it stands (module level,
  inside a function, under ``if TYPE_CHECKING:``), resolved to the module it loads;
- :func:`parse_layers`: the layer order written in ``docs/architecture.md`` (the fenced block
  whose info string is ``layers``), bottom-up, so the document and the test cannot drift;
- :func:`upward_imports` and :func:`import_cycles`: what runs up the layers, what goes round;
- :func:`module_sizes` and :func:`function_sizes`: lines, data tables aside.

Module names are relative to the package (``core.hub``); the package's own ``__init__`` is
``__init__``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = "__init__"


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement's target: ``importer`` loads ``imported`` (line ``line``)."""

    importer: str
    imported: str
    line: int
    type_checking: bool
    #: Packages whose ``__init__`` the import also runs (the importer's own are already
    #: running): ``import a.b.c`` from outside ``a.b`` runs ``a.b/__init__`` too.
    implied: tuple[str, ...] = ()

    @property
    def pair(self) -> str:
        return f"{self.importer} -> {self.imported}"


def modules(src: Path, package: str) -> dict[str, Path]:
    """Every module of ``src/package`` by relative dotted name (packages by their name)."""
    base = src / package
    found: dict[str, Path] = {}
    for path in sorted(base.rglob("*.py")):
        parts = list(path.relative_to(base).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts) or ROOT] = path
    return found


def _is_package(name: str, found: Mapping[str, Path]) -> bool:
    return found[name].name == "__init__.py"


def _ancestors(name: str) -> list[str]:
    """``a.b.c`` -> ``[a, a.b]`` (the root package aside: it is everyone's ancestor)."""
    if name == ROOT:
        return []
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _relative(dotted: str, package: str) -> str | None:
    """``cryptowire.core.hub`` -> ``core.hub``; ``cryptowire`` -> root; foreign -> None."""
    if dotted == package:
        return ROOT
    if dotted.startswith(package + "."):
        return dotted[len(package) + 1:]
    return None


def _resolve(name: str, found: Mapping[str, Path]) -> str:
    """The module a dotted name loads: itself, or the longest prefix that is a module."""
    while name not in found and "." in name:
        name = name.rpartition(".")[0]
    return name if name in found else ROOT


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _statements(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with whether it stands under ``if TYPE_CHECKING:``."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, guarded = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, guarded
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend((child, True) for child in node.body)
            stack.extend((child, guarded) for child in node.orelse)
            continue
        stack.extend((child, guarded) for child in ast.iter_child_nodes(node))


def _targets(node: ast.Import | ast.ImportFrom, importer: str, package: str,
             found: Mapping[str, Path]) -> Iterator[str]:
    """The package-relative dotted names one statement names (foreign ones left out)."""
    if isinstance(node, ast.Import):
        for alias in node.names:
            rel = _relative(alias.name, package)
            if rel is not None:
                yield rel
        return
    if node.level:
        here = importer if importer == ROOT or _is_package(importer, found) else (
            importer.rpartition(".")[0] or ROOT)
        for _ in range(node.level - 1):
            here = here.rpartition(".")[0] or ROOT
        parts = [p for p in (here if here != ROOT else "", node.module or "") if p]
        source: str | None = ".".join(parts) or ROOT
    else:
        source = _relative(node.module or "", package)
    if source is None:
        return
    for alias in node.names:
        sub = alias.name if source == ROOT else f"{source}.{alias.name}"
        yield sub if sub in found else source


def scan_imports(src: Path, package: str) -> list[Import]:
    """Every import inside ``src/package`` of a module of that package."""
    found = modules(src, package)
    result: set[Import] = set()
    for importer, path in found.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        own = {*_ancestors(importer), importer}
        for node, guarded in _statements(tree):
            for target in _targets(node, importer, package, found):
                imported = _resolve(target, found)
                if imported == importer:
                    continue
                implied = tuple(a for a in _ancestors(imported) if a not in own and a in found)
                result.add(Import(importer, imported, node.lineno, guarded, implied))
    return sorted(result, key=lambda i: (i.importer, i.line, i.imported))


# --- layers ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Layers:
    """The layer order, bottom first: each layer's name and the modules/packages it holds."""

    names: tuple[str, ...]
    #: entry (a module or package, relative dotted name) -> index of its layer in ``names``
    entries: dict[str, int]
    #: entries marked ``?``: planned by the restructure, may not exist yet
    planned: frozenset[str] = field(default_factory=frozenset)

    def index(self, module: str) -> int | None:
        """The layer of ``module``: its longest entry (a package holds its submodules)."""
        probe = module
        while True:
            if probe in self.entries:
                return self.entries[probe]
            if probe == ROOT or "." not in probe:
                return None
            probe = probe.rpartition(".")[0]

    def name_of(self, module: str) -> str:
        index = self.index(module)
        return "?" if index is None else self.names[index]


_BLOCK = re.compile(r"^```layers[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def parse_layers(markdown: str) -> Layers:
    """Read the fenced ``layers`` block: one layer a line, bottom first, ``name  entry...``.

    ``#`` starts a comment; an entry ending in ``?`` is planned (it need not exist yet).
    """
    match = _BLOCK.search(markdown)
    if match is None:
        raise ValueError("no ```layers block in the document")
    names: list[str] = []
    entries: dict[str, int] = {}
    planned: set[str] = set()
    for raw in match.group(1).splitlines():
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        name, *members = words
        if name in names:
            raise ValueError(f"layer {name!r} listed twice")
        names.append(name)
        for member in members:
            entry = member.rstrip("?")
            if entry in entries:
                raise ValueError(f"{entry!r} placed in two layers")
            entries[entry] = len(names) - 1
            if member.endswith("?"):
                planned.add(entry)
    return Layers(tuple(names), entries, frozenset(planned))


def unplaced(found: Iterable[str], layers: Layers) -> list[str]:
    """Modules no layer holds."""
    return sorted(m for m in found if layers.index(m) is None)


def missing_entries(found: Iterable[str], layers: Layers) -> list[str]:
    """Entries (not marked planned) that name no module or package of the tree."""
    present = set(found)
    return sorted(e for e in layers.entries if e not in layers.planned and e not in present)


def upward_imports(imports: Iterable[Import], layers: Layers) -> list[Import]:
    """Imports whose target sits in a higher layer than the importer."""
    bad = []
    for imp in imports:
        low, high = layers.index(imp.importer), layers.index(imp.imported)
        if low is not None and high is not None and high > low:
            bad.append(imp)
    return bad


# --- cycles ---------------------------------------------------------------------------------

def graph(imports: Iterable[Import], *, leave_out: Iterable[str] = ()) -> dict[str, set[str]]:
    """importer -> modules it loads (implied package ``__init__``s included).

    ``leave_out`` holds pairs (``"a -> b"``) whose statements are dropped, implied edges too.
    """
    skip = set(leave_out)
    edges: dict[str, set[str]] = {}
    for imp in imports:
        if imp.pair in skip:
            continue
        edges.setdefault(imp.importer, set()).update((imp.imported, *imp.implied))
    return edges


def components(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    nodes = sorted(set(edges) | {w for ws in edges.values() for w in ws})
    for start in nodes:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return sorted(found)


def cycle_path(group: list[str], edges: Mapping[str, set[str]]) -> list[str]:
    """One concrete cycle through a component, for the failure message: ``[a, b, c, a]``."""
    members = set(group)
    start = group[0]
    parents: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(edges.get(node, set()) & members):
                if child == start:
                    path: list[str] = [node]
                    while (parent := parents[path[-1]]) is not None:
                        path.append(parent)
                    return [*reversed(path), start]
                if child not in parents:
                    parents[child] = node
                    nxt.append(child)
        frontier = nxt
    return [*group, start]


def import_cycles(imports: Iterable[Import], *, leave_out: Iterable[str] = ()) -> list[str]:
    """Each cycle as ``a -> b -> c -> a`` (one per strongly connected component)."""
    edges = graph(imports, leave_out=leave_out)
    return [" -> ".join(cycle_path(group, edges)) for group in components(edges)]


def on_a_cycle(imports: list[Import], pair: str) -> bool:
    """Whether the statements of ``pair`` close a cycle (their target reaches the importer)."""
    edges = graph(imports)
    same = {m: i for i, group in enumerate(components(edges)) for m in group}
    for imp in imports:
        if imp.pair == pair and imp.importer in same and any(
                same.get(t) == same[imp.importer] for t in (imp.imported, *imp.implied)):
            return True
    return False


# --- sizes ----------------------------------------------------------------------------------

_TABLES = (ast.Dict, ast.List, ast.Set, ast.Tuple)


def _data_lines(tree: ast.AST) -> set[int]:
    """Lines inside multi-line literal displays (dict, list, set, tuple): data tables.

    The opening line stays code (``return {``); the outermost display counts once.
    """
    lines: set[int] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, _TABLES) and node.end_lineno and node.end_lineno > node.lineno:
            lines.update(range(node.lineno + 1, node.end_lineno + 1))
            continue
        stack.extend(ast.iter_child_nodes(node))
    return lines


def module_sizes(src: Path, package: str) -> dict[str, int]:
    """Module -> its lines, data tables aside."""
    sizes = {}
    for name, path in modules(src, package).items():
        text = path.read_text(encoding="utf-8")
        total = len(text.splitlines())
        sizes[name] = total - len(_data_lines(ast.parse(text)))
    return sizes


def function_sizes(src: Path, package: str) -> dict[str, int]:
    """``module:Qual.name`` -> lines from ``def`` to its last line, data tables aside."""
    sizes: dict[str, int] = {}
    for name, path in modules(src, package).items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        data = _data_lines(tree)
        stack: list[tuple[ast.AST, str]] = [(tree, "")]
        while stack:
            node, prefix = stack.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    qual = f"{prefix}{child.name}"
                    if not isinstance(child, ast.ClassDef):
                        span = range(child.lineno, (child.end_lineno or child.lineno) + 1)
                        sizes[f"{name}:{qual}"] = len(span) - len(data.intersection(span))
                    stack.append((child, qual + "."))
                else:
                    stack.append((child, prefix))
    return sizes


# --- verdicts -------------------------------------------------------------------------------

def layer_problems(src: Path, package: str, markdown: str, *,
                   known_upward: Mapping[str, str], known_cycles: Mapping[str, str],
                   ) -> list[str]:
    """Everything wrong with the imports of ``src/package`` against the layers of ``markdown``.

    ``known_upward`` and ``known_cycles`` (``"a -> b"`` -> why it is still there) are today's
    accepted violations: an upward import listed is let through, a cycle is cut at the listed
    imports. An entry that no longer holds (the import is gone, no longer upward, or closes
    no cycle) is a problem too, so the lists only shrink.
    """
    layers = parse_layers(markdown)
    found = modules(src, package)
    imports = scan_imports(src, package)
    problems = [f"{m}: in no layer (place it in the layers block)"
                for m in unplaced(found, layers)]
    problems += [f"{e}: the layers block names it, the tree has no such module"
                 for e in missing_entries(found, layers)]
    upward = upward_imports(imports, layers)
    for imp in upward:
        if imp.pair not in known_upward:
            where = ", under TYPE_CHECKING" if imp.type_checking else ""
            problems.append(
                f"{imp.pair} (line {imp.line}{where}) runs up the layers: "
                f"{layers.name_of(imp.importer)} imports {layers.name_of(imp.imported)}")
    still_upward = {imp.pair for imp in upward}
    problems += [f"{pair}: listed as a known upward import but no longer is one; "
                 "remove it from the list" for pair in known_upward if pair not in still_upward]
    for cycle in import_cycles(imports, leave_out=known_cycles):
        problems.append(f"import cycle: {cycle}")
    problems += [f"{pair}: listed as closing a known cycle but closes none now; "
                 "remove it from the list"
                 for pair in known_cycles if not on_a_cycle(imports, pair)]
    return problems


def size_problems(sizes: Mapping[str, int], limit: int, known: Mapping[str, int],
                  what: str) -> list[str]:
    """Sizes over ``limit`` not in ``known``; known ones that grew, or no longer exceed it."""
    problems = []
    for name, size in sorted(sizes.items()):
        if size > limit and name not in known:
            problems.append(f"{name}: {size} lines, over the {limit}-line limit for {what}")
        elif name in known and size > known[name]:
            problems.append(f"{name}: {size} lines, grew past its listed {known[name]}; "
                            "split it instead")
    for name, listed in known.items():
        if sizes.get(name, 0) <= limit:
            problems.append(f"{name}: listed at {listed} lines, now "
                            f"{sizes.get(name, 'gone')}; remove it from the list")
    return problems
