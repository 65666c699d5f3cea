"""Tests of refcfg.gaussian: closed forms against scipy solve_ivp of the moment ODEs, exact special
cases, quadrature of the tilted density, and the large-w asymptotics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

import refcfg
from refcfg.gaussian import cfg_endpoint, cfg_endpoint_1d, discrete_endpoint_1d, tilted_gaussian
from refcfg.sampling.steppers import TABLEAUS

pytestmark = pytest.mark.slow

CASES = [  # (m1, v1, m0, v0, w)
    (1.0, 0.3, 0.2, 1.5, 3.0),
    (1.0, 2.0, -0.5, 1.0, 1.5),
    (-0.4, 0.05, 0.3, 1.0, 8.0),
    (2.0, 0.6, 0.0, 2.5, 0.5),  # w = 1/2: the exponent 2w - 1 of the SDE variance vanishes
    (0.7, 0.5, 0.1, 0.5 + 1e-9, 2.0),  # nearly equal variances (cancellation in V1 - V0)
]


@pytest.mark.parametrize("sampler", ["ode", "sde"])
@pytest.mark.parametrize("schedule", ["linear", "cosine", "sqrt", "polynomial"])
@pytest.mark.parametrize("case", CASES)
def test_closed_form_matches_moment_ivp_1d(sampler, schedule, case):
    # independent oracle: moment ODEs in t, DOP853 at rtol 1e-10 (global error can exceed the local
    # rtol: case2's ODE variance shrinks by 10 orders); tolerance 1e-8 (mean), 1e-7 (variance) relative
    a = cfg_endpoint_1d(*case, sampler=sampler, schedule=schedule)
    b = cfg_endpoint_1d(*case, sampler=sampler, schedule=schedule, method="ivp")
    assert abs(a[0] - b[0]) <= 1e-8 * max(1.0, abs(b[0]))
    assert abs(a[1] - b[1]) <= 1e-7 * b[1]


@pytest.mark.parametrize("sampler", ["ode", "sde"])
def test_closed_form_from_t_start_with_init_law(sampler):
    # the samplers start at t_start > 0 from N(0, I) (SDE) or any law: both formulas must agree
    for t0, mi, vi in [(0.05, 0.0, 1.0), (0.3, 0.4, 0.7), (1e-3, -1.0, 2.0)]:
        kw = dict(sampler=sampler, t_start=t0, init_mean=[mi], init_var=vi)
        a = cfg_endpoint_1d(1.0, 0.3, 0.2, 1.5, 3.0, **kw)
        b = cfg_endpoint_1d(1.0, 0.3, 0.2, 1.5, 3.0, method="ivp", **kw)
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("sampler", ["ode", "sde"])
def test_w1_and_w0_reach_the_data_laws(sampler):
    # w = 1 is no guidance: the exact path ends at p(x|y); w = 0 at p(x). Tolerance 1e-12.
    for w, target in [(1.0, (1.3, 0.4)), (0.0, (-0.2, 1.7))]:
        m, v = cfg_endpoint_1d(1.3, 0.4, -0.2, 1.7, w, sampler=sampler)
        assert m == pytest.approx(target[0], abs=1e-12) and v == pytest.approx(target[1], rel=1e-12)


@pytest.mark.parametrize("w", [0.5, 2.0, 5.0])
def test_equal_variances_ode_sde_tilted_agree(w):
    # V1 = V0: the tilted path is a consistent Gaussian path, so all three laws coincide
    t = tilted_gaussian(1.0, 0.6, -0.5, 0.6, w)
    for sampler in ("ode", "sde"):
        m, v = cfg_endpoint_1d(1.0, 0.6, -0.5, 0.6, w, sampler=sampler)
        assert m == pytest.approx(t.mean[0], abs=1e-11) and v == pytest.approx(
            t.cov[0, 0], rel=1e-11
        )
        assert m == pytest.approx(w * 1.0 + (1 - w) * -0.5, abs=1e-11)


def test_ode_variance_is_geometric_mean_and_sde_variance_formula():
    # written-out closed forms (module docstring), independent of the implementation's helpers
    V1, V0 = 0.3, 1.5
    for w in (1.5, 2.0, 3.0, 5.0):
        _, v_ode = cfg_endpoint_1d(0.0, V1, 0.0, V0, w, sampler="ode")
        _, v_sde = cfg_endpoint_1d(0.0, V1, 0.0, V0, w, sampler="sde")
        assert v_ode == pytest.approx(V1**w * V0 ** (1 - w), rel=1e-13)
        ref = (
            V1 ** (2 * w)
            * V0 ** (2 - 2 * w)
            * (1 - (V0 / V1) ** (2 * w - 1))
            / ((2 * w - 1) * (V1 - V0))
        )
        assert v_sde == pytest.approx(ref, rel=1e-12)


def test_large_w_asymptotics():
    # r = V1/V0 < 1, delta = 1/V1 - 1/V0: V_tilt ~ 1/(w delta), V_SDE ~ 1/((2w-1) delta), V_ODE = V1 r^(w-1);
    # SDE and tilted means -> (m1 V0 - m0 V1)/(V0 - V1)
    m1, V1, m0, V0 = 1.0, 0.5, 0.0, 1.0
    delta = 1 / V1 - 1 / V0
    mlim = (m1 * V0 - m0 * V1) / (V0 - V1)
    w = 60.0
    ms, vs = cfg_endpoint_1d(m1, V1, m0, V0, w, sampler="sde")
    tl = tilted_gaussian(m1, V1, m0, V0, w)
    assert vs * (2 * w - 1) * delta == pytest.approx(1.0, rel=1e-12)  # r^(2w-1) ~ 1e-36
    assert vs / tl.cov[0, 0] == pytest.approx(0.5, abs=0.02)
    assert tl.cov[0, 0] * w * delta == pytest.approx(1.0, abs=0.02)
    assert ms == pytest.approx(mlim, abs=1e-10) and tl.mean[0] == pytest.approx(mlim, abs=0.05)
    _, vo = cfg_endpoint_1d(m1, V1, m0, V0, w, sampler="ode")
    assert vo == pytest.approx(V1 * (V1 / V0) ** (w - 1), rel=1e-12)


def test_commuting_nd_closed_matches_ivp():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    V1 = (Q * [0.2, 0.8, 1.4]) @ Q.T
    V0 = (Q * [1.0, 1.0, 0.6]) @ Q.T
    m1, m0 = rng.standard_normal(3), rng.standard_normal(3)
    for sampler in ("ode", "sde"):
        a = cfg_endpoint(m1, V1, m0, V0, 2.5, sampler=sampler)
        b = cfg_endpoint(m1, V1, m0, V0, 2.5, sampler=sampler, method="ivp")
        np.testing.assert_allclose(a.mean, b.mean, atol=1e-8)
        np.testing.assert_allclose(a.cov, b.cov, atol=1e-8)


def test_noncommuting_ivp_determinant_identity():
    # ODE: d/dt log det C = 2 tr A~ = d/dt [w log det S1 + (1-w) log det S0], so from N(0, I) at t = 0
    # det C(1) = det(V1)^w det(V0)^(1-w) even when V1, V0 do not commute (and the closed form refuses).
    V1 = np.array([[1.0, 0.6], [0.6, 0.5]])
    V0 = np.array([[2.0, -0.3], [-0.3, 1.0]])
    law = cfg_endpoint([1.0, 0.0], V1, [0.0, 0.5], V0, 2.0, method="ivp")
    ref = np.linalg.det(V1) ** 2 * np.linalg.det(V0) ** -1
    assert np.linalg.det(law.cov) == pytest.approx(ref, rel=1e-8)
    with pytest.raises(ValueError, match="do not commute"):
        cfg_endpoint([1.0, 0.0], V1, [0.0, 0.5], V0, 2.0)


def test_tilted_matches_quadrature():
    m1, V1, m0, V0, w = 1.0, 0.3, 0.2, 1.5, 3.0

    def logq(x):  # unnormalised: w log N(x; m1, V1) + (1 - w) log N(x; m0, V0) up to a constant
        return -0.5 * w * (x - m1) ** 2 / V1 - 0.5 * (1 - w) * (x - m0) ** 2 / V0

    Z = integrate.quad(lambda x: np.exp(logq(x)), -20, 20, epsabs=0, epsrel=1e-12)[0]
    mean = integrate.quad(lambda x: x * np.exp(logq(x)) / Z, -20, 20, epsabs=0, epsrel=1e-12)[0]
    var = integrate.quad(
        lambda x: (x - mean) ** 2 * np.exp(logq(x)) / Z, -20, 20, epsabs=0, epsrel=1e-12
    )[0]
    t = tilted_gaussian(m1, V1, m0, V0, w)
    assert t.mean[0] == pytest.approx(mean, abs=1e-10) and t.cov[0, 0] == pytest.approx(
        var, rel=1e-9
    )
    with pytest.raises(ValueError, match="not normalisable"):
        tilted_gaussian(0.0, 2.0, 0.0, 1.0, 3.0)  # precision 3/2 - 2 < 0


def test_errors():
    with pytest.raises(ValueError, match="sampler"):
        cfg_endpoint_1d(0, 1, 0, 1, 2.0, sampler="heun")
    with pytest.raises(ValueError, match="V1 must be positive definite"):
        cfg_endpoint_1d(0, -1.0, 0, 1, 2.0)
    with pytest.raises(TypeError, match="w must be a real number"):
        cfg_endpoint_1d(0, 1, 0, 1, "2")
    with pytest.raises(ValueError, match="t_start"):
        cfg_endpoint_1d(0, 1, 0, 1, 2.0, t_start=1.0)
    with pytest.raises(ValueError, match="m0 has shape"):
        cfg_endpoint([0.0, 1.0], np.eye(2), [0.0], np.eye(2), 2.0)


DISCRETE = [(name, tab.order, 0.0) for name, tab in TABLEAUS.items()] + [
    ("euler_maruyama", 1, 0.0),
    ("euler_maruyama", 1, 1e-3),
]


@pytest.mark.parametrize("sampler,order,t0", DISCRETE)
def test_discretised_sampler_converges_at_its_order(sampler, order, t0):
    # exact moments of the discrete recursion vs the continuous closed form; slope of log error vs
    # log h over 100..800 steps (25..200 from order 3 on, whose errors would reach the closed form's
    # quadrature error of ~1e-13) must be the tableau's declared order within 0.15
    kind = "sde" if sampler == "euler_maruyama" else "ode"
    exact = cfg_endpoint_1d(1.0, 0.3, 0.2, 1.5, 3.0, sampler=kind, t_start=t0)
    steps = (100 if order <= 2 else 25) * np.array([1, 2, 4, 8])
    errs = []
    for k in steps:
        ts = np.linspace(t0, 1.0, k + 1)
        m, v = discrete_endpoint_1d(
            1.0, 0.3, 0.2, 1.5, 3.0, ts, sampler, sigma="ddpm" if kind == "sde" else None
        )
        errs.append(abs(m - exact[0]) + abs(v - exact[1]))
    slope = -np.polyfit(np.log(steps), np.log(errs), 1)[0]
    assert abs(slope - order) < 0.15, (slope, errs)


def _gauss_field(m1, v1, m0, v0, w, schedule):
    """The CFG field w u(x|N(m1, v1)) + (1 - w) u(x|N(m0, v0)) of two 1-D Gaussian paths."""

    def path(m, v):
        return refcfg.GMMPath(refcfg.GMM([1.0], [[m]], [[[v]]]), schedule)

    return refcfg.guided(path(m1, v1).field(None), path(m0, v0).field(None), w)


GRIDS = {  # interior grids (neither endpoint), non-uniform, and the full [0, 1] grid
    "interior": np.sort(np.random.default_rng(5).uniform(0.05, 0.95, 13)),
    "interior-uniform": np.linspace(0.1, 0.9, 9),
    "full": np.linspace(0.0, 1.0, 11),
}


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("grid", list(GRIDS))
@pytest.mark.parametrize("sampler", list(TABLEAUS))
def test_discrete_endpoint_equals_the_numpy_sampler_for_every_tableau(sampler, grid, schedule):
    # The sampler's step is affine in x here, so refcfg.sample(backend="numpy") maps x_init to
    # M x_init + k: two start points give (M, k), hence the law N(M mu + k, M^2 var) of the end
    # point from N(mu, var). Independent of the oracle: the NumPy integrator evaluates the field
    # object stage by stage. Tolerance 1e-12 relative.
    m1, v1, m0, v0, w, mu, var = 1.0, 0.3, 0.2, 1.5, 3.0, 0.4, 0.7
    ts = GRIDS[grid]
    f = _gauss_field(m1, v1, m0, v0, w, schedule)
    x0 = np.array([[0.0], [1.0]])
    x = refcfg.sample(f, 2, sampler, t_grid=ts, x_init=x0, backend="numpy")[:, 0]
    M, k = x[1] - x[0], x[0]
    m, v = discrete_endpoint_1d(
        m1, v1, m0, v0, w, ts, sampler, schedule=schedule, init_mean=mu, init_var=var
    )
    assert abs(m - (M * mu + k)) <= 1e-12 * max(1.0, abs(m)), (m, M * mu + k)
    assert abs(v - M * M * var) <= 1e-12 * v, (v, M * M * var)


def test_discrete_endpoint_refuses_unknown_samplers():
    with pytest.raises(ValueError, match="sampler must be one of"):
        discrete_endpoint_1d(1.0, 0.3, 0.2, 1.5, 3.0, np.linspace(0, 1, 3), "rk45")


def test_sde_moments_are_elementary_in_the_ode_variance():
    # Var_SDE = (V0 V1 - G^2)/((2w-1)(V0-V1)), E_SDE = (m1 (V0-G) - m0 (V1-G))/(V0-V1), G = V1^w V0^(1-w)
    for m1, V1, m0, V0, w in [
        (1.0, 0.25, 0.0, 1.0, 2.0),
        (0.3, 2.0, -1.0, 0.7, 1.7),
        (2.0, 0.5, 1.0, 3.0, 6.0),
    ]:
        G = V1**w * V0 ** (1 - w)
        m, v = cfg_endpoint_1d(m1, V1, m0, V0, w, sampler="sde")
        assert v == pytest.approx((V0 * V1 - G * G) / ((2 * w - 1) * (V0 - V1)), rel=1e-12)
        assert m == pytest.approx((m1 * (V0 - G) - m0 * (V1 - G)) / (V0 - V1), rel=1e-12)
