"""Tests of refcfg.guidance.linear_terms: the decomposition of lowerable fields into exact terms.

Oracles: the expected coefficients written out by hand for each tree, and the field's own NumPy
velocity/score (``GuidedField._linear``, ``GMMPath.cfg_velocity``, ``classifier_guided_velocity``:
other code paths than the term sum) compared with sum_g coef_g tcoef_g(t) u_t(x | path_g, y_g) built
from ``GMMPath.velocity`` at interior times and at both endpoints, float64, tolerance 1e-12 (relative
to the size of the field).
"""

from __future__ import annotations

import numpy as np
import pytest

from refcfg import NULL, GMMPath, problem
from refcfg.guidance import (
    CFGField,
    ClassifierGuidedField,
    ExactField,
    GuidedField,
    LinearTerm,
    NotLowerable,
    Scaled,
    guided,
    linear_terms,
)
from refcfg.mixture import GMM, LabeledGMM

TIMES = (0.0, 0.3, 0.77, 1.0)
TOL = 1e-12


@pytest.fixture(scope="module")
def p1():
    return GMMPath(problem("two-class-2d"), "cosine")


@pytest.fixture(scope="module")
def p2():
    mix = LabeledGMM(
        [
            GMM([1.0], [[1.0, -2.0]], [[[0.5, 0.1], [0.1, 0.3]]]),
            GMM([0.4, 0.6], [[-1.0, 0.0], [2.0, 2.0]], [[0.2, 0.2], [1.0, 0.5]]),
        ],
        [0.3, 0.7],
    )
    return GMMPath(mix, "cosine")


def _x(n=6, seed=0):
    return 1.5 * np.random.default_rng(seed).standard_normal((n, 2))


def _term_sum(terms, x, t, kind="velocity"):
    """sum_g coef_g tcoef_g(t) q_t(x | path_g, y_g), q = velocity or score, per particle."""
    n = x.shape[0]
    out = np.zeros_like(x)
    for term in terms:
        q = getattr(term.path, kind)(x, t, term.y)
        tc = 1.0 if term.tcoef is None else term.tcoef(np.full(n, t))[:, None]
        out += np.reshape(term.coef, (-1, 1)) * tc * q
    return out


def _close(a, b):
    scale = max(1.0, float(np.max(np.abs(b))))
    assert np.max(np.abs(a - b)) <= TOL * scale, np.max(np.abs(a - b))


def test_exact_leaves(p1):
    assert linear_terms(p1) == [LinearTerm(p1, None, 1.0, None)]
    (term,) = linear_terms(ExactField(p1, 1))
    assert term.path is p1 and term.y == 1 and term.coef == 1.0 and term.tcoef is None
    (term,) = linear_terms(ExactField(p1, NULL))
    assert term.y is None


def test_tree_coefficients_and_velocity(p1, p2):
    # 1.7 * CFG(p1, y=0, w=2.5) + (1 - 1.7) * [0.3 u(p2, y=1) + 0.7 u(p2)]
    inner = guided(ExactField(p2, 1), p2, 0.3)
    f = guided(CFGField(p1, 0, 2.5), inner, 1.7)
    terms = linear_terms(f)
    expect = [
        (p1, 0, 1.7 * 2.5),
        (p1, None, 1.7 * (1 - 2.5)),
        (p2, 1, (1 - 1.7) * 0.3),
        (p2, None, (1 - 1.7) * (1 - 0.3)),
    ]
    assert len(terms) == len(expect)
    for term, (path, y, c) in zip(terms, expect):
        assert term.path is path and term.y == y and term.tcoef is None
        assert abs(term.coef - c) <= 1e-15
    x = _x()
    for t in TIMES:
        _close(_term_sum(terms, x, t), f.velocity(x, t))
        _close(_term_sum(terms, x, t, "score"), f.score(x, t))


def test_per_particle_weights_and_labels(p1, p2):
    n = 5
    y = np.array([0, 1, NULL, 1, 0])
    w = np.array([0.0, 1.0, 2.5, -1.0, 4.0])
    w2 = np.linspace(0.5, 2.0, n)
    f = GuidedField(CFGField(p1, y, w), GuidedField(ExactField(p2, 0), ExactField(p2, y), 3.0), w2)
    terms = linear_terms(f)
    assert [np.ndim(t.coef) for t in terms] == [1, 1, 1, 1]
    np.testing.assert_array_equal(terms[0].y, y)
    assert terms[1].y is None and terms[2].y == 0
    np.testing.assert_array_equal(terms[3].y, y)
    np.testing.assert_allclose(terms[0].coef, w2 * w, rtol=0, atol=1e-15)
    np.testing.assert_allclose(terms[1].coef, w2 * (1 - w), rtol=0, atol=1e-15)
    np.testing.assert_allclose(terms[2].coef, (1 - w2) * 3.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(terms[3].coef, (1 - w2) * (1 - 3.0), rtol=0, atol=1e-15)
    x = _x(n, 1)
    for t in TIMES:
        _close(_term_sum(terms, x, t), f.velocity(x, t))


def test_per_particle_lengths_must_agree(p1):
    f = GuidedField(CFGField(p1, 0, np.ones(4)), ExactField(p1), np.ones(3))
    with pytest.raises(ValueError, match="lengths 4 and 3|lengths 3 and 4"):
        linear_terms(f)
    g = GuidedField(ExactField(p1, np.array([0, 1, 0])), ExactField(p1), np.ones(4))
    with pytest.raises(ValueError, match=r"different lengths \[3, 4\]"):
        linear_terms(g)


def test_classifier_guidance_terms(p1):
    y = np.array([0, 1, NULL, 1])
    for yy, w in ((1, 3.0), (y, np.array([2.0, -0.5, 3.0, 1.0]))):
        f = ClassifierGuidedField(p1, yy, w)
        terms = linear_terms(f)
        assert len(terms) == 2 and terms[1].y is None
        x = _x(4, 2)
        for t in TIMES:
            # the exact-field identity u + w a_t grad log p_t(y|x) = w u(x|y) + (1 - w) u(x) (eqs. 59-62)
            _close(_term_sum(terms, x, t), f.velocity(x, t))


class _Twice:
    """A user field declaring its own decomposition: 2 g(t) * inner, g(t) = 1 + t."""

    def __init__(self, inner):
        self.inner = inner
        self.d = inner.d

    def velocity(self, x, t):
        return 2.0 * (1.0 + np.reshape(t, (-1, 1))) * self.inner.velocity(x, t)

    def _terms(self):
        return [Scaled(self.inner, 2.0, lambda t: 1.0 + t)]


def test_time_factors_compose(p1):
    f = GuidedField(_Twice(_Twice(CFGField(p1, 1, 2.0))), ExactField(p1, 0), 0.5)
    terms = linear_terms(f)
    assert len(terms) == 3
    tt = np.array([0.0, 0.25, 1.0])
    np.testing.assert_allclose(terms[0].tcoef(tt), (1 + tt) ** 2, rtol=0, atol=1e-15)
    assert terms[0].coef == 0.5 * 4.0 * 2.0 and terms[2].tcoef is None
    x = _x()
    for t in TIMES:
        _close(_term_sum(terms, x, t), f.velocity(x, t))


# ------------------------------------------------------------------ the subclass rule


class _ZeroVelocity(ExactField):
    def velocity(self, x, t):
        return np.zeros_like(np.asarray(x, dtype=float))


class _ZeroVelocityDeclared(_ZeroVelocity):
    def _terms(self):
        return [LinearTerm(self.path, self.y, 0.0, None)]


class _Below(_ZeroVelocity):
    """Overrides nothing itself; the override sits in its base _ZeroVelocity."""


class _Renamed(ExactField):
    def __repr__(self):
        return "renamed"


class _CFGScore(CFGField):
    def score(self, x, t):
        return super().score(x, t) * 2


class _PathEval(GMMPath):
    def _eval(self, *args, **kwargs):
        return super()._eval(*args, **kwargs)


def test_subclass_override_is_refused(p1):
    with pytest.raises(
        NotLowerable, match="_ZeroVelocity overrides velocity without declaring _terms"
    ):
        linear_terms(_ZeroVelocity(p1, 0))
    with pytest.raises(
        NotLowerable, match=r"_ZeroVelocity \(a base of _Below\) overrides velocity"
    ):
        linear_terms(_Below(p1, 0))
    with pytest.raises(NotLowerable, match="_CFGScore overrides score"):
        linear_terms(_CFGScore(p1, 0, 2.0))
    with pytest.raises(NotLowerable, match="backend='numpy'"):  # inside a tree
        linear_terms(guided(ExactField(p1, 1), _ZeroVelocity(p1, 0), 2.0))
    with pytest.raises(NotLowerable, match="_PathEval overrides _eval"):  # in the path of a leaf
        linear_terms(ExactField(_PathEval(p1.mixture, p1.schedule), 0))
    f = ExactField(p1, 0)
    f.velocity = lambda x, t: x
    with pytest.raises(NotLowerable, match="own attribute velocity"):
        linear_terms(f)


def test_subclass_that_declares_or_changes_no_math_lowers(p1):
    (term,) = linear_terms(_ZeroVelocityDeclared(p1, 1))
    assert term.coef == 0.0 and term.y == 1
    (term,) = linear_terms(_Renamed(p1, 1))
    assert term.coef == 1.0 and term.y == 1


def test_non_fields_are_refused(p1):
    class UserField:
        d = 2

        def velocity(self, x, t):
            return -x

    with pytest.raises(NotLowerable, match="UserField is not a linear combination"):
        linear_terms(UserField())
    with pytest.raises(NotLowerable, match="UserField"):
        linear_terms(guided(ExactField(p1, 0), UserField(), 2.0))

    class BadTerms:
        def _terms(self):
            return [3.0]

    with pytest.raises(TypeError, match="BadTerms._terms"):
        linear_terms(BadTerms())


# ------------------------------------------------------------------ random trees (hypothesis)

from functools import lru_cache  # noqa: E402

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@lru_cache(maxsize=1)
def _paths():
    mix2 = LabeledGMM(
        [
            GMM([1.0], [[1.0, -2.0]], [[[0.5, 0.1], [0.1, 0.3]]]),
            GMM([0.4, 0.6], [[-1.0, 0.0], [2.0, 2.0]], [[0.2, 0.2], [1.0, 0.5]]),
        ],
        [0.3, 0.7],
    )
    return GMMPath(problem("two-class-2d"), "cosine"), GMMPath(mix2, "cosine")


def _tree(draw, p1, p2, depth):
    """A random lowerable field: a leaf (path, ExactField, CFGField, ClassifierGuidedField) or a
    GuidedField of two random subtrees."""
    kind = draw(st.integers(0, 4 if depth < 3 else 3))
    path = draw(st.sampled_from([p1, p2]))
    y = draw(st.sampled_from([None, 0, 1]))
    w = draw(st.floats(-2.0, 4.0, allow_nan=False))
    if kind == 0:
        return path
    if kind == 1:
        return ExactField(path, y)
    if kind == 2:
        return CFGField(path, y, w)
    if kind == 3:
        return ClassifierGuidedField(path, 0 if y is None else y, w)
    return GuidedField(_tree(draw, p1, p2, depth + 1), _tree(draw, p1, p2, depth + 1), w)


@given(st.data(), st.sampled_from([0.0, 0.4, 1.0]))
def test_random_trees_lower_to_their_velocity(data, t):
    """For random GuidedField trees of every lowerable leaf kind, the term sum equals the field's own
    NumPy velocity (tolerance 1e-12 relative to the sum of |coef| |u| over the terms, the rounding
    scale of a combination with large cancelling weights)."""
    p1, p2 = _paths()
    f = _tree(data.draw, p1, p2, 0)
    x = _x(4, 3)
    terms = linear_terms(f)
    got = _term_sum(terms, x, t)
    scale = sum(
        np.max(np.abs(np.reshape(term.coef, (-1, 1)) * term.path.velocity(x, t, term.y)))
        for term in terms
    )
    assert np.max(np.abs(got - f.velocity(x, t))) <= 1e-12 * max(1.0, scale)
