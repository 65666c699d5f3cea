"""Conversions among velocity, score, x0 = E[z|x_t] and eps = E[eps|x_t] (eq. 41/42).

Oracle: the path's own exact quantities (themselves checked against Gaussian conditioning in
test_paths.py) and the identities x = alpha x0 + beta eps, score = -eps / beta,
u = dalpha x0 + dbeta eps. Round trips in float64 at interior t: rel <= 1e-10.
At the endpoints each conversion either raises ValueError or returns the correct finite value; the
mathematically undefined ones (the map (value, x) -> target is not determined) must raise.
"""

import itertools

import numpy as np
import pytest

import refcfg
import refcfg.convert as cv

from _oracles import random_gmm_params, rel_err

KINDS = ("velocity", "score", "x0", "eps")
PAIRS = [(s, t) for s, t in itertools.product(KINDS, KINDS) if s != t]
SCHEDULES = ["linear", "cosine", "sqrt", "linear-vp", "polynomial", "vp"]


def _path(name, seed=0):
    rng = np.random.default_rng(seed)
    path = refcfg.GMMPath(refcfg.GMM(*random_gmm_params(rng, 3, 2, "full")), refcfg.schedule(name))
    return path, 2.5 * rng.standard_normal((12, 2))


def _quantities(path, x, t):
    return {
        "velocity": path.velocity(x, t),
        "score": path.score(x, t),
        "x0": path.x0(x, t),
        "eps": path.eps(x, t),
    }


def test_identities_between_path_quantities():
    """The path's four quantities satisfy x = alpha x0 + beta eps, score = -eps/beta,
    u = dalpha x0 + dbeta eps (independent of convert)."""
    for name in SCHEDULES:
        path, x = _path(name)
        s = path.schedule
        for t in (0.1, 0.5, 0.9):
            q = _quantities(path, x, t)
            al, be, da, db = (float(getattr(s, f)(t)) for f in ("alpha", "beta", "dalpha", "dbeta"))
            assert rel_err(al * q["x0"] + be * q["eps"], x) < 1e-12
            assert rel_err(-q["eps"] / be, q["score"]) < 1e-12
            assert rel_err(da * q["x0"] + db * q["eps"], q["velocity"]) < 1e-11


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("src,dst", PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_convert_matches_path_quantities(name, src, dst):
    path, x = _path(name)
    sch = path.schedule
    fn = getattr(cv, f"{src}_to_{dst}")
    for t in (0.1, 0.3, 0.5, 0.8, 0.95):
        q = _quantities(path, x, t)
        got = cv.convert(q[src], src, dst, x, t, sch)
        assert rel_err(got, q[dst], floor=1e-8) < 1e-10, t
        np.testing.assert_allclose(fn(q[src], x, t, sch), got, rtol=1e-15, atol=0)
        # round trip
        back = cv.convert(got, dst, src, x, t, sch)
        assert rel_err(back, q[src], floor=1e-8) < 1e-10, t


def test_convert_with_array_t_and_schedule_name():
    path, x = _path("cosine")
    t = np.linspace(0.05, 0.95, len(x))
    q = _quantities(path, x, t)
    got = cv.convert(q["score"], "score", "velocity", x, t, path.schedule)
    assert rel_err(got, q["velocity"]) < 1e-10


# (source, target, t) that are undefined for the "linear" schedule: alpha_0 = 0 or beta_1 = 0 or
# a_1 = 0 makes the target a function of information that the source does not carry. (velocity ->
# score at t = 0 is defined: p_0 = N(0, I) has score -x whatever the velocity says.)
MUST_RAISE = [
    ("score", "velocity", 0.0),
    ("score", "x0", 0.0),
    ("eps", "x0", 0.0),
    ("eps", "velocity", 0.0),
    ("velocity", "score", 1.0),
    ("x0", "score", 1.0),
    ("eps", "score", 1.0),
    ("x0", "eps", 1.0),
    ("x0", "velocity", 1.0),
]


@pytest.mark.parametrize("src,dst,t", MUST_RAISE, ids=[f"{a}->{b}@{t}" for a, b, t in MUST_RAISE])
def test_undefined_endpoint_conversions_raise(src, dst, t):
    path, x = _path("linear")
    q = _quantities(path, x, t)
    with pytest.raises(ValueError, match="t"):
        cv.convert(q[src], src, dst, x, t, path.schedule)
    with pytest.raises(ValueError, match="t"):
        getattr(cv, f"{src}_to_{dst}")(q[src], x, t, path.schedule)


@pytest.mark.parametrize("name", ["linear", "cosine", "sqrt", "vp", "polynomial"])
def test_endpoint_conversions_raise_or_are_correct(name):
    """At t = 0 and t = 1 every conversion raises ValueError or returns a finite value equal to the
    path's exact target (rel <= 1e-10): never inf/NaN, never a wrong number."""
    path, x = _path(name)
    for t in (0.0, 1.0):
        q = _quantities(path, x, t)
        for src, dst in PAIRS:
            try:
                got = cv.convert(q[src], src, dst, x, t, path.schedule)
            except ValueError:
                continue
            assert np.all(np.isfinite(got)), (src, dst, t)
            # the exact target may be 0 (eps at t = 1): error relative to the inputs' scale
            scale = max(1.0, np.max(np.abs(q[dst])), np.max(np.abs(q[src])), np.max(np.abs(x)))
            assert np.max(np.abs(got - q[dst])) <= 1e-12 * scale, (src, dst, t)


@pytest.mark.parametrize("name", ["linear", "cosine", "sqrt", "linear-vp", "polynomial"])
def test_velocity_to_score_is_endpoint_safe(name):
    """Where alpha_t = 0 the score is -x / beta_t^2 (p_t = N(0, beta_t^2 I)), whatever the velocity
    (even polynomial's, where dalpha_0 = 0 makes the multiplied-through form 0/0), and arrays of
    times mixing t = 0 with interior times give the path's score row by row (rel <= 1e-10)."""
    path, x = _path(name)
    be0 = float(path.schedule.beta(0.0))
    for u in (path.velocity(x, 0.0), np.zeros_like(x), 1e3 * x):
        got = cv.velocity_to_score(u, x, 0.0, path.schedule)
        np.testing.assert_array_equal(got, -x / be0**2)
    np.testing.assert_allclose(path.score(x, 0.0), -x / be0**2, rtol=1e-14, atol=0)
    t = np.where(np.arange(len(x)) % 2 == 0, 0.0, 0.6)
    got = cv.velocity_to_score(path.velocity(x, t), x, t, path.schedule)
    assert rel_err(got, path.score(x, t)) < 1e-10


def test_velocity_to_score_at_t1_names_t():
    path, x = _path("linear")
    with pytest.raises(ValueError, match=r"t = 1\.0: .*a_t = 0"):
        cv.velocity_to_score(path.velocity(x, 1.0), x, 1.0, path.schedule)


def test_convert_bad_arguments():
    path, x = _path("linear")
    u = path.velocity(x, 0.5)
    with pytest.raises(ValueError, match="source|velo"):
        cv.convert(u, "velo", "score", x, 0.5, path.schedule)
    with pytest.raises(ValueError, match="target|scor"):
        cv.convert(u, "velocity", "scor", x, 0.5, path.schedule)
    with pytest.raises(ValueError, match="shape|value|x"):
        cv.convert(u[:3], "velocity", "score", x, 0.5, path.schedule)
    with pytest.raises(ValueError, match="t"):
        cv.convert(u, "velocity", "score", x, 1.5, path.schedule)
