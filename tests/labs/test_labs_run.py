"""Every lab runs top to bottom with its solutions and every grader in it says PASS; the student
version runs up to its first exercise and stops there with the stub's NotImplementedError, after
the grader has said "not written yet".

Each lab is executed in a fresh ``python3`` kernel (nbclient; the kernel inherits PYTHONPATH, so it
imports this refcfg). CI step: ``python -m ipykernel install --sys-prefix`` where the environment has
no python3 kernelspec. A cell may take at most 120 s (a guard, not a timing: the labs' wall times are
measured by ``verification/run_labs.py``)."""

from __future__ import annotations

import pytest

pytest.importorskip("nbclient")
pytest.importorskip("jupytext")

from refcfg.labs.run import (
    execute,
    first_error_cell,
    grade_calls,
    solution_failures,
    verdicts,
)
from refcfg.labs.student import SOLUTION_TAG, lab_sources, student_notebook

pytestmark = pytest.mark.slow

LABS = lab_sources()


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.name)
def test_lab_runs_with_its_solutions_and_every_grader_passes(path):
    nb, error = execute(student_notebook(path, solutions=True), cwd=path.parent, timeout=120)
    assert error is None, error
    lines = verdicts(nb)
    assert len(lines) == grade_calls(nb) >= 2, lines
    assert all(v.startswith("PASS ") for v in lines), lines
    assert solution_failures(nb) == []


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.name)
def test_student_version_runs_up_to_the_first_exercise(path):
    nb = student_notebook(path)
    first = next(i for i, c in enumerate(nb.cells) if "exercise" in c.metadata.get("tags", []))
    nb, error = execute(nb, cwd=path.parent, timeout=120)
    assert error is not None and "NotImplementedError" in error, error
    stopped = first_error_cell(nb)
    assert stopped is not None and stopped > first + 1, (first, stopped, error)
    # every cell before the first exercise ran, and the first grader call reported the stub
    assert all(c.execution_count is not None for c in nb.cells[:first] if c.cell_type == "code")
    lines = verdicts(nb)
    assert lines and all(v.startswith("FAIL ") and "not written yet" in v for v in lines), lines
    assert SOLUTION_TAG not in str(nb.cells[first].metadata)


def test_verdicts_are_read_from_every_kind_of_output():
    import nbformat

    nb = nbformat.v4.new_notebook()
    a = nbformat.v4.new_code_cell("g")
    a.outputs = [
        nbformat.v4.new_output(
            "execute_result",
            {"text/plain": "PASS cfg: correct: ok\n     (compared at t = 0)"},
            execution_count=1,
        )
    ]
    b = nbformat.v4.new_code_cell("print(g)")
    b.outputs = [
        nbformat.v4.new_output(
            "stream", name="stdout", text="FAIL sde_step: the noise enters twice.\n"
        )
    ]
    c = nbformat.v4.new_code_cell("f()")
    c.outputs = [
        nbformat.v4.new_output("error", ename="NotImplementedError", evalue="f", traceback=[])
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("PASS not: a verdict"), a, b, c]
    assert verdicts(nb) == ["PASS cfg: correct: ok", "FAIL sde_step: the noise enters twice."]
    assert first_error_cell(nb) == 3


def _graded(*outputs):
    import nbformat

    nb = nbformat.v4.new_notebook()
    for text in outputs:
        cell = nbformat.v4.new_code_cell("print(labs.grade(f, 'cfg'))")
        if text is not None:
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text + "\n")]
        nb.cells.append(cell)
    return nb


def test_solution_failures_counts_fail_verdicts_and_missing_ones():
    ok = "PASS cfg: correct."
    assert solution_failures(_graded(ok, ok)) == []
    assert solution_failures(_graded(ok, "FAIL cfg: wrong.")) == ["FAIL cfg: wrong."]
    assert solution_failures(_graded(ok, None)) == ["1 verdict(s) printed for 2 grader call(s)"]
    assert solution_failures(_graded(ok), "cell 3: KeyError: k") == ["stopped: cell 3: KeyError: k"]
