"""refcfg.testing: the public hypothesis strategies generate valid, varied, well-conditioned objects
and shrink to small ones; the assertion helpers pass exact fields and fail wrong ones."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st

import refcfg
from refcfg import testing as rt

from _oracles import PathOracle, schedule_formula

pytestmark = pytest.mark.slow

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FIND = settings(
    max_examples=300, deadline=None, database=None, phases=[Phase.generate, Phase.shrink]
)


def _rebuild(g):
    """Pass the parameters through the validating public constructor again."""
    return refcfg.GMM(g.weights, g.means, g.covs)


@FAST
@given(rt.gmms(max_condition=20.0))
def test_gmms_are_valid_and_well_conditioned(g):
    assert isinstance(g, refcfg.GMM)
    assert 1 <= g.K <= 4 and 1 <= g.d <= 3
    assert abs(g.weights.sum() - 1) < 1e-12 and g.weights.min() >= 0.1 / 1.0 / g.K - 1e-12
    assert rt.condition_number(g) <= 20.0 * (1 + 1e-9)
    assert g.eigvals.min() >= 0.05 * (1 - 1e-9) and g.eigvals.max() <= 2.0 * 20.0 * (1 + 1e-9)
    assert np.all(np.abs(g.means) <= 3.0)
    g2 = _rebuild(g)
    np.testing.assert_allclose(g2.covs, g.covs, rtol=1e-12, atol=1e-12)
    # the density is usable: finite log-probabilities and scores at the means
    assert np.all(np.isfinite(g.log_prob(g.means))) and np.all(np.isfinite(g.score(g.means)))


@FAST
@given(rt.labeled_gmms())
def test_labeled_gmms_are_valid(m):
    assert isinstance(m, refcfg.LabeledGMM)
    assert 1 <= m.n_classes <= 3 and all(g.d == m.d for g in m.classes)
    assert abs(m.class_probs.sum() - 1) < 1e-12
    refcfg.LabeledGMM([_rebuild(g) for g in m.classes], m.class_probs)


@FAST
@given(rt.schedules())
def test_schedules_are_valid(s):
    v0, v1 = s.values(0.0), s.values(1.0)
    assert v1.alpha == 1.0 and v1.beta == 0.0 and v0.beta > 0
    grid = np.linspace(0, 1, 21)
    assert np.all(np.isfinite(s.alpha(grid))) and np.all(np.isfinite(s.beta_dbeta(grid)))


@FAST
@given(rt.paths(), rt.times(endpoints=False, margin=0.05), st.data())
def test_paths_match_an_independent_oracle(path, t, data):
    """Generated paths are usable: refcfg's velocity agrees with explicit Gaussian conditioning
    (tests/_oracles.py) at generated points, relative error <= 1e-8 (bounded condition numbers keep
    the solves accurate)."""
    x = data.draw(rt.points(path.d, n=st.integers(1, 6)))
    sv = schedule_formula(path.schedule.name, t, **path.schedule.params)
    m = path.mixture.marginal
    orc = PathOracle(m.weights, m.means, m.covs, sv)
    got = path.velocity(x, t)
    rt.assert_fields_close(got, orc.velocity(x), rtol=1e-8, atol=1e-10)


def test_times_with_and_without_endpoints():
    assert find(rt.times(), lambda t: t == 1.0, settings=FIND) == 1.0
    assert find(rt.times(), lambda t: t == 0.0, settings=FIND) == 0.0

    @FAST
    @given(rt.times(endpoints=False, margin=1e-3))
    def inner(t):
        assert 1e-3 <= t <= 1 - 1e-3

    inner()


def test_points_labels_weights():
    @FAST
    @given(
        rt.points(3, n=st.integers(1, 5), scale=2.0), rt.labels(3, 7), rt.guidance_weights(0.5, 4.0)
    )
    def inner(x, y, w):
        assert x.shape[1] == 3 and 1 <= x.shape[0] <= 5 and x.dtype == np.float64
        assert np.all(np.isfinite(x)) and np.all(np.abs(x) <= 2.0)
        assert y.shape == (7,) and y.dtype == np.int64 and set(y.tolist()) <= {-1, 0, 1, 2}
        assert 0.5 <= w <= 4.0

    inner()
    assert (
        find(rt.labels(3, 4), lambda y: np.any(y == refcfg.NULL), settings=FIND)
        .tolist()
        .count(refcfg.NULL)
        == 1
    )
    nonull = find(rt.labels(2, 4, null=False), lambda y: True, settings=FIND)
    assert nonull.tolist() == [0, 0, 0, 0]


# ------------------------------------------------------------------------------------------------
# variety and shrinking: hypothesis.find returns the minimal example satisfying a condition
# ------------------------------------------------------------------------------------------------


def test_gmms_shrink_to_small_problems():
    g = find(rt.gmms(), lambda g: True, settings=FIND)
    assert g.K == 1 and g.d == 1 and g.cov_type == "isotropic"
    assert np.all(g.means == 0)
    g = find(rt.gmms(), lambda g: g.K >= 2, settings=FIND)
    assert g.K == 2 and g.d == 1 and g.cov_type == "isotropic"
    g = find(rt.gmms(), lambda g: g.cov_type == "full", settings=FIND)
    assert g.K == 1 and g.d == 1
    g = find(rt.gmms(), lambda g: g.cov_type == "full" and g.d >= 2, settings=FIND)
    assert g.K == 1 and g.d == 2
    assert rt.condition_number(g) == pytest.approx(1.0)  # eigenvalue spread shrinks to 0


def test_generators_are_varied():
    """Over 200 derandomized draws every structural feature appears: K = 1..4, d = 1..3, the three
    covariance types, condition numbers above half the bound, 1..3 classes, every schedule."""
    seen = {"K": set(), "d": set(), "cov": set(), "cond": 0.0, "C": set(), "sched": set()}

    @settings(
        max_examples=200,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(rt.gmms(max_condition=20.0), rt.labeled_gmms(d=1, n_components=1), rt.schedules())
    def inner(g, m, s):
        seen["K"].add(g.K), seen["d"].add(g.d), seen["cov"].add(g.cov_type)
        seen["cond"] = max(seen["cond"], rt.condition_number(g))
        seen["C"].add(m.n_classes), seen["sched"].add(s.name)

    inner()
    assert seen["K"] == {1, 2, 3, 4} and seen["d"] == {1, 2, 3}
    assert seen["cov"] == set(rt.COV_TYPES) and seen["C"] == {1, 2, 3}
    assert 10 < seen["cond"] <= 20 * (1 + 1e-9)
    assert seen["sched"] == set(rt.SCHEDULE_NAMES)
    assert find(rt.schedules(), lambda s: True, settings=FIND).name == "linear"
    m = find(rt.labeled_gmms(), lambda m: m.n_classes == 3, settings=FIND)
    assert m.n_classes == 3 and m.d == 1 and all(c.K == 1 for c in m.classes)


def test_labeled_gmm_shrinks_to_one_class():
    m = find(rt.labeled_gmms(), lambda m: True, settings=FIND)
    assert m.n_classes == 1 and m.d == 1 and m.classes[0].K == 1


def test_strategy_arguments_are_checked():
    # checked when the strategy is built, not at the first draw
    with pytest.raises(ValueError, match="max_condition"):
        rt.gmms(max_condition=0.5)
    with pytest.raises(ValueError, match="cov_types"):
        rt.gmms(cov_types=("banana",))
    with pytest.raises(ValueError, match="variance"):
        rt.labeled_gmms(variance=(2.0, 1.0))
    with pytest.raises(ValueError, match="names"):
        rt.schedules(names=("nope",))
    with pytest.raises(ValueError, match="margin"):
        rt.times(endpoints=False, margin=0.7)
    with pytest.raises(TypeError, match="d must be"):
        rt.gmms(d=0)


# ------------------------------------------------------------------------------------------------
# assertion helpers
# ------------------------------------------------------------------------------------------------


def _oracle_velocity(mix):
    m = mix.marginal

    def fn(x, t, y):
        assert np.all(y == refcfg.NULL)
        return PathOracle(m.weights, m.means, m.covs, schedule_formula("linear", t[0])).velocity(x)

    return fn


def test_assert_field_matches():
    mix = refcfg.problem("gauss-1d")
    good = _oracle_velocity(mix)
    rep = rt.assert_field_matches(good, problem=mix, kind="velocity", y="null", n=8, rtol=1e-8)
    assert rep.passed
    with pytest.raises(AssertionError, match=r"(?s)FAIL.*small_error"):
        rt.assert_field_matches(lambda x, t, y: good(x, t, y) * 1.001, problem=mix, y="null", n=8)


def test_assert_fields_close():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    rt.assert_fields_close(a * (1 + 1e-9), a, rtol=1e-8)
    with pytest.raises(AssertionError, match="1 of 2 rows differ.*worst row 1"):
        rt.assert_fields_close(a + [[0, 0], [0, 1e-3]], a)
    with pytest.raises(AssertionError, match="shape mismatch"):
        rt.assert_fields_close(a, a[:1])
    with pytest.raises(AssertionError, match="rows differ"):
        rt.assert_fields_close(a * np.nan, a)
    # exact_values is the reference check_field uses
    path = refcfg.GMMPath(refcfg.problem("gauss-1d"))
    x = np.array([[0.3], [-1.0]])
    np.testing.assert_array_equal(rt.exact_values(path, "score", x, 0.5, None), path.score(x, 0.5))
