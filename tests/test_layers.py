"""The import direction of docs/architecture.md, checked on the source with ``ast``.

The layers and the layer of every top-level module and subpackage of refcfg/ are the data table
tests/layers.toml (core -> guidance -> sampling -> experiments -> plotting -> commands, lowest
first). Every ``import`` and ``from ... import`` statement of refcfg/ is read, both the
module-level ones (executed at import, including those under a module-level ``if``/``try``) and
the function-level ones (inside a ``def``: executed on first call, still a dependency); each
failure names the statement as file:line and says which kind it is. Imports made by name at run
time (``importlib.import_module`` of a study, an audit or a command in the same package) are not
statements and are not read.

- nothing imports a module of a higher layer (both kinds);
- no circle of imports between modules (both kinds; a package's ``__init__`` is a module that
  depends on what it imports);
- the kernel modules import only NumPy, Numba and the few standard modules of the table, and
  one another: they never see the public layer.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "refcfg"
TABLE = tomllib.loads((Path(__file__).with_name("layers.toml")).read_text())
ORDER = TABLE["order"]


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


MODULES = _modules()


class Import:
    """One imported refcfg module (or outside module) of one statement."""

    def __init__(self, source: str, target: str, kind: str, line: int):
        self.source, self.target, self.kind, self.line = source, target, kind, line

    def where(self) -> str:
        return f"{MODULES[self.source].relative_to(ROOT)}:{self.line} ({self.kind}-level)"


def _targets(module: str, is_package: bool, node) -> list[str]:
    """The modules a statement imports: for ``from X import a``, X.a where that is a module of
    refcfg, else X (a name defined in X's module or package ``__init__``)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module
    return [f"{target}.{a.name}" if f"{target}.{a.name}" in MODULES else target for a in node.names]


def _walk(node, in_function: bool):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_function
        inner = in_function or isinstance(
            child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
        )
        yield from _walk(child, inner)


def _imports() -> list[Import]:
    out = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node, in_function in _walk(tree, False):
            kind = "function" if in_function else "module"
            for target in _targets(module, path.name == "__init__.py", node):
                out.append(Import(module, target, kind, node.lineno))
    return out


IMPORTS = _imports()


def _owner(module: str) -> str | None:
    """The row of the table for ``module``: the longest listed name that is it or a package of it
    (``refcfg`` itself only for the package's own ``__init__``)."""
    if module == "refcfg":
        return "refcfg" if "refcfg" in TABLE["layer"] else None
    rows = [
        r for r in TABLE["layer"] if r != "refcfg" and (module == r or module.startswith(r + "."))
    ]
    return max(rows, key=len) if rows else None


def _layer(module: str) -> int:
    return ORDER.index(TABLE["layer"][_owner(module)])


def test_table_has_one_row_per_top_level_module():
    tops = {"refcfg"} | {".".join(m.split(".")[:2]) for m in MODULES if m != "refcfg"}
    rows = set(TABLE["layer"])
    assert not tops - rows, (
        f"refcfg modules without a layer in tests/layers.toml: {sorted(tops - rows)}"
    )
    assert not rows - tops, f"rows of tests/layers.toml naming no module: {sorted(rows - tops)}"
    bad = {r: v for r, v in TABLE["layer"].items() if v not in ORDER}
    assert not bad, f"layers not in order = {ORDER}: {bad}"


def test_table_order_is_the_map():
    """The layers of the table appear in this order in the data-flow chart of the map."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    chart = text.split("```text", 1)[1].split("```", 1)[0]
    positions = [m.start() for name in ORDER[1:] for m in [re.search(rf"\b{name}\b", chart)] if m]
    assert len(positions) == len(ORDER) - 1, f"the map's chart does not name every layer of {ORDER}"
    assert positions == sorted(positions), (
        f"the map's chart orders the layers differently from {ORDER}"
    )


def test_nothing_imports_upward():
    bad = {}
    for imp in IMPORTS:
        if imp.target not in MODULES:
            continue
        src, dst = _layer(imp.source), _layer(imp.target)
        if dst > src:
            bad[
                f"{imp.where()}: {imp.source} [{ORDER[src]}] imports {imp.target} [{ORDER[dst]}]"
            ] = 1
    assert not bad, "imports from a higher layer:\n" + "\n".join(bad)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_no_import_cycles():
    edges = {m: set() for m in MODULES}
    for imp in IMPORTS:
        if imp.target in MODULES and imp.target != imp.source:
            edges[imp.source].add(imp.target)
    found = _cycles(edges)
    lines = []
    for comp in found:
        members = set(comp)
        lines.append(f"circle of {len(comp)} modules: {', '.join(comp)}")
        lines += dict.fromkeys(
            f"    {imp.where()}: {imp.source} imports {imp.target}"
            for imp in IMPORTS
            if imp.source in members and imp.target in members and imp.source != imp.target
        )
    assert not found, "import circles:\n" + "\n".join(lines)


def test_kernels_import_only_numpy_and_numba():
    kernels = set(TABLE["kernels"])
    assert kernels <= set(MODULES), (
        f"kernel modules that do not exist: {sorted(kernels - set(MODULES))}"
    )
    allowed = set(TABLE["kernel_imports"])
    bad = dict.fromkeys(
        f"{imp.where()}: {imp.source} imports {imp.target}"
        for imp in IMPORTS
        if imp.source in kernels
        and imp.target not in kernels
        and imp.target.split(".")[0] not in allowed
    )
    head = f"kernel modules import only {sorted(allowed)} and one another:\n"
    assert not bad, head + "\n".join(bad)


def test_the_checks_can_fail():
    """The resolution reads relative and function-level imports (a control: the upward import
    paths -> guidance written in a function is found and classified)."""
    src = "def f():\n    from .guidance import base\n    from . import convert\n"
    tree = ast.parse(src)
    found = [
        (t, in_function)
        for node, in_function in _walk(tree, False)
        for t in _targets("refcfg.paths", False, node)
    ]
    assert found == [("refcfg.guidance.base", True), ("refcfg.convert", True)]
    assert _layer("refcfg.guidance.base") > _layer("refcfg.paths")
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(edges) == [["a", "b", "c"]]
