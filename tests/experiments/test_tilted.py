"""Tests of refcfg.experiments.tilted: the tilted law p(x|y)^w p(x)^(1-w) / Z.

Oracles, all independent of refcfg's mixture code: scipy's normal densities for the log-density;
the Gaussian closed form of the tilted law (precision w / V1 + (1 - w) / V0, i.e. variance
V1 V0 / (w V0 + (1 - w) V1), mean by the precision-weighted means) for the sampler core on a
Gaussian pair; numerical quadrature of the tilted density of the gauss-1d problem for the public
sampler. Statistical checks use fixed seeds and margins stated at each assertion.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from refcfg.experiments import tilted
from refcfg.mixture import GMM
from refcfg.paths import GMMPath
from refcfg.problems import problem

pytestmark = pytest.mark.slow


# gauss-1d: p(x|0) = N(-1, 1), p(x|1) = N(1, 0.5^2), p(y) = 1/2 (refcfg.problems' docstring)
def _gauss1d_logpdfs(x):
    l0 = stats.norm(-1.0, 1.0).logpdf(x)
    l1 = stats.norm(1.0, 0.5).logpdf(x)
    return l0, l1, np.logaddexp(np.log(0.5) + l0, np.log(0.5) + l1)


@pytest.mark.parametrize("w", [-0.5, 0.0, 0.3, 1.0, 2.0, 8.0])
@pytest.mark.parametrize("y", [0, 1])
def test_log_density_gauss_1d_against_scipy(w, y):
    x = np.linspace(-6.0, 6.0, 41)[:, None]
    l0, l1, lm = _gauss1d_logpdfs(x[:, 0])
    want = w * (l0 if y == 0 else l1) + (1.0 - w) * lm
    mix = problem("gauss-1d")
    for obj in (mix, GMMPath(mix, "linear")):  # a LabeledGMM or a path
        got = tilted.log_density(obj, x, y, w)
        assert got.shape == (41,)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_log_density_two_class_2d_against_scipy():
    # full sum over every component with scipy's multivariate normal (independent of GMM.log_prob)
    mix = problem("two-class-2d")
    x = np.random.default_rng(3).normal(scale=2.0, size=(50, 2))
    comp = []
    for c, g in enumerate(mix.classes):
        for wk, mu, cov in zip(g.weights, g.means, g.covs):
            comp.append((c, np.log(wk) + stats.multivariate_normal(mu, cov).logpdf(x)))
    cls = np.array([c for c, _ in comp])
    L = np.stack([lp for _, lp in comp])
    for y in range(mix.n_classes):
        lc = np.logaddexp.reduce(L[cls == y], axis=0)
        lm = np.logaddexp.reduce(L + np.log(mix.class_probs[cls])[:, None], axis=0)
        for w in (0.0, 1.0, 3.5):
            np.testing.assert_allclose(
                tilted.log_density(mix, x, y, w), w * lc + (1 - w) * lm, rtol=1e-12, atol=1e-11
            )


@pytest.mark.parametrize("w", [0.0, 0.5, 1.0, 2.0, 3.0])
def test_sir_core_gaussian_closed_form(w):
    # p(x|y) = N(1, 0.25), p(x) = N(0, 1): the tilted law is N(m, V) with V = V1 V0 / (w V0 +
    # (1 - w) V1) (> 0 for every w >= 0 here since V1 < V0) and m = V (w m1 / V1 + (1 - w) m0 / V0).
    # Weights are bounded (V1 < V0), so SIR is consistent. N = 20000, 20 x oversampling, seed 11.
    m1, V1, m0, V0 = 1.0, 0.25, 0.0, 1.0
    V = V1 * V0 / (w * V0 + (1.0 - w) * V1)
    m = V * (w * m1 / V1 + (1.0 - w) * m0 / V0)
    cond, marg = GMM([1.0], [[m1]], [[[V1]]]), GMM([1.0], [[m0]], [[[V0]]])
    n = 20000
    s = tilted._sir(cond, marg, w, n, np.random.default_rng(11), 20)
    x = s.x[:, 0]
    assert s.x.shape == (n, 1) and 0 < s.ess <= 20 * n
    # resampling with replacement inflates the Monte Carlo variance by at most (1 + n / ess); the
    # margin is 5 such standard errors, plus the SIR bias, O(1 / (20 n)), negligible here
    infl = 1.0 + n / s.ess
    assert abs(x.mean() - m) < 5 * np.sqrt(V * infl / n), (x.mean(), m)
    assert abs(x.var() / V - 1.0) < 5 * np.sqrt(2.0 * infl / n), (x.var(), V)


def test_sir_core_margins_have_power():
    # the margins above reject a wrong law: the untilted SIR sample (w = 1, N(1, 0.25)) fails the
    # variance check against the w = 3 closed form (V = 0.1)
    cond, marg = GMM([1.0], [[1.0]], [[[0.25]]]), GMM([1.0], [[0.0]], [[[1.0]]])
    n = 20000
    s = tilted._sir(cond, marg, 1.0, n, np.random.default_rng(11), 20)
    V = 0.25 * 1.0 / (3 * 1.0 + (1 - 3) * 0.25)
    assert abs(s.x[:, 0].var() / V - 1.0) > 5 * np.sqrt(2.0 * (1 + n / s.ess) / n)


def _quadrature_cdf(w, y=0):
    grid = np.linspace(-12.0, 10.0, 40001)  # h = 5.5e-4: CDF error ~1e-7
    l0, l1, lm = _gauss1d_logpdfs(grid)
    dens = np.exp(w * (l0 if y == 0 else l1) + (1.0 - w) * lm)
    F = integrate.cumulative_trapezoid(dens, grid, initial=0.0)
    Z = F[-1]
    mean = integrate.trapezoid(grid * dens, grid) / Z
    return grid, F / Z, mean


@pytest.mark.parametrize("w", [0.0, 0.5, 1.0, 3.0])
def test_sample_gauss_1d_matches_quadrature(w):
    # SIR sample (n = 4000, 20 x oversampling, seed 0) vs the quadrature CDF by a KS test (p > 1e-3)
    mix = problem("gauss-1d")
    grid, F, mean = _quadrature_cdf(w)
    s = tilted.sample(mix, 0, w, 4000, seed=0)
    x = s.x[:, 0]
    assert stats.kstest(x, lambda a: np.interp(a, grid, F)).pvalue > 1e-3
    # weights bounded by p(y)^-w (w < 1) or p(y)^-(w-1): ESS at least 30 % of the 80000 proposals
    assert s.ess > 0.3 * 4000 * 20
    assert abs(x.mean() - mean) < 4 * x.std() / np.sqrt(4000) + 0.02
    if w != 1.0:  # the test has power: the untilted p(x|0) is rejected against the tilted CDF
        x1 = tilted.sample(mix, 0, 1.0, 4000, seed=0).x[:, 0]
        assert stats.kstest(x1, lambda a: np.interp(a, grid, F)).pvalue < 1e-6


def test_sample_endpoints_w0_marginal_w1_conditional():
    # w = 0 is p(x) and w = 1 is p(x|y) exactly (uniform weights): KS against the closed-form CDFs
    mix = problem("gauss-1d")
    x0 = tilted.sample(mix, 1, 0.0, 4000, seed=5).x[:, 0]
    x1 = tilted.sample(mix, 1, 1.0, 4000, seed=5).x[:, 0]

    def marg_cdf(a):
        return 0.5 * stats.norm(-1, 1).cdf(a) + 0.5 * stats.norm(1, 0.5).cdf(a)

    assert stats.kstest(x0, marg_cdf).pvalue > 1e-3
    assert stats.kstest(x1, stats.norm(1, 0.5).cdf).pvalue > 1e-3
    assert stats.kstest(x1, marg_cdf).pvalue < 1e-6  # and the two are told apart


def test_sample_reproducible_and_2d():
    mix = problem("two-class-2d")
    a = tilted.sample(mix, 0, 2.0, 300, seed=7)
    b = tilted.sample(GMMPath(mix), 0, 2.0, 300, seed=np.random.default_rng(7))
    np.testing.assert_array_equal(a.x, b.x)
    assert a.ess == b.ess and a.x.shape == (300, 2)
    x, ess = tilted.sample(mix, 0, 2.0, 300, seed=8)  # unpacks like a pair
    assert not np.array_equal(x, a.x)


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        (dict(w=-0.1), ValueError, "w must be >= 0"),
        (dict(w=float("nan")), ValueError, "w must be finite"),
        (dict(w="2"), TypeError, "w must be a real number"),
        (dict(w=True), TypeError, "w must be a real number"),
        (dict(n=0), ValueError, "n must be a positive int"),
        (dict(n=2.0), TypeError, "n must be a positive int"),
        (dict(oversample=0), ValueError, "oversample must be a positive int"),
        (dict(y=2), ValueError, "y must be a class in 0..1"),
        (dict(y=True), TypeError, "y must be an int"),
        (dict(seed=-1), ValueError, "seed must be a non-negative int"),
    ],
)
def test_sample_bad_inputs(kwargs, exc, words):
    args = dict(path=problem("gauss-1d"), y=0, w=2.0, n=10, seed=0)
    args.update(kwargs)
    with pytest.raises(exc, match=words):
        tilted.sample(**args)


def test_bad_inputs_path_and_x_and_missing_seed():
    mix = problem("gauss-1d")
    with pytest.raises(TypeError, match="path must be a GMMPath or a LabeledGMM"):
        tilted.log_density(mix.classes[0], np.zeros((2, 1)), 0, 1.0)
    with pytest.raises(ValueError, match=r"x has shape \(2, 2\)"):
        tilted.log_density(mix, np.zeros((2, 2)), 0, 1.0)
    with pytest.raises(ValueError, match="w must be finite"):
        tilted.log_density(mix, np.zeros((2, 1)), 0, float("inf"))
    with pytest.raises(TypeError, match="seed"):
        tilted.sample(mix, 0, 1.0, 10)
