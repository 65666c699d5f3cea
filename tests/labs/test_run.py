"""Every lab runs top to bottom with its solutions and every grader in it says PASS; the student
version runs up to its first exercise and stops there with the stub's NotImplementedError, after
the grader has said "not written yet".

Each lab is executed in a fresh ``python3`` kernel (nbclient; the kernel inherits PYTHONPATH, so it
imports this refcfg). CI step: ``python -m ipykernel install --sys-prefix`` where the environment has
no python3 kernelspec. A cell may take at most 120 s (a guard, not a timing: the labs' wall times are
measured by ``verification/run_labs.py``)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("nbclient")
pytest.importorskip("jupytext")

from refcfg.labs.run import execute, first_error_cell, verdicts  # noqa: E402
from refcfg.labs.student import SOLUTION_TAG, lab_sources, student_notebook  # noqa: E402

pytestmark = pytest.mark.slow

LABS = lab_sources()
GRADE_CALL = re.compile(r"labs\.grade\(")


@pytest.mark.parametrize("path", LABS, ids=lambda p: p.name)
def test_lab_runs_with_its_solutions_and_every_grader_passes(path):
    nb, error = execute(student_notebook(path, solutions=True), cwd=path.parent, timeout=120)
    assert error is None, error
    lines = verdicts(nb)
    calls = sum(len(GRADE_CALL.findall(c.source)) for c in nb.cells if c.cell_type == "code")
    assert len(lines) == calls >= 2, (calls, lines)
    assert all(v.startswith("PASS ") for v in lines), lines


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
