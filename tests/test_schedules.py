"""Schedules against their textbook formulas and finite differences (a_t, b_t: eq. 41).

Oracles: the closed forms written out independently in tests/_oracles.py; derivatives by a 5-point
central difference in float64 (h = 1e-4, truncation ~h^4, round-off ~1e-16/h), asserted to 1e-9 relative.
"""

import numpy as np
import pytest

import refcfg

from _oracles import SCHEDULE_CASES, fd_derivative, schedule_formula

T_INTERIOR = np.array([0.013, 0.1, 0.25, 0.5, 0.77, 0.9, 0.987])
IDS = [f"{n}{p}" for n, p in SCHEDULE_CASES]


def _sched(name, params):
    return refcfg.schedule(name, **params)


@pytest.mark.parametrize("name,params", SCHEDULE_CASES, ids=IDS)
def test_values_match_textbook_formula(name, params):
    s = _sched(name, params)
    for fn_idx, fn in enumerate(("alpha", "beta", "dalpha", "dbeta")):
        got = np.asarray(getattr(s, fn)(T_INTERIOR), float)
        want = np.array([schedule_formula(name, t, **params)[fn_idx] for t in T_INTERIOR])
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15, err_msg=fn)
    got = np.asarray(s.beta_dbeta(T_INTERIOR), float)
    want = np.array([schedule_formula(name, t, **params)[4] for t in T_INTERIOR])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15, err_msg="beta_dbeta")


@pytest.mark.parametrize("name,params", SCHEDULE_CASES, ids=IDS)
def test_scalar_and_array_t_agree(name, params):
    s = _sched(name, params)
    arr = np.asarray(s.alpha(T_INTERIOR))
    assert arr.shape == T_INTERIOR.shape
    for i, t in enumerate(T_INTERIOR):
        for fn in ("alpha", "beta", "dalpha", "dbeta", "beta_dbeta"):
            sc = getattr(s, fn)(float(t))
            assert np.ndim(sc) == 0, f"{fn}(scalar) should be a scalar, got shape {np.shape(sc)}"
            assert float(sc) == pytest.approx(
                float(np.asarray(getattr(s, fn)(T_INTERIOR))[i]), rel=1e-15, abs=0
            )


@pytest.mark.parametrize("name,params", SCHEDULE_CASES, ids=IDS)
def test_derivatives_match_finite_differences(name, params):
    """dalpha, dbeta against 5-point central differences of alpha, beta (h = 1e-4): rel tol 1e-9."""
    s = _sched(name, params)
    t = T_INTERIOR[(T_INTERIOR > 1e-3) & (T_INTERIOR < 0.98)]  # keep t +- 2h inside (0, 1)
    h = 1e-4
    for f, df in (("alpha", "dalpha"), ("beta", "dbeta")):
        fd = fd_derivative(lambda tt: np.asarray(getattr(s, f)(tt), float), t, h=h)
        an = np.asarray(getattr(s, df)(t), float)
        scale = np.maximum(np.abs(an), 1.0)
        # vp has large curvature (beta_max = 20): truncation ~ h^4 f^(5)/30, still < 1e-8 there
        tol = 1e-8 if name == "vp" else 1e-9
        assert np.max(np.abs(fd - an) / scale) < tol, (f, df, fd, an)


@pytest.mark.parametrize("name,params", SCHEDULE_CASES, ids=IDS)
def test_boundary_values(name, params):
    s = _sched(name, params)
    a0, b0 = float(s.alpha(0.0)), float(s.beta(0.0))
    a1, b1 = float(s.alpha(1.0)), float(s.beta(1.0))
    assert a1 == pytest.approx(1.0, abs=1e-15)
    assert b1 == pytest.approx(0.0, abs=1e-15)
    assert b0 == pytest.approx(np.sqrt(1 - a0**2) if name == "vp" else 1.0, abs=1e-15)
    if name == "vp":
        # flow_matching's VP does not start at pure noise: alpha_0 = exp(-T(0)/2) != 0
        want_a0 = schedule_formula(name, 0.0, **params)[0]
        assert a0 == pytest.approx(want_a0, rel=1e-13)
        assert a0 > 0
        assert s.alpha0_is_zero is False
    else:
        assert a0 == 0.0
        assert s.alpha0_is_zero is True


@pytest.mark.parametrize("name,params", SCHEDULE_CASES, ids=IDS)
def test_beta_dbeta_finite_at_endpoints(name, params):
    s = _sched(name, params)
    for t in (0.0, 1.0):
        v = float(s.beta_dbeta(t))
        assert np.isfinite(v)
        assert v == pytest.approx(schedule_formula(name, t, **params)[4], rel=1e-12, abs=1e-15)
    # approaching t = 1 the product is continuous
    t = 1 - 1e-12
    assert float(s.beta_dbeta(t)) == pytest.approx(float(s.beta_dbeta(1.0)), abs=1e-5)


def test_sqrt_dbeta_at_one_is_minus_inf_or_raises():
    """beta = sqrt(1 - t): dbeta_1 = -inf; the product beta*dbeta = -1/2 stays finite."""
    s = refcfg.schedule("sqrt")
    assert float(s.beta_dbeta(1.0)) == pytest.approx(-0.5, rel=1e-15)
    try:
        v = float(s.dbeta(1.0))
    except ValueError:
        return
    assert v == -np.inf


@pytest.mark.parametrize("name,params", SCHEDULE_CASES, ids=IDS)
def test_eq41_coefficients(name, params):
    """a = beta^2 dalpha/alpha - beta dbeta, b = dalpha/alpha (eq. 41)."""
    s = _sched(name, params)
    for t in T_INTERIOR:
        al, be, da, db, bdb = schedule_formula(name, t, **params)
        assert float(s.a(t)) == pytest.approx(be * be * da / al - bdb, rel=1e-12, abs=1e-14)
        assert float(s.b(t)) == pytest.approx(da / al, rel=1e-13)
    a_arr = np.asarray(s.a(T_INTERIOR))
    assert a_arr.shape == T_INTERIOR.shape


@pytest.mark.parametrize("name", ["linear", "cosine", "sqrt", "polynomial", "linear-vp"])
def test_eq41_undefined_at_alpha_zero(name):
    s = refcfg.schedule(name)
    with pytest.raises(ValueError, match="t"):
        s.b(0.0)
    with pytest.raises(ValueError, match="t"):
        s.a(0.0)


@pytest.mark.parametrize("name", ["linear", "cosine", "sqrt", "polynomial", "linear-vp"])
def test_eq41_non_strict_is_inf_at_alpha_zero(name):
    """strict=False: +inf where alpha_t = 0 (the limit), the strict value elsewhere, row by row."""
    s = refcfg.schedule(name)
    tt = np.array([0.0, 0.3, 0.0, 0.9])
    for f in (s.a, s.b):
        got = np.asarray(f(tt, strict=False))
        assert got[0] == np.inf and got[2] == np.inf
        np.testing.assert_array_equal(got[[1, 3]], np.asarray(f(tt[[1, 3]])))
        assert f(0.0, strict=False) == np.inf
        # the limit really is +inf: the values grow without bound as t -> 0
        assert f(1e-8) > 1e3 * f(1e-4) > 0


@pytest.mark.parametrize("name,params", SCHEDULE_CASES, ids=IDS)
def test_determinant(name, params):
    """D = dalpha beta - dbeta alpha and beta D = beta^2 dalpha - alpha beta dbeta = alpha a_t, against
    the textbook formulas at interior times; beta D finite on [0, 1], D = +inf exactly where dbeta
    is infinite."""
    s = _sched(name, params)
    for t in T_INTERIOR:
        al, be, da, db, bdb = schedule_formula(name, t, **params)
        assert float(s.D(t)) == pytest.approx(da * be - db * al, rel=1e-12, abs=1e-14)
        assert float(s.beta_D(t)) == pytest.approx(be * be * da - al * bdb, rel=1e-12, abs=1e-14)
        assert float(s.beta_D(t)) == pytest.approx(al * float(s.a(t)), rel=1e-12, abs=1e-14)
    ends = np.array([0.0, 1.0])
    assert np.all(np.isfinite(s.beta_D(ends)))
    D1 = float(s.D(1.0))
    assert (D1 == np.inf) == (not np.isfinite(float(s.dbeta(1.0))))
    assert np.asarray(s.D(T_INTERIOR)).shape == T_INTERIOR.shape


def test_vp_a_b_defined_at_zero():
    s = refcfg.schedule("vp")
    al, be, da, db, bdb = schedule_formula("vp", 0.0)
    assert float(s.b(0.0)) == pytest.approx(da / al, rel=1e-12)
    assert float(s.a(0.0)) == pytest.approx(be * be * da / al - bdb, rel=1e-12)


def test_values_record():
    s = refcfg.schedule("cosine")
    v = s.values(0.3)
    al, be, da, db, bdb = schedule_formula("cosine", 0.3)
    assert float(v.alpha) == pytest.approx(al, rel=1e-15)
    assert float(v.beta) == pytest.approx(be, rel=1e-15)
    assert float(v.dalpha) == pytest.approx(da, rel=1e-15)
    assert float(v.dbeta) == pytest.approx(db, rel=1e-15)
    assert float(v.beta_dbeta) == pytest.approx(bdb, rel=1e-14)
    assert s.name == "cosine"


def test_polynomial_default_n_is_2_and_params_recorded():
    s = refcfg.schedule("polynomial")
    assert float(s.alpha(0.5)) == pytest.approx(0.25, rel=1e-15)
    s3 = refcfg.schedule("polynomial", n=3)
    assert float(s3.alpha(0.5)) == pytest.approx(0.125, rel=1e-15)
    assert s3.params.get("n") == 3


def test_vp_defaults_match_flow_matching():
    s = refcfg.schedule("vp")
    assert s.params.get("beta_min") == pytest.approx(0.1)
    assert s.params.get("beta_max") == pytest.approx(20.0)
    # alpha_0 = exp(-(0.5 * 19.9 + 0.1)/2) = exp(-5.025)
    assert float(s.alpha(0.0)) == pytest.approx(np.exp(-5.025), rel=1e-13)


def test_from_callables_matches_builtin():
    lin = refcfg.schedule("linear")
    s = refcfg.Schedule.from_callables(
        lambda t: t,
        lambda t: 1 - t,
        lambda t: np.ones_like(np.asarray(t, float)),
        lambda t: -np.ones_like(np.asarray(t, float)),
    )
    for fn in ("alpha", "beta", "dalpha", "dbeta", "beta_dbeta", "a", "b"):
        np.testing.assert_allclose(
            np.asarray(getattr(s, fn)(T_INTERIOR), float),
            np.asarray(getattr(lin, fn)(T_INTERIOR), float),
            rtol=1e-14,
        )
    s2 = refcfg.custom_schedule(
        lambda t: t,
        lambda t: 1 - t,
        lambda t: np.ones_like(np.asarray(t, float)),
        lambda t: -np.ones_like(np.asarray(t, float)),
    )
    assert float(s2.alpha(0.4)) == pytest.approx(0.4)


@pytest.mark.parametrize(
    "kw,arg",
    [
        ({"n": 0}, "n"),
        ({"n": -1.0}, "n"),
        ({"n": float("nan")}, "n"),
        ({"n": float("inf")}, "n"),
    ],
)
def test_polynomial_bad_n(kw, arg):
    with pytest.raises(ValueError, match=arg):
        refcfg.schedule("polynomial", **kw)


@pytest.mark.parametrize(
    "kw,arg",
    [
        ({"beta_min": 20.0, "beta_max": 0.1}, "beta_m"),
        ({"beta_min": 1.0, "beta_max": 1.0}, "beta_m"),
        ({"beta_min": -0.1}, "beta_min"),
        ({"beta_max": float("nan")}, "beta_max"),
    ],
)
def test_vp_bad_params(kw, arg):
    with pytest.raises(ValueError, match=arg):
        refcfg.schedule("vp", **kw)


def test_unknown_name_and_unknown_param():
    with pytest.raises(ValueError, match="nope"):
        refcfg.schedule("nope")
    with pytest.raises((ValueError, TypeError), match="bogus"):
        refcfg.schedule("linear", bogus=1)
    with pytest.raises((ValueError, TypeError), match="n"):
        refcfg.schedule("cosine", n=3)


@pytest.mark.parametrize("bad", [-0.1, 1.0 + 1e-9, float("nan"), float("inf")])
def test_t_outside_unit_interval(bad):
    s = refcfg.schedule("linear")
    with pytest.raises(ValueError, match="t"):
        s.alpha(bad)


def test_monotone_interpolation():
    """alpha increasing, beta decreasing on a fine grid for every named schedule."""
    t = np.linspace(0, 1, 2001)
    for name, params in SCHEDULE_CASES:
        s = _sched(name, params)
        assert np.all(np.diff(np.asarray(s.alpha(t))) > 0), name
        assert np.all(np.diff(np.asarray(s.beta(t))) < 0), name


# --- pickling (a schedule travels to another process, e.g. the kernels' compile-ahead child) ---


def _lin_alpha(t):
    return t


def _lin_beta(t):
    return 1.0 - t


def _lin_dalpha(t):
    return np.ones_like(np.asarray(t, float))


def _lin_dbeta(t):
    return -np.ones_like(np.asarray(t, float))


_PICKLE_TIMES = np.array([0.0, 0.013, 0.5, 0.987, 1.0])


def _assert_same_values(a, b):
    """Every quantity of two schedules equal bitwise at t = 0, interior times and t = 1."""
    va, vb = a.values(_PICKLE_TIMES), b.values(_PICKLE_TIMES)
    for fn, x, y in zip(va._fields, va, vb):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=fn)
    for fn in ("a", "b"):  # eq. 41, non-strict (alpha_0 may be 0)
        np.testing.assert_array_equal(
            getattr(a, fn)(_PICKLE_TIMES, strict=False),
            getattr(b, fn)(_PICKLE_TIMES, strict=False),
            err_msg=fn,
        )


def test_pickle_cases_cover_every_named_schedule():
    assert {name for name, _ in SCHEDULE_CASES} == set(refcfg.schedules.SCHEDULES)


@pytest.mark.parametrize("name,params", SCHEDULE_CASES, ids=IDS)
def test_named_schedule_pickles_by_name(name, params):
    import pickle

    s = _sched(name, params)
    data = pickle.dumps(s)
    back = pickle.loads(data)
    assert type(back) is refcfg.Schedule and back is not s
    assert back == s and back.name == s.name and back.params == s.params
    _assert_same_values(back, s)
    # the pickle is the call that made it (a name and parameters), not the callables
    assert b"_named_schedule" in data and b"lambda" not in data
    assert pickle.loads(pickle.dumps(back)) == s  # and again


def test_custom_schedule_pickles_when_its_callables_do():
    import pickle

    s = refcfg.custom_schedule(_lin_alpha, _lin_beta, _lin_dalpha, _lin_dbeta)
    back = pickle.loads(pickle.dumps(s))
    assert back is not s and back.name == "custom"
    _assert_same_values(back, s)
    _assert_same_values(back, refcfg.schedule("linear"))


def test_custom_schedule_with_lambdas_does_not_pickle():
    import pickle

    s = refcfg.custom_schedule(_lin_alpha, lambda t: 1.0 - t, _lin_dalpha, _lin_dbeta)
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(s)
