"""Marginals and guided moments of the samplers (Monte Carlo tests with stated N, seed, tolerance).

Oracles: exact samples of the data law (marginals at w = 1), and for guided single-Gaussian pairs
the endpoint moments from the moment ODEs solved by scipy (tests/sampling/_gauss.py): ODE flow map
(Phi, phi) -> N(phi, Phi Phi^T); SDE m' = A m + c, P' = A P + P A^T + sigma^2 I from t0 = 1e-5
(the DDPM-like sigma^2 = 2 a_t is singular at 0; starting at 1e-5 instead of 1e-6 changes the
moments by < 1e-8, measured).
"""

import numpy as np
import pytest
from scipy import stats

import refcfg

from _gauss import ddpm_sigma2, flow_map, sde_moments
from test_order import M_A, M_B, V_A, V_B, gauss_path

pytestmark = pytest.mark.slow  # Monte Carlo runs of 40000 particles: not in the fast tier

N = 40_000
LAWS = [(M_A, V_A), (M_B, V_B)]


def pair(w):
    return refcfg.guided(gauss_path(M_A, V_A).field(None), gauss_path(M_B, V_B).field(None), w)


def assert_moments(x, mean, cov, n_se=4.0):
    """|sample mean - mean| <= n_se sqrt(var/N); |sample var - var| <= n_se sqrt(2/N) var (the
    Gaussian standard errors), per coordinate."""
    n = x.shape[0]
    var = np.diag(cov)
    assert np.all(np.abs(x.mean(0) - mean) <= n_se * np.sqrt(var / n)), (x.mean(0), mean)
    assert np.all(np.abs(x.var(0, ddof=1) - var) <= n_se * np.sqrt(2.0 / n) * var), (x.var(0), var)


@pytest.mark.parametrize("w", [1.0, 2.0, 3.0])
def test_guided_pair_endpoint_moments_ode_and_ddpm_sde(w):
    # N = 40000, seed 11, Heun 100 steps (ODE) and Euler-Maruyama 500 steps (SDE), 4 standard errors
    Phi, phi = flow_map(LAWS, w)
    x = refcfg.sample(pair(w), N, "heun", steps=100, seed=11)
    assert_moments(x, phi, Phi @ Phi.T)
    m, P = sde_moments(LAWS, w, ddpm_sigma2, 1e-5)
    x = refcfg.sample(pair(w), N, "euler_maruyama", steps=500, sigma="ddpm", seed=11)
    assert_moments(x, m, P)
    if w != 1.0:  # guided ODE and SDE laws differ (CFG is not the tilted law): the test can tell
        assert np.abs(np.diag(P) - np.diag(Phi @ Phi.T)).max() > 10 * np.sqrt(2.0 / N) * P.max()


def test_ddpm_start_does_not_matter_beyond_bound():
    # Default: sigma_0 = inf, so the first step [0, h] is a probability-flow ODE step. Alternative:
    # start the SDE at t_start in {1e-3, 1e-2} from N(0, I). Same seed (same x_init and noise per
    # step index), N = 10000, 500 steps, w = 2: the endpoint means and variances differ by <= 5e-4
    # (measured <= 1e-4 at N = 40000; the MC error of each is ~3e-3 there, so the choice is far
    # below sampling error).
    n = 10_000
    base = refcfg.sample(pair(2.0), n, "euler_maruyama", steps=500, sigma="ddpm", seed=3)
    for t_start in (1e-3, 1e-2):
        x = refcfg.sample(
            pair(2.0), n, "euler_maruyama", steps=500, sigma="ddpm", seed=3, t_start=t_start
        )
        assert np.abs(x.mean(0) - base.mean(0)).max() <= 5e-4
        assert np.abs(x.var(0) - base.var(0)).max() <= 5e-4


def _ks_ok(x, ref):
    """Two-sample KS on both coordinates and both diagonals, each p > 1e-3."""
    dirs = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]])
    return [stats.ks_2samp(x @ u, ref @ u).pvalue for u in dirs]


@pytest.mark.parametrize("name", ["two-class-2d", "mit-symmetric"])
def test_marginals_at_w1_match_data(name):
    # N = 4000 samples vs 4000 exact samples (seed 100); ODE Heun 100 steps; SDE Euler-Maruyama
    # 500 steps with sigma in {0.5, 1.5, "ddpm"}; unconditional and class 0 (y = 0, w = 1).
    path = refcfg.GMMPath(refcfg.problem(name))
    n = 4000
    ref, _ = path.mixture.sample(n, seed=100)
    ref0, _ = path.mixture.sample(n, seed=101, y=0)
    runs = [dict(sampler="heun", steps=100)] + [
        dict(sampler="euler_maruyama", steps=500, sigma=s) for s in (0.5, 1.5, "ddpm")
    ]
    for i, kw in enumerate(runs):
        x = refcfg.sample(path, n, seed=200 + i, **kw)
        assert min(_ks_ok(x, ref)) > 1e-3, (kw, _ks_ok(x, ref))
        x0 = refcfg.sample(path, n, seed=300 + i, y=0, w=1.0, **kw)
        assert min(_ks_ok(x0, ref0)) > 1e-3, (kw, _ks_ok(x0, ref0))
