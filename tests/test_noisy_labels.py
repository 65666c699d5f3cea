"""refcfg.noisy_labels: the relabelled mixture and its exact fields, against independent routes.

Two oracles, neither of which reads the relabelled mixture's components:
1. 1-D quadrature: p_t(x | y~) = int N(x; alpha z, beta^2) p(z | y~) dz with the data density written
   from scipy's normal pdf and the confusion formula, integrated by scipy.integrate.quad; the
   velocity from E[z | x_t = x, y~] by the same quadrature (u = dalpha E[z|x] + dbeta E[eps|x]).
2. Class-level mixing in any d: p_t(x | y~) = sum_y C[y, y~] p(y) p_t(x | y) / p(y~) with the CLEAN
   path's class fields, so u_t(x | y~) = sum_y P(y | x_t, y~) u_t(x | y) with
   P(y | x_t, y~) proportional to C[y, y~] p(y) p_t(x | y).
Tolerances: 1e-10 (absolute on fields of size O(1), relative on log-densities), float64.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate
from scipy.special import logsumexp
from scipy.stats import norm

import refcfg
from refcfg.noisy_labels import check_confusion, noisy_class_probs, relabel, symmetric_confusion

TIMES = (0.0, 0.013, 0.37, 0.81, 1.0)


def _gauss1d_clean():
    return refcfg.problem("gauss-1d")  # N(-1, 1) and N(1, 0.5^2), p(y) = (0.5, 0.5)


def _noisy_data_pdf(z, C, yt, probs=(0.5, 0.5), params=((-1.0, 1.0), (1.0, 0.5))):
    """p(z | y~) from the confusion formula with scipy densities (no refcfg)."""
    p_yt = sum(probs[y] * C[y, yt] for y in range(2))
    return sum(C[y, yt] * probs[y] * norm.pdf(z, m, s) for y, (m, s) in enumerate(params)) / p_yt


def _quad_fields(x, t, C, yt):
    """(log p_t(x|y~), u_t(x|y~)) for the linear schedule by 1-D quadrature over the data z."""
    al, be, da, db = t, 1.0 - t, 1.0, -1.0
    if be == 0.0:  # t = 1: x = z, E[z|x] = x, E[eps|x] = 0
        return np.log(_noisy_data_pdf(x, C, yt)), da * x
    if al == 0.0:  # t = 0: x = eps, independent of z
        mean_z = integrate.quad(
            lambda z: z * _noisy_data_pdf(z, C, yt), -30, 30, epsabs=1e-14, epsrel=1e-13, limit=200
        )[0]
        return norm.logpdf(x), da * mean_z + db * x
    k = lambda z: norm.pdf(x, al * z, be) * _noisy_data_pdf(z, C, yt)
    # the data density is below 1e-120 outside [-25, 25]; break points at the data means and at
    # x / alpha, where the kernel N(x; alpha z, beta^2) peaks (a narrow bump as t -> 1)
    lo, hi = -25.0, 25.0
    opts = dict(
        epsabs=0.0,
        epsrel=1e-12,
        limit=400,
        points=sorted({-1.0, 1.0, float(np.clip(x / al, lo + 1, hi - 1))}),
    )
    Z = integrate.quad(k, lo, hi, **opts)[0]
    Ez = integrate.quad(lambda z: z * k(z), lo, hi, **opts)[0] / Z
    Eeps = (x - al * Ez) / be
    return np.log(Z), da * Ez + db * Eeps


# the fast tier keeps one case, a noise level at an interior time (each case ~1 s); the full suite
# runs every level at both endpoints and three interior times
_QUAD_FAST = {(0.15, 0.37)}


@pytest.mark.parametrize(
    "rho, t",
    [
        pytest.param(rho, t, marks=() if (rho, t) in _QUAD_FAST else pytest.mark.slow)
        for rho in (0.0, 0.15, 0.4)
        for t in TIMES
    ],
)
def test_noisy_fields_match_quadrature_1d(rho, t):
    C = symmetric_confusion(2, rho)
    path = refcfg.GMMPath(relabel(_gauss1d_clean(), C), "linear")
    xs = np.array([-2.3, -0.4, 0.0, 0.7, 1.9])
    for yt in (0, 1):
        lp = path.log_prob(xs[:, None], t, yt)
        u = path.velocity(xs[:, None], t, yt)[:, 0]
        for i, x in enumerate(xs):
            lq, uq = _quad_fields(x, t, C, yt)
            assert abs(lp[i] - lq) <= 1e-10 * max(1.0, abs(lq)), (rho, t, yt, x, lp[i], lq)
            assert abs(u[i] - uq) <= 1e-10, (rho, t, yt, x, u[i], uq)


def _class_mixing(clean_path, C, x, t, yt):
    """(log p_t(x|y~), u_t(x|y~), score_t(x|y~)) from the clean path's class fields (oracle 2)."""
    mix = clean_path.mixture
    lps, us, ss = [], [], []
    for y in range(mix.n_classes):
        f = clean_path.fields(x, t, y, want=("logp", "velocity", "score"))
        lps.append(f["logp"])
        us.append(f["velocity"])
        ss.append(f["score"])
    p_yt = noisy_class_probs(mix, C)[yt]
    with np.errstate(divide="ignore"):
        ell = np.stack(lps, 1) + np.log(C[:, yt] * mix.class_probs)[None, :] - np.log(p_yt)
    logp = logsumexp(ell, axis=1)
    post = np.exp(ell - logp[:, None])  # P(y | x_t, y~), (N, C)
    return (
        logp,
        np.einsum("ny,ynd->nd", post, np.array(us)),
        np.einsum("ny,ynd->nd", post, np.array(ss)),
    )


@pytest.mark.parametrize("problem", ["two-class-2d", "mit-symmetric"])
@pytest.mark.parametrize("t", TIMES)
def test_noisy_fields_match_class_mixing(problem, t):
    clean = refcfg.problem(problem)
    Cn = clean.n_classes
    rng = np.random.default_rng(3)
    M = rng.dirichlet(np.ones(Cn), size=Cn) * 0.5 + 0.5 * np.eye(Cn)  # a generic row-stochastic C
    clean_path = refcfg.GMMPath(clean, "cosine")
    noisy_path = refcfg.GMMPath(relabel(clean, M), "cosine")
    x = rng.normal(size=(7, clean.d)) * (4.0 if problem == "mit-symmetric" else 1.5)
    for yt in range(Cn):
        f = noisy_path.fields(x, t, yt, want=("logp", "velocity", "score"))
        lq, uq, sq = _class_mixing(clean_path, M, x, t, yt)
        np.testing.assert_allclose(f["logp"], lq, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(f["velocity"], uq, rtol=0, atol=1e-10 * max(1, np.abs(uq).max()))
        np.testing.assert_allclose(f["score"], sq, rtol=0, atol=1e-10 * max(1, np.abs(sq).max()))


@pytest.mark.parametrize("t", TIMES)
def test_marginal_is_unchanged_and_cfg_w1_is_conditional(t):
    clean = refcfg.problem("two-class-2d")
    noisy = relabel(clean, symmetric_confusion(2, 0.3))
    cp, npth = refcfg.GMMPath(clean), refcfg.GMMPath(noisy)
    x = np.random.default_rng(0).normal(size=(9, 2)) * 2
    # the labels move, the data do not: p_t(x) and u_t(x) are the clean ones
    np.testing.assert_allclose(npth.log_prob(x, t), cp.log_prob(x, t), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(npth.velocity(x, t), cp.velocity(x, t), rtol=0, atol=1e-12)
    # CFG at w = 1 is the noisy conditional, at w = 0 the (clean) unconditional field
    np.testing.assert_allclose(
        npth.cfg_velocity(x, t, 0, 1.0), npth.velocity(x, t, 0), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        npth.cfg_velocity(x, t, 0, 0.0), cp.velocity(x, t), rtol=0, atol=1e-12
    )


def test_rho_zero_gives_back_the_clean_classes():
    clean = refcfg.problem("two-class-2d")
    same = relabel(clean, symmetric_confusion(2, 0.0))
    for g, h in zip(clean.classes, same.classes):
        np.testing.assert_array_equal(g.means, h.means)
        np.testing.assert_allclose(g.weights, h.weights, rtol=0, atol=1e-15)
        np.testing.assert_allclose(g.covs, h.covs, rtol=0, atol=1e-15)
    np.testing.assert_allclose(same.class_probs, clean.class_probs, rtol=0, atol=1e-15)


def test_noisy_class_probs_and_weights():
    clean = refcfg.LabeledGMM(
        [
            refcfg.GMM([1.0], [[0.0]], [1.0]),
            refcfg.GMM([1.0], [[3.0]], [1.0]),
            refcfg.GMM([0.5, 0.5], [[6.0], [7.0]], [1.0, 2.0]),
        ],
        [0.2, 0.3, 0.5],
    )
    M = np.array([[0.7, 0.2, 0.1], [0.0, 1.0, 0.0], [0.25, 0.25, 0.5]])
    noisy = relabel(clean, M)
    p = np.array([0.2 * 0.7 + 0.5 * 0.25, 0.2 * 0.2 + 0.3 + 0.5 * 0.25, 0.2 * 0.1 + 0.5 * 0.5])
    np.testing.assert_allclose(noisy.class_probs, p, rtol=1e-15)
    # class 2~: clean classes 0 and 2 only (C[1, 2] = 0 leaves class 1's component out)
    g = noisy.classes[2]
    np.testing.assert_array_equal(g.means[:, 0], [0.0, 6.0, 7.0])
    np.testing.assert_allclose(g.weights, np.array([0.02, 0.125, 0.125]) / p[2], rtol=1e-14)


@pytest.mark.parametrize("rho", [0.0, 0.5, 1.0])
def test_symmetric_confusion(rho):
    M = symmetric_confusion(3, rho)
    np.testing.assert_allclose(M.sum(1), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(np.diag(M), 1 - rho, rtol=0, atol=1e-15)
    assert M[0, 1] == pytest.approx(rho / 2)


def test_bad_inputs_name_the_argument():
    clean = refcfg.problem("gauss-1d")
    with pytest.raises(ValueError, match="confusion has shape"):
        relabel(clean, np.eye(3))
    with pytest.raises(ValueError, match="row-stochastic"):
        relabel(clean, [[0.5, 0.4], [0.0, 1.0]])
    with pytest.raises(ValueError, match="confusion must be >= 0"):
        check_confusion([[1.2, -0.2], [0.0, 1.0]], 2)
    with pytest.raises(ValueError, match="noisy class 1 has probability 0"):
        relabel(clean, [[1.0, 0.0], [1.0, 0.0]])
    with pytest.raises(TypeError, match="mixture must be a LabeledGMM"):
        relabel(clean.classes[0], np.eye(1))
    with pytest.raises(ValueError, match="rho must be <= 1"):
        symmetric_confusion(2, 1.5)
    with pytest.raises(ValueError, match="rho must be 0 for a single class"):
        symmetric_confusion(1, 0.1)
    with pytest.raises(TypeError, match="confusion must be a"):
        relabel(clean, "identity")


@pytest.mark.parametrize(
    "problem", ["gauss-1d", "two-class-2d", pytest.param("tree", marks=pytest.mark.slow)]
)
def test_problem_toml_round_trip(problem, tmp_path):
    # the noisy law written as a problem file loads back: means and class probabilities exactly,
    # weights and covariances to rounding (the GMM renormalises and symmetrises them), and the fields
    # agree to 1e-12
    from refcfg.noisy_labels import problem_toml
    from refcfg.problems import load_problem

    clean = refcfg.problem(problem)
    noisy = relabel(clean, symmetric_confusion(clean.n_classes, 0.3))
    f = tmp_path / "noisy.toml"
    f.write_text(problem_toml(noisy, 'noisy "q"', "rho = 0.3"))
    back = load_problem(f)
    np.testing.assert_array_equal(back.class_probs, noisy.class_probs)
    for a, b in zip(noisy.classes, back.classes):
        np.testing.assert_allclose(a.weights, b.weights, rtol=0, atol=1e-15)
        np.testing.assert_array_equal(a.means, b.means)
        np.testing.assert_allclose(a.covs, b.covs, rtol=0, atol=1e-15)
    x = np.random.default_rng(0).normal(size=(50, clean.d))
    pa, pb = refcfg.GMMPath(noisy, "linear"), refcfg.GMMPath(back, "linear")
    for t in (0.0, 0.4, 1.0):
        np.testing.assert_allclose(pa.velocity(x, t, 0), pb.velocity(x, t, 0), rtol=0, atol=1e-12)


def test_problem_toml_bad_inputs():
    from refcfg.noisy_labels import problem_toml

    with pytest.raises(TypeError, match="mixture must be a LabeledGMM"):
        problem_toml(refcfg.problem("gauss-1d").marginal, "x")
    with pytest.raises(TypeError, match="name and description must be strings"):
        problem_toml(refcfg.problem("gauss-1d"), 3)
