"""refcfg.interop.reference: the same-noise ODE endpoint against the closed-form flow of a Gaussian
(the probability-flow map is affine: x_t = alpha_t mu + (C_t / C_s)^(1/2) (x_s - alpha_s mu) with
C_t = alpha_t^2 S + beta_t^2, diagonal S), at interior and end times, float64 <= 1e-9; its stated
error; library_time against the written-out maps; the SDE law from given starts."""

import numpy as np
import pytest

import refcfg
from refcfg.interop.reference import library_time, ode_endpoint, sde_reference
from refcfg.sample_checks import two_sample_test

pytestmark = pytest.mark.slow  # RK4 with step doubling to 1e-11: about 100 s on two busy cores

MU = np.array([1.5, -0.5, 0.25])
VAR = np.array([0.3, 1.2, 0.05])
GAUSS = refcfg.GMMPath(refcfg.GMM([1.0], MU[None], VAR[None]), "linear")


def _flow(x, s, t, sched):
    """The closed-form ODE map of the Gaussian from time s to time t."""
    C = lambda u: sched.alpha(u) ** 2 * VAR + sched.beta(u) ** 2
    return sched.alpha(t) * MU + np.sqrt(C(t) / C(s)) * (x - sched.alpha(s) * MU)


@pytest.mark.parametrize("sched", ["linear", "cosine"])
@pytest.mark.parametrize("t0,t1", [(0.0, 1.0), (0.0, 0.7), (0.2, 0.99), (0.5, 1.0)])
def test_endpoint_matches_closed_form_flow(sched, t0, t1):
    path = refcfg.GMMPath(refcfg.GMM([1.0], MU[None], VAR[None]), sched)
    x = np.random.default_rng(0).normal(size=(50, 3))
    res = ode_endpoint(path.field(None), x, t0, t1, tol=1e-11)
    want = _flow(x, t0, t1, path.schedule)
    rms = np.sqrt(np.mean(np.sum((res.x - want) ** 2, axis=1)))
    # the stated error bounds the true one (rounding floor 1e-14; measured ratio about 1/15)
    assert rms <= res.error + 1e-14 and rms <= 1e-9 and res.t_end == t1


@pytest.mark.parametrize("sched", ["linear", "cosine"])
@pytest.mark.parametrize("t0,t1", [(0.0, 1.0), (0.2, 0.99)])
def test_stated_error_is_an_honest_upper_estimate(sched, t0, t1):
    """One doubling from 8 steps (errors ~1e-6, far above rounding): the stated error bounds the
    true RMS error against the closed-form flow and overstates it by less than 30x (RK4: about
    15x; measured 0.04 to 0.07 of it)."""
    path = refcfg.GMMPath(refcfg.GMM([1.0], MU[None], VAR[None]), sched)
    x = np.random.default_rng(0).normal(size=(50, 3))
    res = ode_endpoint(path.field(None), x, t0, t1, tol=None, steps=8)
    rms = np.sqrt(np.mean(np.sum((res.x - _flow(x, t0, t1, path.schedule)) ** 2, axis=1)))
    assert res.error / 30 <= rms <= res.error, (rms, res.error)
    coarse = np.sqrt(np.mean(np.sum((res.coarse - _flow(x, t0, t1, path.schedule)) ** 2, axis=1)))
    assert coarse > rms  # coarse is the 8-step solution


def test_image_shaped_start_and_tolerance_refusal():
    x = np.random.default_rng(1).normal(size=(10, 3, 1))
    res = ode_endpoint(GAUSS, x, 0.0, 1.0, tol=1e-10)
    assert res.x.shape == x.shape
    assert np.max(np.abs(res.x[..., 0] - _flow(x[..., 0], 0.0, 1.0, GAUSS.schedule))) <= 1e-9
    with pytest.raises(ValueError, match="raise max_steps or tol"):
        ode_endpoint(GAUSS, x, 0.0, 1.0, tol=1e-14, steps=2, max_steps=8)
    with pytest.raises(ValueError, match=r"max_steps must be >= 2 \* steps"):
        ode_endpoint(GAUSS, x, 0.0, 1.0, steps=64, max_steps=100)
    with pytest.raises(ValueError, match="t_start must be < t_end"):
        ode_endpoint(GAUSS, x, 0.5, 0.5)
    with pytest.raises(TypeError, match="field must be"):
        ode_endpoint("gaussian", x)
    with pytest.raises(TypeError, match="t_end"):
        ode_endpoint(GAUSS, x, 0.0, "1")


def test_library_time_maps():
    lin = refcfg.schedule("linear")
    t, c = library_time(lin, sigma=4.0)
    assert t == pytest.approx(0.2, abs=1e-15) and c == pytest.approx(0.2, abs=1e-15)
    acp = np.linspace(0.9999, 0.005, 1000)
    t, c = library_time(GAUSS, timestep=500, alphas_cumprod=acp)
    a, s = np.sqrt(acp[500]), np.sqrt(1 - acp[500])
    assert t == pytest.approx(a / (a + s), abs=1e-15) and c == pytest.approx(1 / (a + s), abs=1e-14)
    t2, c2 = library_time(lin, signal=a, noise=s)
    assert (t2, c2) == (t, c)
    with pytest.raises(ValueError, match="exactly one"):
        library_time(lin, sigma=1.0, timestep=3, alphas_cumprod=acp)
    with pytest.raises(ValueError, match="alphas_cumprod"):
        library_time(lin, timestep=3)
    with pytest.raises(TypeError, match="schedule must be"):
        library_time("linear", sigma=1.0)
    with pytest.raises(ValueError, match="sigma must be one number"):
        library_time(lin, sigma=np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="noise must be one number"):
        library_time(lin, signal=1.0, noise=[1.0, 2.0])


def test_cfg_endpoint_from_a_library_start_is_consistent():
    """From EDM sigma = 80 to t_end: the endpoint equals refcfg.sample's RK4 with many steps on the
    CFG field (an independent run at 4096 steps), within the stated error."""
    path = refcfg.GMMPath(refcfg.problem("two-class-2d"), "linear")
    field = path.cfg(0, 4.0)
    t0, c0 = library_time(path, sigma=80.0)
    x_lib = 80.0 * np.random.default_rng(2).normal(size=(64, 2))
    res = ode_endpoint(field, c0 * x_lib, t0, 0.995, tol=1e-10)
    ref = refcfg.sample(
        field, 64, sampler="rk4", steps=4096, t_start=t0, t_end=0.995, x_init=c0 * x_lib
    )
    assert np.sqrt(np.mean(np.sum((res.x - ref) ** 2, axis=1))) <= max(2 * res.error, 1e-11)


def test_sde_reference_reaches_the_gaussian():
    """From N(0, I) at t = 0, the SDE law at t = 1 is the data law N(mu, S): accepted by the
    two-sample test at N = 3000 (Euler-Maruyama, 500 steps)."""
    x = np.random.default_rng(3).normal(size=(3000, 3))
    draws = sde_reference(GAUSS, x, 0.0, 1.0, steps=500, seed=4)
    data = GAUSS.mixture.sample(3000, seed=5)[0]
    _, p = two_sample_test(draws, data, permutations=199, seed=0)
    assert p > 0.01
    shifted = draws + 0.1 * np.sqrt(VAR)
    assert two_sample_test(shifted, data, permutations=199, seed=0)[1] <= 0.01


def _sde_gaussian_law(x, t0, t1, sched):
    """Mean and variance at t1 of eq. 44 (sigma_t^2 = 2 a_t) from x(t0) = x for the Gaussian data
    law: the drift u + a_t score is affine, A x + b per coordinate, so m' = A m + b and
    P' = 2 A P + 2 a_t (solved by scipy's DOP853 to rtol 1e-12)."""
    from scipy.integrate import solve_ivp

    def rhs(t, yv):
        al, be, da, db = sched.alpha(t), sched.beta(t), sched.dalpha(t), sched.dbeta(t)
        a = sched.a(t)
        C = al * al * VAR + be * be
        G = (al * da * VAR + be * db) / C
        A, b = G - a / C, da * MU - G * al * MU + a * al * MU / C
        return np.concatenate([A * yv[:3] + b, 2 * A * yv[3:] + 2 * a])

    sol = solve_ivp(
        rhs, (t0, t1), np.concatenate([x, np.zeros(3)]), method="DOP853", rtol=1e-12, atol=1e-14
    )
    return sol.y[:3, -1], sol.y[3:, -1]


def test_sde_reference_from_a_fixed_atypical_start():
    """From one fixed, atypical start at t = 0.3 the endpoint law is Gaussian with the closed-form
    mean and variance (a run that ignored x_init would end at the data mean MU, > 0.4 away). N =
    20000 paths: at 800 steps the mean is within 4.5 standard errors and the variance within 5 %;
    the discretisation error (Euler-Maruyama, weak order 1) is measured here on the mean: about
    0.11 at 50 steps and 0.013 at 200 (largest coordinate; standard errors 0.002-0.007), so 50
    steps is detected."""
    t0, t1, N = 0.3, 1.0, 20000
    x = np.array([-2.0, 3.0, 2.0])
    m, P = _sde_gaussian_law(x, t0, t1, GAUSS.schedule)
    assert np.min(np.abs(m - MU)) > 0.05 and np.max(np.abs(m - MU)) > 0.4
    se = np.sqrt(P / N)
    draws = sde_reference(GAUSS, np.tile(x, (N, 1)), t0, t1, steps=800, seed=1)
    assert np.all(np.abs(draws.mean(axis=0) - m) <= 4.5 * se), (draws.mean(axis=0) - m, se)
    assert np.all(np.abs(draws.var(axis=0, ddof=1) / P - 1) <= 0.05)
    coarse = sde_reference(GAUSS, np.tile(x, (N, 1)), t0, t1, steps=50, seed=1)
    assert np.max(np.abs(coarse.mean(axis=0) - m) / se) > 8  # the 50-step bias is visible
