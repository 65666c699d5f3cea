"""GMM and LabeledGMM against scipy densities, finite differences and exact moments.

Oracles: scipy.stats.multivariate_normal log-densities combined with logsumexp (tests/_oracles.py);
gradients by a 5-point central difference (h = 1e-4); sample moments with a fixed seed against the
exact mixture mean and covariance.
"""

import numpy as np
import pytest
from scipy.special import logsumexp

import refcfg

from _oracles import (
    fd_gradient,
    full_covs,
    gmm_component_logpdfs,
    gmm_log_prob,
    gmm_pdf_direct,
    random_gmm_params,
    rel_err,
    rowwise_rel_err,
)

COV_TYPES = ["full", "diag", "isotropic"]


def _make(cov_type, K=4, d=3, seed=0):
    rng = np.random.default_rng(seed)
    w, mu, covs = random_gmm_params(rng, K, d, cov_type)
    return refcfg.GMM(w, mu, covs), (w, mu, covs), rng


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_attributes(cov_type):
    g, (w, mu, covs), _ = _make(cov_type)
    assert g.K == 4 and g.d == 3
    assert g.cov_type == cov_type
    np.testing.assert_allclose(g.weights, w, rtol=1e-15)
    np.testing.assert_allclose(g.log_weights, np.log(w), rtol=1e-14)
    np.testing.assert_allclose(g.means, mu, rtol=1e-15)
    np.testing.assert_allclose(g.covs, full_covs(covs, 3), rtol=1e-13, atol=1e-14)
    assert g.eigvals.shape == (4, 3)
    # eigen-decomposition reproduces the covariance
    if g.eigvecs is None:
        assert cov_type != "full"
        recon = np.stack([np.diag(l) for l in g.eigvals])
    else:
        recon = np.einsum("kij,kj,klj->kil", g.eigvecs, g.eigvals, g.eigvecs)
    np.testing.assert_allclose(recon, full_covs(covs, 3), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_log_prob_vs_scipy(cov_type):
    """log p(x) vs scipy logpdfs summed with weights: rel err <= 1e-12 (float64)."""
    g, (w, mu, covs), rng = _make(cov_type)
    x = 2.5 * rng.standard_normal((50, 3))
    got = g.log_prob(x)
    assert got.shape == (50,)
    want = gmm_log_prob(x, w, mu, covs)
    assert rel_err(got, want) < 1e-12
    # also against the plain density sum (no logs) where it is representable
    np.testing.assert_allclose(np.exp(got), gmm_pdf_direct(x, w, mu, covs), rtol=1e-11)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_score_vs_finite_differences(cov_type):
    """grad log p vs 5-point FD of log_prob (h = 1e-4): row-wise rel err <= 1e-8."""
    g, (w, mu, covs), rng = _make(cov_type)
    x = 2.0 * rng.standard_normal((20, 3))
    s = g.score(x)
    assert s.shape == (20, 3)
    fd = fd_gradient(lambda y: gmm_log_prob(y, w, mu, covs), x, h=1e-4)
    assert rowwise_rel_err(s, fd, floor=1e-3) < 1e-8


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_responsibilities(cov_type):
    g, (w, mu, covs), rng = _make(cov_type)
    x = 3.0 * rng.standard_normal((30, 3))
    r = g.responsibilities(x)
    assert r.shape == (30, 4)
    np.testing.assert_allclose(r.sum(1), 1.0, rtol=0, atol=1e-14)
    assert np.all(r >= 0)
    lp = gmm_component_logpdfs(x, w, mu, covs)
    want = np.exp(lp - logsumexp(lp, axis=1, keepdims=True))
    np.testing.assert_allclose(r, want, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("cov_type", COV_TYPES)
def test_sample_moments(cov_type):
    """N = 200000, seed 1: the sample mean within 5 standard errors of the exact mixture mean
    (per coordinate), the sample covariance within 0.03 relative (Frobenius)."""
    g, (w, mu, covs), _ = _make(cov_type)
    C = full_covs(covs, 3)
    mean = w @ mu
    cov = sum(w[k] * (C[k] + np.outer(mu[k] - mean, mu[k] - mean)) for k in range(len(w)))
    n = 200_000
    xs = g.sample(n, seed=1)
    assert xs.shape == (n, 3) and xs.dtype == np.float64
    se = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(xs.mean(0) - mean) < 5 * se)
    assert np.linalg.norm(np.cov(xs.T) - cov) / np.linalg.norm(cov) < 0.03


def test_sample_reproducible_and_generator():
    g, _, _ = _make("full")
    a = g.sample(100, seed=7)
    b = g.sample(100, seed=7)
    np.testing.assert_array_equal(a, b)
    c = g.sample(100, seed=np.random.default_rng(7))
    assert c.shape == (100, 3)
    assert not np.array_equal(g.sample(100, seed=8), a)


def test_sample_with_components_frequencies_and_conditional_means():
    """component frequencies within 5 binomial standard errors; per-component sample mean within
    5 standard errors of mu_k (N = 100000, seed 3)."""
    g, (w, mu, covs), _ = _make("full")
    C = full_covs(covs, 3)
    n = 100_000
    x, k = g.sample_with_components(n, seed=3)
    assert x.shape == (n, 3) and k.shape == (n,)
    freq = np.bincount(k, minlength=4) / n
    assert np.all(np.abs(freq - w) < 5 * np.sqrt(w * (1 - w) / n))
    for j in range(4):
        xj = x[k == j]
        se = np.sqrt(np.diag(C[j]) / len(xj))
        assert np.all(np.abs(xj.mean(0) - mu[j]) < 5 * se)


def test_log_sum_exp_far_away():
    """|x| = 1e6: log_prob finite and equal to the scipy/logsumexp value; score finite and equal to
    the score of the nearest (dominant) component -Sigma^{-1}(x - mu)."""
    g, (w, mu, covs), _ = _make("full", K=3, d=2)
    x = np.array([[1e6, 0.0], [0.0, -1e6], [7e5, 7e5]])
    lp = g.log_prob(x)
    assert np.all(np.isfinite(lp))
    assert rel_err(lp, gmm_log_prob(x, w, mu, covs)) < 1e-12
    s = g.score(x)
    assert np.all(np.isfinite(s))
    r = g.responsibilities(x)
    assert np.all(np.isfinite(r))
    np.testing.assert_allclose(r.sum(1), 1.0, atol=1e-14)
    C = full_covs(covs, 2)
    lpc = gmm_component_logpdfs(x, w, mu, covs)
    want = np.stack(
        [-np.linalg.solve(C[k], x[i] - mu[k]) for i, k in enumerate(np.argmax(lpc, axis=1))]
    )
    assert rowwise_rel_err(s, want) < 1e-10


def test_many_components_high_dim_isotropic():
    """K = 1000 isotropic components in d = 256: finite and equal to scipy to 1e-11 relative."""
    rng = np.random.default_rng(5)
    K, d = 1000, 256
    w = rng.uniform(0.1, 1.0, K)
    w /= w.sum()
    mu = rng.standard_normal((K, d))
    var = rng.uniform(0.5, 1.5, K)
    g = refcfg.GMM(w, mu, var)
    x = rng.standard_normal((4, d)) * 2
    lp = g.log_prob(x)
    # independent isotropic formula (scipy with a full matrix would be slow at K = 1000)
    diff2 = ((x[:, None, :] - mu[None]) ** 2).sum(-1)  # (N, K)
    comp = np.log(w) - 0.5 * d * np.log(2 * np.pi * var) - 0.5 * diff2 / var
    want = logsumexp(comp, axis=1)
    assert np.all(np.isfinite(lp))
    assert rel_err(lp, want) < 1e-11
    r = np.exp(comp - want[:, None])
    want_s = -(r[:, :, None] * (x[:, None, :] - mu[None]) / var[None, :, None]).sum(1)
    assert rowwise_rel_err(g.score(x), want_s) < 1e-9
    # spot check a few components with scipy
    lp3 = gmm_component_logpdfs(x, w[:3], mu[:3], var[:3])
    assert rel_err(lp3, comp[:, :3]) < 1e-12


def test_single_point_1d():
    g = refcfg.GMM([0.3, 0.7], [[-1.0], [2.0]], [0.5, 2.0])
    x = np.array([[0.1], [3.0]])
    want = gmm_log_prob(x, np.array([0.3, 0.7]), np.array([[-1.0], [2.0]]), np.array([0.5, 2.0]))
    assert rel_err(g.log_prob(x), want) < 1e-13


# ---------------------------------------------------------------- LabeledGMM


def _labeled(seed=0):
    rng = np.random.default_rng(seed)
    cls = []
    params = []
    for K, ct in ((2, "full"), (3, "full"), (1, "full")):
        p = random_gmm_params(rng, K, 2, ct)
        params.append(p)
        cls.append(refcfg.GMM(*p))
    py = np.array([0.5, 0.3, 0.2])
    return refcfg.LabeledGMM(cls, py), params, py, rng


def test_labeled_marginal_is_class_weighted_mixture():
    L, params, py, rng = _labeled()
    assert L.n_classes == 3 and L.d == 2
    np.testing.assert_allclose(L.class_probs, py)
    m = L.marginal
    assert m.K == 6
    want_w = np.concatenate([py[c] * params[c][0] for c in range(3)])
    np.testing.assert_allclose(m.weights, want_w, rtol=1e-14)
    np.testing.assert_array_equal(L.component_class, [0, 0, 1, 1, 1, 2])
    for c, sl in enumerate(L.class_slices):
        np.testing.assert_allclose(m.means[sl], params[c][1])
    x = rng.standard_normal((10, 2)) * 3
    # p(x) = sum_y p(y) p(x|y), each p(x|y) by scipy
    want = logsumexp(
        np.stack([np.log(py[c]) + gmm_log_prob(x, *params[c]) for c in range(3)]), axis=0
    )
    assert rel_err(m.log_prob(x), want) < 1e-12
    assert L.class_gmm(1).K == 3


def test_labeled_sample_labels_and_classes():
    """labels drawn with p(y) (5 binomial s.e., N = 60000, seed 2); class-conditional samples have
    the class mean (5 s.e.)."""
    L, params, py, _ = _labeled()
    n = 60_000
    x, lab = L.sample(n, seed=2)
    assert x.shape == (n, 2) and lab.shape == (n,)
    freq = np.bincount(lab, minlength=3) / n
    assert np.all(np.abs(freq - py) < 5 * np.sqrt(py * (1 - py) / n))
    x1, lab1 = L.sample(20_000, seed=4, y=1)
    assert np.all(lab1 == 1)
    w, mu, covs = params[1]
    mean = w @ mu
    C = full_covs(covs, 2)
    cov = sum(w[k] * (C[k] + np.outer(mu[k] - mean, mu[k] - mean)) for k in range(len(w)))
    assert np.all(np.abs(x1.mean(0) - mean) < 5 * np.sqrt(np.diag(cov) / 20_000))


def test_zero_weight_component_is_ignored():
    """A component of weight 0 changes nothing (log-sum-exp over a -inf log weight, no NaN)."""
    rng = np.random.default_rng(11)
    w, mu, covs = random_gmm_params(rng, 2, 2, "full")
    g0 = refcfg.GMM([1.0, 0.0], mu, covs)
    g1 = refcfg.GMM([1.0], mu[:1], covs[:1])
    x = 3 * rng.standard_normal((6, 2))
    np.testing.assert_allclose(g0.log_prob(x), g1.log_prob(x), rtol=1e-14)
    np.testing.assert_allclose(g0.score(x), g1.score(x), rtol=1e-13, atol=1e-15)
    r = g0.responsibilities(x)
    assert np.all(r[:, 1] == 0) and np.allclose(r[:, 0], 1.0, atol=0)
    path0, path1 = refcfg.GMMPath(g0, "cosine"), refcfg.GMMPath(g1, "cosine")
    for t in (0.0, 0.5, 1.0):
        np.testing.assert_allclose(
            path0.velocity(x, t), path1.velocity(x, t), rtol=1e-13, atol=1e-15
        )
        np.testing.assert_allclose(
            path0.divergence(x, t), path1.divergence(x, t), rtol=1e-13, atol=1e-14
        )
    assert np.all(g0.sample_with_components(1000, seed=0)[1] == 0)


def test_sampling_refuses_what_cannot_fit_before_drawing(monkeypatch):
    monkeypatch.setenv("REFCFG_MEMORY_LIMIT", "1G")
    g = refcfg.GMM(
        [0.5, 0.5], [[0.0, 1.0], [1.0, 0.0]], [[[1.0, 0.2], [0.2, 1.0]], [[1.0, 0.0], [0.0, 2.0]]]
    )
    with pytest.raises(
        ValueError,
        match=r"drawing 1000000000 samples in dimension 2 needs an "
        r"estimated [\d.]+ GiB.*lower n",
    ):
        g.sample(10**9, seed=0)
    with pytest.raises(ValueError, match=r"drawing 1000000000 samples"):
        refcfg.LabeledGMM([g]).sample(10**9, seed=0)
    assert g.sample(1000, seed=0).shape == (1000, 2)
