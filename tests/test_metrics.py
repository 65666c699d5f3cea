"""Tests of refcfg.metrics against independent oracles (scipy, brute force, exact expectations)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import cdist
from scipy.special import logsumexp

from refcfg import metrics
from refcfg.mixture import GMM, LabeledGMM

from _oracles import gmm_component_logpdfs


def _labeled():
    a = GMM([0.3, 0.7], [[-2.0, 0.0], [1.0, 1.5]], [[0.5, 0.5], [0.8, 0.3]])
    b = GMM([1.0], [[2.0, -1.0]], [[[1.0, 0.4], [0.4, 0.6]]])
    return LabeledGMM([a, b], [0.6, 0.4])


# ------------------------------------------------------------------ energy distance


def test_energy_distance_matches_scipy_1d():
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, 700), rng.normal(0.3, 1.4, 900)
    ours = metrics.energy_distance(x, y, max_n=None)
    # scipy returns sqrt(2 E|X-Y| - E|X-X'| - E|Y-Y'|) computed from the empirical CDFs (V-statistic)
    ref = stats.energy_distance(x, y) ** 2
    assert abs(ours - ref) <= 1e-10 * max(ref, 1.0)


@pytest.mark.parametrize("unbiased", [False, True])
def test_energy_distance_matches_brute_force_2d(unbiased):
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 3)), rng.normal(0.2, 1.0, size=(250, 3))
    dxy, dxx, dyy = cdist(x, y), cdist(x, x), cdist(y, y)
    n, m = len(x), len(y)
    if unbiased:
        ref = 2 * dxy.mean() - dxx.sum() / (n * (n - 1)) - dyy.sum() / (m * (m - 1))
    else:
        ref = 2 * dxy.mean() - dxx.mean() - dyy.mean()
    ours = metrics.energy_distance(x, y, unbiased=unbiased, max_n=None, block=64)
    assert abs(ours - ref) <= 1e-10


def test_energy_distance_separates_and_vanishes():
    rng = np.random.default_rng(3)
    same = metrics.energy_distance(
        rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2)), unbiased=True
    )
    diff = metrics.energy_distance(
        rng.normal(size=(2000, 2)), rng.normal(0.5, 1, (2000, 2)), unbiased=True
    )
    # exact D^2 for a 0.5 mean shift in 2-D is ~0.12; the U-statistic's sd at n = 2000 is ~0.003
    assert abs(same) < 0.01 and diff > 0.08


def test_energy_distance_errors():
    with pytest.raises(ValueError, match="y has dimension"):
        metrics.energy_distance(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="non-finite"):
        metrics.energy_distance(np.array([0.0, np.nan]), np.zeros(3))
    with pytest.raises(ValueError, match="max_n"):
        metrics.energy_distance(np.zeros(5), np.zeros(5), max_n=1)


# ------------------------------------------------------------------ KS


def test_ks_per_dim_matches_scipy():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(500, 2)), rng.normal(size=(400, 2))
    s, p = metrics.ks_per_dim(x, y)
    for j in range(2):
        r = stats.ks_2samp(x[:, j], y[:, j])
        assert s[j] == r.statistic and p[j] == r.pvalue
    s1, p1 = metrics.ks_per_dim(x, [stats.norm.cdf, stats.norm(0, 2).cdf])
    assert p1[0] > 1e-3 and p1[1] < 1e-6
    with pytest.raises(ValueError, match="one per dimension"):
        metrics.ks_per_dim(x, [stats.norm.cdf])


# ------------------------------------------------------------------ modes and classes


def test_mode_mass_hard_matches_scipy_responsibilities():
    lab = _labeled()
    x, _ = lab.sample(3000, seed=5)
    g = lab.marginal
    lp = gmm_component_logpdfs(x, g.weights, g.means, g.covs)
    ref = np.bincount(np.argmax(lp, 1), minlength=g.K) / len(x)
    np.testing.assert_allclose(metrics.mode_mass(x, lab), ref, atol=1e-15)
    np.testing.assert_allclose(metrics.mode_mass(x, g), ref, atol=1e-15)


def test_mode_mass_soft_estimates_weights():
    # E_{x~p}[r_k(x)] = pi_k exactly; Monte Carlo with N = 20000, tolerance 5 standard errors.
    lab = _labeled()
    x, _ = lab.sample(20000, seed=6)
    r = lab.marginal.responsibilities(x)
    se = r.std(0) / np.sqrt(len(x))
    soft = metrics.mode_mass(x, lab, assign="soft")
    assert np.all(np.abs(soft - lab.marginal.weights) <= 5 * se + 1e-12)
    assert abs(soft.sum() - 1) < 1e-12


def test_nearest_mode_mass():
    x = np.array([[0.0, 0.1], [5.0, 5.0], [4.0, 4.9], [0.2, -0.3]])
    np.testing.assert_array_equal(metrics.nearest_mode_mass(x, [[0, 0], [5, 5]]), [0.5, 0.5])


def test_class_posteriors_match_scipy_and_tower_property():
    lab = _labeled()
    x, _ = lab.sample(20000, seed=7)
    lp = np.stack(
        [
            np.log(lab.class_probs[c])
            + logsumexp(gmm_component_logpdfs(x, g.weights, g.means, g.covs), axis=1)
            for c, g in enumerate(lab.classes)
        ],
        1,
    )
    ref = lp - logsumexp(lp, 1, keepdims=True)
    np.testing.assert_allclose(metrics.class_log_posteriors(x, lab), ref, atol=1e-10)
    # E_{x ~ p(x)}[p(y|x)] = p(y): N = 20000, tolerance 5 standard errors
    post = np.exp(ref[:, 1])
    cc = metrics.class_confidence(x, lab, 1)
    assert abs(cc.mean_prob - lab.class_probs[1]) <= 5 * post.std() / np.sqrt(len(x))
    assert cc.accuracy == pytest.approx(np.mean(np.argmax(ref, 1) == 1), abs=1e-15)
    assert cc.class_fraction.sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="class index"):
        metrics.class_confidence(x, lab, 2)
    with pytest.raises(TypeError, match="LabeledGMM"):
        metrics.class_confidence(x, lab.marginal, 0)


def test_mean_log_likelihood_is_minus_entropy():
    # E[log N(x; mu, S)] = -d/2 log(2 pi e) - 1/2 log det S. N = 40000, tolerance 5 standard errors.
    S = np.array([[1.0, 0.4], [0.4, 0.6]])
    lab = LabeledGMM([GMM([1.0], [[0.0, 0.0]], [1.0]), GMM([1.0], [[2.0, -1.0]], [S])], [0.5, 0.5])
    x, _ = lab.sample(40000, seed=8, y=1)
    m, se = metrics.mean_log_likelihood(x, lab, 1)
    exact = -np.log(2 * np.pi * np.e) - 0.5 * np.log(np.linalg.det(S))
    assert abs(m - exact) <= 5 * se


# ------------------------------------------------------------------ grids


def test_density_probs_matches_cdf_differences():
    edges = np.linspace(-6, 6, 481)  # h = 0.025; midpoint error O(h^2 f'') << 1e-4
    p = metrics.density_probs(stats.norm(0.5, 1.2).logpdf, edges)
    cdf = stats.norm(0.5, 1.2).cdf(edges)
    q = np.diff(cdf) / (cdf[-1] - cdf[0])
    assert np.max(np.abs(p - q)) < 1e-6 and abs(p.sum() - 1) < 1e-12


def test_histogram_tv_kl_and_noise_floor_2d():
    lab = _labeled()
    g = lab.marginal
    edges = [np.linspace(-5, 5, 41), np.linspace(-5, 5, 41)]
    q = metrics.density_probs(g.log_prob, edges)
    x = g.sample(20000, seed=9)
    h = metrics.histogram_probs(x, edges)
    tv = metrics.total_variation(h, q)
    floor, sd = metrics.tv_noise_floor(q, 20000, reps=10, seed=1)
    # exact samples: their TV to the exact cell masses is the multinomial noise floor
    # (+ the mass outside the grid, < 1e-3 here); tolerance 5 sd + 2e-3
    assert abs(tv - floor) < 5 * sd + 2e-3
    other = GMM([1.0], [[0.0, 0.0]], [1.0]).sample(20000, seed=9)
    assert metrics.total_variation(metrics.histogram_probs(other, edges), q) > floor + 0.2
    # mode mass of the exact law on a grid approximates the hard mode mass of its samples
    gm = metrics.grid_mode_mass(q, edges, g)
    mm = metrics.mode_mass(x, g)
    assert np.max(np.abs(gm - mm)) < 0.02


def test_tv_kl_small_vectors():
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.25, 0.5])
    assert metrics.total_variation(p, q) == pytest.approx(0.5)
    assert metrics.kl_divergence(p, q) == pytest.approx(np.log(2.0))
    assert metrics.kl_divergence(q, q) == 0.0
    with pytest.raises(ValueError, match="cells"):
        metrics.total_variation(p, q[:2])
    with pytest.raises(ValueError, match="increasing"):
        metrics.histogram_probs(np.zeros(3), np.array([0.0, 0.0, 1.0]))


def test_grid_centers_order_matches_histogramdd():
    edges = [np.array([0.0, 1.0, 3.0]), np.array([0.0, 2.0, 3.0, 4.0])]
    c, v = metrics.grid_centers(edges)
    x = np.array([[0.5, 3.5]])  # cell (0, 2)
    h = metrics.histogram_probs(x, edges)
    assert np.argmax(h) == 2 and np.allclose(c[2], [0.5, 3.5]) and v[2] == 1.0
    assert v.sum() == pytest.approx(12.0)
