"""Labs: the lecture (MIT 6.S184 notes, arXiv 2506.02070) as notebooks whose exercises are graded
against the exact fields of Gaussian-mixture data laws.

- :mod:`refcfg.labs.grade`: the ``Grade`` verdict and the comparison with known mistakes;
- :mod:`refcfg.labs.exercises`: one grader per exercise and ``grade(fn, exercise, ...)``;
- :mod:`refcfg.labs.student`: the student version of a lab (solution cells replaced by stubs) and
  ``write_labs`` behind ``refcfg labs``.

The lab sources are jupytext Markdown notebooks in ``docs/labs/``, installed with the package as
``refcfg/labs/sources`` (a link to docs/labs in the repository). ``import refcfg`` does not import
this subpackage; writing notebooks needs jupytext and nbformat (imported when called).
"""

from .exercises import EXERCISES, grade
from .grade import Grade
from .student import LAB_SOURCES, lab_sources, student_notebook, write_labs

__all__ = [
    "grade",
    "Grade",
    "EXERCISES",
    "student_notebook",
    "write_labs",
    "lab_sources",
    "LAB_SOURCES",
]
