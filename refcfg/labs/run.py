"""Execute a lab notebook and read its graders' verdicts (for CI and ``verification/run_labs.py``).

nbclient, nbformat and an ipykernel kernel (default "python3") are imported when called. The kernel
inherits this process's environment (PYTHONPATH included), so it imports the same refcfg, except
MPLBACKEND: the kernel draws its figures inline, as a student's notebook does (a headless backend
set for the tests would skip drawing them, and with it any error a figure raises).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = [
    "execute",
    "verdicts",
    "first_error_cell",
    "grade_calls",
    "solution_failures",
    "VERDICT",
    "GRADE_CALL",
]

VERDICT = re.compile(r"^(PASS|FAIL) [a-z_]+: .*$", re.MULTILINE)
"""A grader's verdict line as it prints (``refcfg.labs.grade.Grade``)."""

GRADE_CALL = re.compile(r"labs\.grade\(")
"""A grader call in a lab's code."""


def execute(nb, *, cwd=None, timeout: int = 120, kernel_name: str = "python3"):
    """Run every cell of ``nb`` in order (stopping at the first cell that raises). Returns
    ``(nb, error)``: the notebook with its outputs, and None or a one-line description of the
    error ("cell 7: NotImplementedError: ...")."""
    try:
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("running the labs needs nbclient: pip install 'refcfg[labs]'") from exc
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
        raise ValueError(f"timeout must be a positive int (seconds per cell), got {timeout!r}")
    resources = {"metadata": {"path": str(Path(cwd))}} if cwd is not None else {}
    client = NotebookClient(
        nb, timeout=timeout, kernel_name=kernel_name, allow_errors=False, resources=resources
    )
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    try:
        client.execute(env=env)
    except CellExecutionError as exc:
        index = first_error_cell(nb)
        return nb, f"cell {index}: {exc.ename}: {exc.evalue}"
    return nb, None


def first_error_cell(nb):
    """Index of the first code cell whose outputs hold an error, or None."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and any(
            o.get("output_type") == "error" for o in cell.get("outputs", [])
        ):
            return i
    return None


def _texts(cell):
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            yield out.get("text", "")
        elif out.get("output_type") in ("execute_result", "display_data"):
            yield out.get("data", {}).get("text/plain", "")


def verdicts(nb) -> list[str]:
    """The grader verdict lines (PASS/FAIL ...) printed by the executed notebook, in order."""
    return [
        m.group(0)
        for cell in nb.cells
        if cell.cell_type == "code"
        for text in _texts(cell)
        for m in VERDICT.finditer(text)
    ]


def grade_calls(nb) -> int:
    """The number of grader calls (``labs.grade(``) in the code cells of ``nb``."""
    return sum(len(GRADE_CALL.findall(c.source)) for c in nb.cells if c.cell_type == "code")


def solution_failures(nb, error=None) -> list[str]:
    """What is wrong with a lab executed with its solutions (empty when it is right): the error
    that stopped it, any FAIL verdict, and a number of verdicts other than its grader calls (a
    grader whose verdict was not printed)."""
    lines = verdicts(nb)
    problems = [f"stopped: {error}"] if error else []
    problems += [v for v in lines if not v.startswith("PASS ")]
    calls = grade_calls(nb)
    if len(lines) != calls:
        problems.append(f"{len(lines)} verdict(s) printed for {calls} grader call(s)")
    return problems
