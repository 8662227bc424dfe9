"""No import cycle among the project's modules, counting imports inside functions and methods too.

The graph is read from the sources with ``ast``: every ``import`` / ``from ... import`` statement anywhere in a
module (module level, functions, methods, relative imports; ``from pkg import name`` where ``name`` is a submodule
points at the submodule) is an edge from that file to the project file it loads. What counts as an edge:

- ``import a.b.c`` / ``from a.b.c import x``: the file of ``a.b.c`` (``a/b/c.py`` or ``a/b/c/__init__.py``);
  ``from a.b import c`` where ``a/b/c.py`` exists: ``a/b/c.py``; otherwise ``a/b/__init__.py``.
- The parent packages Python runs on the way (``a/__init__.py``, ``a/b/__init__.py`` for ``import a.b.c``) are
  not edges: Python runs a package's ``__init__`` before any of its submodules whoever imports them, so such an
  edge adds no ordering, and counting it would make every ``__init__`` that imports its own submodules a cycle.
- Imports under ``if TYPE_CHECKING:`` are edges too: they do not run, but they still say which layer knows which,
  and a type that two layers share belongs below both.
- ``importlib.import_module`` with a name computed at run time (the runner registry) is not seen.

A cycle is reported as a chain of files, e.g. ``compress/a.py -> compress/b.py -> compress/a.py``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("compress", "export", "benchmarks")

# Edges (importer, imported) allowed to close a cycle, each with the reason: none. An entry would be the one edge
# to cut; the test ignores only listed edges, so any other cycle, old or new, fails.
ALLOWED_EDGES: dict[tuple[str, str], str] = {}


def module_files(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``packages`` (``pkg/__init__.py`` is ``pkg``)."""
    found: dict[str, Path] = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in ``tree`` at any depth (functions, methods, ``if`` blocks, ``try`` blocks)."""
    return [node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Module -> the project modules it imports anywhere in its source (see the module docstring for the rules)."""
    files = module_files(root, packages)
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        is_pkg = path.name == "__init__.py"
        for node in _imports(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                if node.level:
                    anchor = name.split(".")
                    anchor = anchor[: len(anchor) - node.level + (1 if is_pkg else 0)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            for target in targets:
                while target and target not in files and "." in target:
                    target = target.rsplit(".", 1)[0]  # `import a.b.func`-style leftovers: the deepest real module
                if target in files and target != name:
                    graph[name].add(target)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module, each sorted, largest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    comps: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                if len(comp) > 1:
                    comps.append(sorted(comp))
    return sorted(comps, key=lambda c: (-len(c), c))


def shortest_cycle(graph: dict[str, set[str]], comp: list[str]) -> list[str]:
    """A shortest cycle through the first module of ``comp`` (breadth-first inside the component)."""
    members = set(comp)
    start = comp[0]
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return path[::-1] + [start]
                if child not in parent:
                    parent[child] = node
                    nxt.append(child)
        frontier = nxt
    return comp


def _file(module: str, files: dict[str, Path], root: Path) -> str:
    return files[module].relative_to(root).as_posix()


def describe_cycles(root: Path, packages: tuple[str, ...], allowed: dict[tuple[str, str], str]) -> list[str]:
    """One line per import cycle left once ``allowed`` edges (as file paths) are dropped: a chain of files, then
    every file of the component when it holds more than the chain."""
    files = module_files(root, packages)
    graph = import_graph(root, packages)
    for src, dst in list((s, d) for s in graph for d in graph[s]):
        if (_file(src, files, root), _file(dst, files, root)) in allowed:
            graph[src].discard(dst)
    lines = []
    for comp in strongly_connected(graph):
        chain = " -> ".join(_file(m, files, root) for m in shortest_cycle(graph, comp))
        rest = "" if len(comp) <= len(set(shortest_cycle(graph, comp))) else \
            f"  (component of {len(comp)}: {', '.join(_file(m, files, root) for m in comp)})"
        lines.append(chain + rest)
    return lines


def test_no_import_cycles():
    cycles = describe_cycles(ROOT, PACKAGES, ALLOWED_EDGES)
    assert not cycles, "import cycles (break them by moving the shared piece down a layer):\n" + "\n".join(cycles)


def test_allowed_edges_exist_and_close_a_cycle():
    """Every allow-listed edge is still in the code and still needed: drop it from the list once it is cut."""
    files = module_files(ROOT, PACKAGES)
    graph = import_graph(ROOT, PACKAGES)
    edges = {(_file(s, files, ROOT), _file(d, files, ROOT)) for s in graph for d in graph[s]}
    assert not set(ALLOWED_EDGES) - edges, f"allow-listed edges no longer in the code: {set(ALLOWED_EDGES) - edges}"
    for edge in ALLOWED_EDGES:
        rest = {k: v for k, v in ALLOWED_EDGES.items() if k != edge}
        assert describe_cycles(ROOT, PACKAGES, rest), f"{edge} closes no cycle any more; remove it from ALLOWED_EDGES"


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cycles_through_function_level_and_relative_imports_are_found(tmp_path):
    _write(tmp_path, "pkg/__init__.py", "")
    _write(tmp_path, "pkg/a.py", "def f():\n    from pkg.sub import b\n    return b\n")
    _write(tmp_path, "pkg/sub/__init__.py", "from . import b\n")
    _write(tmp_path, "pkg/sub/b.py", "class C:\n    def m(self):\n        from ..c import g\n")
    _write(tmp_path, "pkg/c.py", "import pkg.a\n")
    _write(tmp_path, "pkg/d.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n")
    _write(tmp_path, "pkg/e.py", "import os.path\nimport pkg.sub.b.C\n")
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.c"} and graph["pkg.c"] == {"pkg.a"}
    assert graph["pkg.sub"] == {"pkg.sub.b"} and graph["pkg.d"] == {"pkg.c"} and graph["pkg.e"] == {"pkg.sub.b"}
    assert describe_cycles(tmp_path, ("pkg",), {}) == ["pkg/a.py -> pkg/sub/b.py -> pkg/c.py -> pkg/a.py"]
    assert describe_cycles(tmp_path, ("pkg",), {("pkg/c.py", "pkg/a.py"): "test"}) == []
