"""The graders' common part: the pass rule, the choice of diagnosis and the verdict's one line."""

from __future__ import annotations

import numpy as np

from refcfg.labs.grade import ATOL, RTOL, Case, Grade, Mistake, compare_cases

X = np.arange(12.0).reshape(6, 2) - 5.0


def _cases(f):
    return [Case(f"t = {t:g}", (X, t), f(X, t)) for t in (0.0, 0.5, 1.0)]


def exact(x, t):
    return (1.0 + t) * x


def test_pass_within_tolerance_and_fail_just_outside():
    rel = 0.5 * RTOL
    g = compare_cases("ex", lambda x, t: exact(x, t) * (1 + rel), _cases(exact), [], what="x")
    assert g.passed and str(g).startswith("PASS ex: correct")
    g = compare_cases("ex", lambda x, t: exact(x, t) * (1 + 10 * RTOL), _cases(exact), [], what="x")
    assert not g.passed and g.code == "unexplained"


def test_zero_exact_rows_use_the_absolute_tolerance():
    zero = lambda x, t: 0.0 * x
    g = compare_cases(
        "ex", lambda x, t: zero(x, t) + 0.5 * ATOL / np.sqrt(2), _cases(zero), [], what="x"
    )
    assert g.passed, str(g)
    assert "max rel err" in g.sentence and "e+2" not in g.sentence  # no 1e-300 floor blow-up


def test_the_matching_mistake_is_named_and_an_indistinguishable_one_is_not():
    same = Mistake("same", "looks like the exact value everywhere.", exact)
    doubled = Mistake("doubled", "twice the value.", lambda x, t: 2 * exact(x, t))
    g = compare_cases("ex", lambda x, t: 2 * exact(x, t), _cases(exact), [same, doubled], what="x")
    assert g.code == "doubled" and g.sentence == "twice the value."
    # a mistake that equals the exact value explains nothing, even listed first
    g = compare_cases("ex", lambda x, t: 3 * exact(x, t), _cases(exact), [same, doubled], what="x")
    assert g.code == "unexplained"


def test_nonfinite_output_is_said():
    def f(x, t):
        return exact(x, t) / (t - 1.0) * (t - 1.0) if t == 1.0 else exact(x, t)

    with np.errstate(all="ignore"):
        g = compare_cases("ex", f, _cases(exact), [], what="x")
    assert g.code == "nonfinite" and "t = 1" in g.sentence


def test_skipped_cases_are_listed_with_their_reason():
    cases = _cases(exact) + [Case("t = 2", (X, 2.0), None, "outside [0, 1]")]
    g = compare_cases("ex", exact, cases, [], what="x")
    assert g.passed and "t = 2 left out: outside [0, 1]" in g.where
    assert "compared at t = 0, 0.5, 1" in g.where


def test_grade_prints_one_verdict_line():
    g = Grade("cfg", False, "wrong.", "x", "compared at t = 0")
    assert str(g).splitlines()[0] == "FAIL cfg: wrong." and repr(g) == str(g) and not g
