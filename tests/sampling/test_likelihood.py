"""ODE log-likelihood: exact log p_1 at w = 1, integrator order, guided Gaussian pairs."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

import refcfg
from refcfg.sampling import log_likelihood

from _gauss import fit_order, flow_map
from test_order import M_A, M_B, V_A, V_B, gauss_path


@pytest.mark.slow
@pytest.mark.parametrize("name", ["two-class-2d", "mit-symmetric"])
def test_unguided_likelihood_matches_exact_log_density(name):
    # oracle: GMMPath.log_prob(x, 1) (closed form); Heun with 400 steps, |error| <= 5e-4
    # (measured 2.3e-4 on mit-symmetric, 6.7e-5 on two-class-2d; the error is O(h^2), see below)
    path = refcfg.GMMPath(refcfg.problem(name))
    x, _ = path.mixture.sample(50, seed=1)
    lp = log_likelihood(path, x, steps=400, sampler="heun")
    assert np.abs(lp - path.log_prob(x, 1.0)).max() <= 5e-4
    # conditional field: log p_1(x|y)
    lpy = log_likelihood(path, x, steps=400, y=1)
    assert np.abs(lpy - path.log_prob(x, 1.0, 1)).max() <= 5e-4


@pytest.mark.slow
@pytest.mark.parametrize("sampler,order", [("euler", 1), ("heun", 2)])
def test_likelihood_error_falls_at_integrator_order(sampler, order):
    path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    x, _ = path.mixture.sample(20, seed=2)
    exact = path.log_prob(x, 1.0)
    steps = [16, 32, 64, 128]
    err = [np.abs(log_likelihood(path, x, steps=s, sampler=sampler) - exact).max() for s in steps]
    assert abs(fit_order(steps, err) - order) <= 0.2, err


@pytest.mark.slow
def test_numpy_and_cpu_backends_agree():
    path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    x, _ = path.mixture.sample(10, seed=3)
    f = refcfg.CFGField(path, 0, 2.5)
    a = log_likelihood(f, x, steps=20, backend="cpu")
    b = log_likelihood(f, x, steps=20, backend="numpy")
    assert np.abs(a - b).max() <= 1e-9


@pytest.mark.slow
@pytest.mark.parametrize("w", [1.0, 2.0, 3.0])
def test_guided_pair_likelihood_is_density_of_guided_ode_endpoint(w):
    # for w != 1 no formula gives the guided law, except for Gaussian pairs: X_1 = Phi X_0 + phi
    # (flow map by solve_ivp), so X_1 ~ N(phi, Phi Phi^T); Heun 800 steps, |error| <= 5e-4
    # (measured 7e-6, 3.2e-5, 1.9e-4 at w = 1, 2, 3: O(h^2) with a constant growing with w)
    Phi, phi = flow_map([(M_A, V_A), (M_B, V_B)], w)
    f = refcfg.guided(gauss_path(M_A, V_A).field(None), gauss_path(M_B, V_B).field(None), w)
    x = phi + np.random.default_rng(4).standard_normal((30, 2)) @ Phi.T
    exact = multivariate_normal(phi, Phi @ Phi.T).logpdf(x)
    assert np.abs(log_likelihood(f, x, steps=800) - exact).max() <= 5e-4


def test_likelihood_bad_input():
    path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    with pytest.raises(ValueError, match="sampler"):
        log_likelihood(path, np.zeros((2, 2)), sampler="euler_maruyama")
    with pytest.raises(ValueError, match=r"x has shape \(2, 3\)"):
        log_likelihood(path, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="t_grid must run from 0 to 1"):
        log_likelihood(path, np.zeros((2, 2)), t_grid=[0.1, 0.5, 1.0])
