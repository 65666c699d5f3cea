"""The stepper table (refcfg.sampling.steppers): tableau consistency, stage times, and every
explicit Runge-Kutta sampler on the NumPy and CPU backends: agreement on the same start, and
convergence at the tableau's order against the Gaussian closed forms (tests/sampling/_gauss.py).

Every case is parametrised by ``TABLEAUS`` and reads its expectation (the order) from the entry, so
a new tableau is tested here without editing this file."""

import numpy as np
import pytest
from scipy.linalg import sqrtm

import refcfg
from refcfg.sampling import SAMPLERS, log_likelihood
from refcfg.sampling.steppers import SDE_SAMPLERS, TABLEAUS, stage_times, tableau

from _gauss import fit_order, flow_map
from test_order import M_A, M_B, V_A, V_B, gauss_path

PATH = refcfg.GMMPath(refcfg.problem("two-class-2d"))


@pytest.mark.parametrize("name", sorted(TABLEAUS))
def test_tableau_is_a_consistent_explicit_method(name):
    tab = TABLEAUS[name]
    s = len(tab.b)
    assert tab.name == name and tab.a.shape == (s, s) and tab.c.shape == (s,)
    assert np.all(np.triu(tab.a) == 0.0)  # explicit: strictly lower
    assert abs(tab.b.sum() - 1.0) <= 1e-15  # consistency
    assert np.array_equal(tab.c, tab.a.sum(axis=1))  # c = row sums of a
    assert tab.c[0] == 0.0
    # order conditions up to the declared order (Butcher): 2: b.c = 1/2; 3: b.c^2 = 1/3,
    # b.a.c = 1/6; 4: b.c^3 = 1/4, b.(c o a c) = 1/8, b.a.c^2 = 1/12, b.a.a.c = 1/24
    b, a, c = tab.b, tab.a, tab.c
    conds = {
        2: [(b @ c, 1 / 2)],
        3: [(b @ c**2, 1 / 3), (b @ a @ c, 1 / 6)],
        4: [
            (b @ c**3, 1 / 4),
            (b @ (c * (a @ c)), 1 / 8),
            (b @ a @ c**2, 1 / 12),
            (b @ a @ a @ c, 1 / 24),
        ],
    }
    # (conditions of orders above 4 are not written out: the convergence tests below check those)
    for p in range(2, tab.order + 1):
        for got, want in conds.get(p, []):
            assert abs(got - want) <= 1e-15, (name, p)
    # and the next order fails (the declared order is the method's order, not a lower bound)
    if tab.order + 1 in conds:
        assert any(abs(got - want) > 1e-3 for got, want in conds[tab.order + 1])


def test_samplers_list_and_lookup():
    assert SAMPLERS == tuple(TABLEAUS) + SDE_SAMPLERS
    assert {"euler", "heun", "midpoint", "rk4", "euler_maruyama"} <= set(SAMPLERS)
    for name in TABLEAUS:
        assert tableau(name) is TABLEAUS[name]
    assert tableau("euler_maruyama") is TABLEAUS["euler"]
    with pytest.raises(ValueError, match="sampler must be one of"):
        tableau("rk45")


def test_stage_times_hit_the_grid_exactly():
    ts = np.array([0.0, 0.1, 0.35, 0.7, 1.0])
    st = stage_times(ts, TABLEAUS["rk4"])
    assert st.shape == (4, 4)
    assert np.array_equal(st[:, 0], ts[:-1]) and np.array_equal(st[:, 3], ts[1:])
    assert np.allclose(st[:, 1], 0.5 * (ts[:-1] + ts[1:]), rtol=0, atol=1e-16)
    assert np.array_equal(stage_times(ts, TABLEAUS["heun"])[:, 1], ts[1:])


@pytest.mark.slow
@pytest.mark.parametrize("sampler", list(TABLEAUS))
def test_cpu_equals_numpy_on_the_same_start(sampler):
    # per-particle labels (NULL included) and weights, full covariances; trajectories too
    n, steps = 200, 15
    y = np.arange(n) % 3 - 1
    w = np.linspace(0.5, 3.0, n)
    x0 = np.random.default_rng(0).standard_normal((n, 2))
    kw = dict(steps=steps, x_init=x0, y=y, w=w, return_trajectory=True, trajectory_every=4)
    a, tra, tta = refcfg.sample(PATH, n, sampler, backend="cpu", **kw)
    b, trb, ttb = refcfg.sample(PATH, n, sampler, backend="numpy", **kw)
    assert np.array_equal(tta, ttb)
    assert np.abs(tra - trb).max() <= 1e-12 * np.abs(trb).max()
    assert np.abs(a - b).max() <= 1e-12 * np.abs(b).max()


X0 = np.random.default_rng(0).standard_normal((64, 2))


def _errors(field, exact, sampler, backend, steps):
    return [
        np.abs(refcfg.sample(field, 64, sampler, steps=s, x_init=X0, backend=backend) - exact).max()
        for s in steps
    ]


STEPS = [8, 16, 32, 64]


def _tolerance(order):
    """Allowed deviation of the fitted order from the declared one: the pre-asymptotic terms of a
    high-order method bend the fit more at these steps (0.15 for Euler ... 0.3 for order 4)."""
    return 0.1 + 0.05 * order


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["cpu", "numpy"])
@pytest.mark.parametrize("sampler", list(TABLEAUS))
def test_order_single_gaussian(sampler, backend):
    # data N(m, V) on the cosine schedule: x_1 = m + V^{1/2} x_0 exactly (alpha_1 = 1, beta_1 = 0
    # for every schedule starting at N(0, I)); max error over 64 particles, steps 8..64. (On the
    # linear schedule this problem is special: midpoint's leading error term cancels, measured
    # order 3.0.)
    order = TABLEAUS[sampler].order
    path = refcfg.GMMPath(refcfg.GMM([1.0], M_A[None], V_A[None]), "cosine")
    exact = M_A + X0 @ np.real(sqrtm(V_A)).T
    err = _errors(path.field(None), exact, sampler, backend, STEPS)
    assert abs(fit_order(STEPS, err) - order) <= _tolerance(order), err


@pytest.mark.slow
@pytest.mark.parametrize("sampler", list(TABLEAUS))
def test_order_guided_gaussian_pair(sampler):
    # guided pair w = 2.5: affine flow (Phi, phi) by solve_ivp at rtol 1e-10 (the rk4 errors at
    # 64 steps are ~6e-8, far above the oracle's error)
    order = TABLEAUS[sampler].order
    Phi, phi = flow_map([(M_A, V_A), (M_B, V_B)], 2.5)
    f = refcfg.guided(gauss_path(M_A, V_A).field(None), gauss_path(M_B, V_B).field(None), 2.5)
    err = _errors(f, X0 @ Phi.T + phi, sampler, "cpu", STEPS)
    assert abs(fit_order(STEPS, err) - order) <= _tolerance(order), err


@pytest.mark.slow
def test_likelihood_every_tableau_cpu_equals_numpy_and_rk4_converges():
    x, _ = PATH.mixture.sample(12, seed=3)
    f = refcfg.CFGField(PATH, 0, 2.5)
    for name in TABLEAUS:
        a = log_likelihood(f, x, steps=10, sampler=name, backend="cpu")
        b = log_likelihood(f, x, steps=10, sampler=name, backend="numpy")
        assert np.abs(a - b).max() <= 1e-10, name
    # rk4 against the exact log p_1(x) at w = 1: fitted order 4 +- 0.5 over 8..32 steps
    exact = PATH.log_prob(x, 1.0)
    steps = [8, 16, 32]
    err = [np.abs(log_likelihood(PATH, x, steps=s, sampler="rk4") - exact).max() for s in steps]
    assert err[-1] <= 1e-4 and abs(fit_order(steps, err) - 4) <= 0.5, err
