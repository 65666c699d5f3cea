"""The student version of a lab, and the notebooks written for a class (``refcfg labs``).

A lab is one jupytext Markdown notebook (``docs/labs/NN-name.md``) holding the solutions. Code cells
tagged ``solution`` (```python tags=["solution"]) hold only function definitions; the student version
keeps each function's signature and docstring and replaces its body with
``raise NotImplementedError``, so that the grader call after it reports "not written yet" and the
cells before the first exercise run as they are. The cell is tagged ``exercise`` instead.

jupytext and nbformat are imported when a function here is called (``pip install refcfg[labs]``).
"""

from __future__ import annotations

import ast
import numbers
import re
from pathlib import Path

__all__ = [
    "LAB_SOURCES",
    "SOLUTION_TAG",
    "EXERCISE_TAG",
    "lab_sources",
    "lab_number",
    "stub_source",
    "student_notebook",
    "write_labs",
    "FORMATS",
]

_LAB_NAME = re.compile(r"^\d\d-[a-z0-9-]+\.md$")
_CHECKOUT = Path(__file__).resolve().parents[2] / "docs" / "labs"
_INSTALLED = Path(__file__).resolve().parent / "sources"


def _default_sources() -> Path:
    """docs/labs of a source checkout, else the copy installed with the package
    (refcfg/labs/sources, package data), else the checkout's path (for the error message)."""
    for folder in (_CHECKOUT, _INSTALLED):
        if folder.is_dir() and any(_LAB_NAME.match(p.name) for p in folder.iterdir()):
            return folder
    return _CHECKOUT


LAB_SOURCES = _default_sources()
"""Where the lab sources are: docs/labs of a source checkout, or refcfg/labs/sources when installed."""

SOLUTION_TAG = "solution"
EXERCISE_TAG = "exercise"
FORMATS = ("ipynb", "md")


def _jupytext():
    try:
        import jupytext
        import nbformat
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the labs need jupytext and nbformat: pip install 'refcfg[labs]' (or "
            "pip install jupytext nbformat)"
        ) from exc
    return jupytext, nbformat


def lab_sources(source=None) -> list[Path]:
    """The lab files ``NN-name.md`` of ``source`` (default ``LAB_SOURCES``), in order."""
    folder = Path(LAB_SOURCES if source is None else source)
    if not folder.is_dir():
        raise ValueError(
            f"source: no lab folder at {folder} (the labs are docs/labs/ of a source "
            f"checkout, installed as refcfg/labs/sources; pass the folder that holds "
            f"NN-name.md files)"
        )
    found = sorted(p for p in folder.iterdir() if _LAB_NAME.match(p.name))
    if not found:
        raise ValueError(f"source: {folder} holds no lab file named NN-name.md")
    return found


def lab_number(path) -> int:
    """The number NN of a lab file ``NN-name.md``."""
    name = Path(path).name
    if not _LAB_NAME.match(name):
        raise ValueError(f"path: a lab file is named NN-name.md, got {name!r}")
    return int(name[:2])


def stub_source(source: str, where: str = "a solution cell") -> str:
    """The student version of a solution cell: each top-level function keeps its decorators,
    signature and docstring; its body becomes ``raise NotImplementedError``. Anything else than
    function definitions (and comments) in the cell is a ValueError naming ``where``."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"{where} is not valid Python: {exc}") from exc
    lines = source.splitlines()
    out = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            raise ValueError(
                f"{where} must hold only function definitions (the student version "
                f"replaces their bodies), found a {type(node).__name__} at line "
                f"{node.lineno}"
            )
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        body0 = node.body[0]
        has_doc = (
            isinstance(body0, ast.Expr)
            and isinstance(body0.value, ast.Constant)
            and isinstance(body0.value.value, str)
        )
        last = body0.end_lineno if has_doc else body0.lineno - 1
        head = lines[first - 1 : last]
        indent = " " * body0.col_offset
        out.append(
            "\n".join(
                head
                + [f"{indent}# your code here", f'{indent}raise NotImplementedError("{node.name}")']
            )
        )
    if not out:
        raise ValueError(f"{where} defines no function")
    return "\n\n\n".join(out)


def _tags(cell) -> list:
    return list(cell.get("metadata", {}).get("tags", []))


def student_notebook(path, solutions: bool = False):
    """The lab at ``path`` as an nbformat notebook: the student version (solution cells stubbed and
    tagged ``exercise``), or with ``solutions=True`` the lab as written."""
    jupytext, _ = _jupytext()
    path = Path(path)
    nb = jupytext.read(path)
    n_solution = 0
    for i, cell in enumerate(nb.cells):
        tags = _tags(cell)
        if SOLUTION_TAG not in tags:
            continue
        if cell.cell_type != "code":
            raise ValueError(f"{path.name}: cell {i} is tagged {SOLUTION_TAG!r} but is not code")
        n_solution += 1
        if not solutions:
            cell.source = stub_source(cell.source, f"{path.name}, cell {i}")
            cell.metadata["tags"] = [EXERCISE_TAG if t == SOLUTION_TAG else t for t in tags]
            cell.outputs, cell.execution_count = [], None
    if n_solution == 0:
        raise ValueError(
            f"{path.name} has no cell tagged {SOLUTION_TAG!r}: nothing for a student to write"
        )
    return nb


def write_labs(
    out, *, solutions: bool = False, formats=("ipynb",), source=None, labs=None, force: bool = False
) -> list[Path]:
    """Write the student notebooks of every lab (or of the lab numbers in ``labs``) to ``out`` in
    ``formats`` ("ipynb", "md"); with ``solutions=True`` also the full labs to ``out/solutions``.
    Existing files are refused unless ``force``. Returns the paths written.

    Every argument is checked and every notebook is built before the first file is written."""
    formats = _as_formats(formats)
    labs = _as_labs(labs)
    jupytext, nbformat = _jupytext()
    files = lab_sources(source)
    if labs is not None:
        numbers = {lab_number(p): p for p in files}
        missing = [k for k in labs if k not in numbers]
        if missing:
            raise ValueError(
                f"labs: no lab numbered {missing[0]} (have {', '.join(map(str, sorted(numbers)))})"
            )
        files = [numbers[k] for k in sorted(set(labs))]
    out = Path(out)
    plan = []
    for path in files:
        plan.append((out, student_notebook(path, solutions=False), path.stem))
        if solutions:
            plan.append((out / "solutions", student_notebook(path, solutions=True), path.stem))
    targets = [(folder / f"{stem}.{fmt}", nb, fmt) for folder, nb, stem in plan for fmt in formats]
    existing = [str(t) for t, _, _ in targets if t.exists()]
    if existing and not force:
        raise ValueError(
            f"out: {existing[0]} exists (and {len(existing) - 1} more); pass force=True "
            f"(--force) to overwrite"
        )
    written = []
    for target, nb, fmt in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "ipynb":
            nbformat.write(nb, str(target))
        else:
            jupytext.write(nb, str(target), fmt="md")
        written.append(target)
    return written


def _as_formats(formats) -> tuple:
    """``formats`` as a tuple of names among FORMATS (one name alone is accepted)."""
    if isinstance(formats, str):
        formats = (formats,)
    try:
        formats = tuple(formats)
    except TypeError:
        raise TypeError(
            f"formats: must be a format name or a list of them among "
            f"{', '.join(FORMATS)}, got {formats!r}"
        ) from None
    bad = [f for f in formats if not isinstance(f, str) or f not in FORMATS]
    if not formats or bad:
        raise ValueError(
            f"formats: must be among {', '.join(FORMATS)}, got {(bad[0] if bad else formats)!r}"
        )
    return formats


def _as_labs(labs):
    """``labs`` as a tuple of lab numbers (ints; one int alone is accepted), or None for all."""
    if labs is None:
        return None
    items = (labs,) if isinstance(labs, numbers.Integral) else labs
    try:
        items = tuple(items)
    except TypeError:
        raise TypeError(
            f"labs: must be a lab number or a list of lab numbers (ints), got {labs!r}"
        ) from None
    bad = [k for k in items if isinstance(k, bool) or not isinstance(k, numbers.Integral)]
    if bad:
        raise TypeError(f"labs: must be lab numbers (ints), got {bad[0]!r} in {labs!r}")
    if not items:
        raise ValueError("labs: no lab number given (None means every lab)")
    return tuple(int(k) for k in items)
