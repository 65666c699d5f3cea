"""Noisy classifier (Bayes, eqs. 60-61), CFG (eq. 65), classifier guidance (eq. 62) and field objects.

Oracles: per-class scipy densities of the marginal path (tests/_oracles.PathOracle) combined by Bayes'
rule; finite differences (5-point, h = 1e-4) of log p_t(y|x); the guided combination w a + (1 - w) b
written out from the oracle's velocities and scores.
"""

import numpy as np
import pytest
from scipy.special import logsumexp

import refcfg

from _oracles import (
    PathOracle,
    fd_gradient,
    full_covs,
    random_gmm_params,
    rel_err,
    rowwise_rel_err,
    schedule_formula,
)

T_ALL = [0.0, 1e-6, 0.01, 0.2, 0.5, 0.8, 0.99, 1.0]
WS = [-1.0, 0.0, 0.3, 1.0, 2.0, 4.0, 7.5]


def _setup(seed=0, name="linear"):
    rng = np.random.default_rng(seed)
    cls = [
        random_gmm_params(rng, K, 2, ct, scale=1.5)
        for K, ct in ((2, "full"), (3, "diag"), (1, "isotropic"))
    ]
    py = np.array([0.5, 0.2, 0.3])
    path = refcfg.GMMPath(
        refcfg.LabeledGMM([refcfg.GMM(*c) for c in cls], py), refcfg.schedule(name)
    )
    return path, cls, py, rng


def _marg(cls, py):
    w = np.concatenate([py[c] * cls[c][0] for c in range(len(cls))])
    mu = np.concatenate([c[1] for c in cls])
    covs = np.concatenate([full_covs(c[2], 2) for c in cls])
    return w, mu, covs


def _oracles(cls, py, name, t):
    return (
        [PathOracle(*c, schedule_formula(name, t)) for c in cls],
        PathOracle(*_marg(cls, py), schedule_formula(name, t)),
    )


@pytest.mark.parametrize("name", ["linear", "cosine", "vp"])
def test_bayes_class_posterior(name):
    """log p_t(y|x) = log p(y) + log p_t(x|y) - log p_t(x) from scipy densities; sum_y p_t(y|x) = 1;
    p_t(x) = sum_y p(y) p_t(x|y). abs err in log space <= 1e-10 * max(1, |value|)."""
    path, cls, py, rng = _setup(name=name)
    x = 2.5 * rng.standard_normal((12, 2))
    for t in T_ALL:
        oc, om = _oracles(cls, py, name, t)
        lc = path.class_log_probs(x, t)
        assert lc.shape == (12, 3)
        assert np.all(np.isfinite(lc))
        np.testing.assert_allclose(np.exp(lc).sum(1), 1.0, rtol=0, atol=1e-13)
        want = (
            np.stack([np.log(py[c]) + oc[c].log_prob(x) for c in range(3)], 1)
            - om.log_prob(x)[:, None]
        )
        assert np.max(np.abs(lc - want) / np.maximum(1, np.abs(want))) < 1e-10, t
        # p_t(x) = sum_y p(y) p_t(x|y), from the library's own conditional log-densities
        mix = logsumexp(
            np.stack([np.log(py[c]) + path.log_prob(x, t, c) for c in range(3)]), axis=0
        )
        assert rel_err(path.log_prob(x, t), mix) < 1e-12


def test_classifier_uninformative_at_t0():
    """At t = 0 (alpha_0 = 0) x carries no information on y: p_0(y|x) = p(y), grad = 0."""
    path, cls, py, rng = _setup()
    x = 3 * rng.standard_normal((5, 2))
    np.testing.assert_allclose(
        path.class_log_probs(x, 0.0), np.log(np.tile(py, (5, 1))), rtol=1e-14
    )
    for y in range(3):
        np.testing.assert_allclose(path.classifier_score(x, 0.0, y), 0.0, atol=1e-14)


@pytest.mark.parametrize("name", ["linear", "sqrt"])
def test_classifier_score(name):
    """grad_x log p_t(y|x) = score(x|y) - score(x) and = 5-point FD of class_log_probs[:, y]."""
    path, cls, py, rng = _setup(seed=1, name=name)
    x = 2 * rng.standard_normal((8, 2))
    for t in (0.1, 0.5, 0.9, 1.0):
        oc, om = _oracles(cls, py, name, t)
        for y in range(3):
            g = path.classifier_score(x, t, y)
            assert rel_err(g, oc[y].score(x) - om.score(x), floor=1e-8) < 1e-10, (t, y)
            np.testing.assert_allclose(
                g, path.score(x, t, y) - path.score(x, t), rtol=1e-12, atol=1e-13
            )
            fd = fd_gradient(lambda z: path.class_log_probs(z, t)[:, y], x, h=1e-4)
            assert rowwise_rel_err(g, fd, floor=1e-2) < 1e-7, (t, y)
        # per-particle labels
        ya = np.array([0, 1, 2, 0, 1, 2, 0, 1])
        ga = path.classifier_score(x, t, ya)
        for i in range(8):
            np.testing.assert_allclose(
                ga[i], path.classifier_score(x[i : i + 1], t, int(ya[i]))[0], rtol=1e-13, atol=1e-14
            )


@pytest.mark.parametrize("name", ["linear", "cosine", "sqrt", "vp"])
def test_cfg_formula_and_special_weights(name):
    """cfg_velocity = w u(x|y) + (1 - w) u(x|null) (eq. 65) vs the oracle velocities (rel <= 1e-10);
    w = 1 gives u(x|y), w = 0 gives u(x|null) exactly (<= 1e-14 rel)."""
    path, cls, py, rng = _setup(seed=2, name=name)
    x = 2 * rng.standard_normal((10, 2))
    for t in T_ALL:
        oc, om = _oracles(cls, py, name, t)
        vm, sm = om.velocity(x), om.score(x)
        for y in range(3):
            vy, sy = oc[y].velocity(x), oc[y].score(x)
            uy, un = path.velocity(x, t, y), path.velocity(x, t)
            assert rel_err(path.cfg_velocity(x, t, y, 1.0), uy) < 1e-14
            assert rel_err(path.cfg_velocity(x, t, y, 0.0), un) < 1e-14
            for w in WS:
                want = w * vy + (1 - w) * vm
                assert rel_err(path.cfg_velocity(x, t, y, w), want, floor=1e-3) < 1e-10, (t, y, w)
                want_s = w * sy + (1 - w) * sm
                assert rel_err(path.cfg_score(x, t, y, w), want_s, floor=1e-3) < 1e-10, (t, y, w)


@pytest.mark.parametrize("name", ["linear", "cosine", "sqrt", "vp"])
def test_classifier_guidance_equals_cfg(name):
    """u(x) + w a_t grad log p_t(y|x) (eq. 62) equals CFG for every w, t in [0, 1] incl. t = 0, 1e-6, 1:
    rel <= 1e-9 (a_t ~ 1/t amplifies round-off near t = 0 by at most ~1e-16/t)."""
    path, cls, py, rng = _setup(seed=3, name=name)
    x = 2 * rng.standard_normal((10, 2))
    for t in T_ALL:
        for y in range(3):
            for w in WS:
                cg = path.classifier_guided_velocity(x, t, y, w)
                cf = path.cfg_velocity(x, t, y, w)
                assert np.all(np.isfinite(cg)), (t, y, w)
                assert rel_err(cg, cf, floor=1e-8) < 1e-9, (t, y, w)
        # the literal eq. 62 at interior t, with textbook a_t and the oracle classifier gradient
        if 0.01 <= t < 1.0:
            al, be, da, db, bdb = schedule_formula(name, t)
            a_t = be * be * da / al - bdb
            oc, om = _oracles(cls, py, name, t)
            for y in range(3):
                want = om.velocity(x) + 2.5 * a_t * (oc[y].score(x) - om.score(x))
                assert rel_err(path.classifier_guided_velocity(x, t, y, 2.5), want) < 1e-10, (t, y)


def test_per_particle_labels_with_null_in_cfg():
    """Label arrays may mix classes and NULL; a NULL row gets u(x|null) for every w."""
    path, cls, py, rng = _setup(seed=4)
    x = 2 * rng.standard_normal((7, 2))
    y = np.array([0, refcfg.NULL, 2, 1, refcfg.NULL, 0, 2])
    w_arr = np.array([0.0, 1.0, 3.0, -1.0, 2.0, 5.0, 0.5])
    # scalar times first (labels alone), then one time per particle; scalar and per-particle w
    for t in (0.0, 0.4, 1.0, np.array([0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0])):
        tt = np.broadcast_to(t, (7,))
        for w in (0.0, 1.0, 3.0, w_arr):
            ww = np.broadcast_to(w, (7,))
            for fn in ("cfg_velocity", "classifier_guided_velocity", "cfg_score"):
                got = getattr(path, fn)(x, t, y, w)
                for i in range(7):
                    if y[i] == refcfg.NULL:
                        base = "score" if fn == "cfg_score" else "velocity"
                        want = getattr(path, base)(x[i : i + 1], float(tt[i]))[0]
                    else:
                        want = getattr(path, fn)(
                            x[i : i + 1], float(tt[i]), int(y[i]), float(ww[i])
                        )[0]
                    np.testing.assert_allclose(
                        got[i], want, rtol=1e-12, atol=1e-13, err_msg=f"{fn} t={t} w={w} row {i}"
                    )
        # the classifier gradient and class posteriors row by row (0 on NULL rows)
        cs = path.classifier_score(x, t, y)
        clp = path.class_log_probs(x, t)
        for i in range(7):
            want = (
                0.0
                if y[i] == refcfg.NULL
                else path.classifier_score(x[i : i + 1], float(tt[i]), int(y[i]))[0]
            )
            np.testing.assert_allclose(cs[i], want, rtol=1e-12, atol=1e-13)
            np.testing.assert_allclose(
                clp[i], path.class_log_probs(x[i : i + 1], float(tt[i]))[0], rtol=1e-13, atol=1e-14
            )


# ------------------------------------------------------------------ field objects


def test_field_objects_match_path_methods():
    path, cls, py, rng = _setup(seed=5, name="cosine")
    x = 2 * rng.standard_normal((6, 2))
    f_un, f_1 = path.field(), path.field(1)
    assert f_un.d == 2 and f_1.y == 1 and f_un.path is path
    for t in (0.0, 0.4, 1.0):
        np.testing.assert_allclose(f_un.velocity(x, t), path.velocity(x, t), rtol=1e-15)
        np.testing.assert_allclose(f_1.velocity(x, t), path.velocity(x, t, 1), rtol=1e-15)
        np.testing.assert_allclose(f_1.score(x, t), path.score(x, t, 1), rtol=1e-15)
        for w in (0.0, 1.0, 2.5):
            np.testing.assert_allclose(
                path.cfg(1, w).velocity(x, t), path.cfg_velocity(x, t, 1, w), rtol=1e-14, atol=1e-15
            )
            np.testing.assert_allclose(
                path.cfg(1, w).score(x, t), path.cfg_score(x, t, 1, w), rtol=1e-14, atol=1e-15
            )
            np.testing.assert_allclose(
                path.classifier_guided(1, w).velocity(x, t),
                path.classifier_guided_velocity(x, t, 1, w),
                rtol=1e-14,
                atol=1e-15,
            )
            np.testing.assert_allclose(
                path.classifier_guided(1, w).velocity(x, t),
                path.cfg(1, w).velocity(x, t),
                rtol=1e-9,
                atol=1e-12,
            )
    cf = path.cfg(2, 3.0)
    assert cf.w == 3.0 and cf.y == 2 and cf.path is path


def test_guided_any_two_fields_two_gaussians():
    """refcfg.guided(a, b, w) = w a + (1 - w) b for two single-Gaussian paths (velocity, score,
    divergence) against the oracle; and for an autoguidance-style pair (a class field of the model
    vs a weaker model: the same mixture with inflated covariances)."""
    rng = np.random.default_rng(6)
    ga = ([1.0], rng.standard_normal((1, 2)), np.array([[[1.0, 0.3], [0.3, 0.5]]]))
    gb = ([1.0], rng.standard_normal((1, 2)), np.array([0.7]))
    pa = refcfg.GMMPath(refcfg.GMM(*ga), "linear")
    pb = refcfg.GMMPath(refcfg.GMM(*gb), "linear")
    x = rng.standard_normal((5, 2))
    for w in (-0.5, 0.0, 1.0, 2.0):
        g = refcfg.guided(pa.field(), pb.field(), w)
        assert g.w == w and g.d == 2
        for t in (0.0, 0.3, 0.9, 1.0):
            oa, ob = (PathOracle(*p, schedule_formula("linear", t)) for p in (ga, gb))
            assert (
                rel_err(g.velocity(x, t), w * oa.velocity(x) + (1 - w) * ob.velocity(x), floor=1e-8)
                < 1e-10
            )
            assert (
                rel_err(g.score(x, t), w * oa.score(x) + (1 - w) * ob.score(x), floor=1e-8) < 1e-10
            )
            np.testing.assert_allclose(
                g.divergence(x, t),
                w * pa.divergence(x, t) + (1 - w) * pb.divergence(x, t),
                rtol=1e-13,
                atol=1e-13,
            )
    # autoguidance-style: guide the class-1 field with a weaker (blurred) model of the same class
    path, cls, py, rng = _setup(seed=7)
    w1, mu1, c1 = cls[1]
    weak = refcfg.GMMPath(refcfg.GMM(w1, mu1, 2.0 * np.asarray(c1)), "linear")
    x = 2 * rng.standard_normal((5, 2))
    g = refcfg.guided(path.field(1), weak.field(), 2.0)
    for t in (0.2, 0.7):
        want = 2.0 * path.velocity(x, t, 1) - weak.velocity(x, t)
        np.testing.assert_allclose(g.velocity(x, t), want, rtol=1e-13, atol=1e-13)


def test_guided_rejects_mismatched_fields():
    rng = np.random.default_rng(8)
    p2 = refcfg.GMMPath(refcfg.GMM([1.0], rng.standard_normal((1, 2)), [1.0]), "linear")
    p3 = refcfg.GMMPath(refcfg.GMM([1.0], rng.standard_normal((1, 3)), [1.0]), "linear")
    with pytest.raises(ValueError, match="d"):
        refcfg.guided(p2.field(), p3.field(), 2.0)
    with pytest.raises(ValueError, match="w"):
        refcfg.guided(p2.field(), p2.field(), float("nan"))


def test_zero_probability_class():
    """p(y=1) = 0: log p_t(1|x) = -inf, the other class has probability 1, yet u(x|y=1) is the exact
    class-1 field and CFG / classifier guidance towards it are finite and agree (abs <= 1e-12)."""
    rng = np.random.default_rng(9)
    c0, c1 = random_gmm_params(rng, 2, 2, "full"), random_gmm_params(rng, 2, 2, "diag")
    path = refcfg.GMMPath(
        refcfg.LabeledGMM([refcfg.GMM(*c0), refcfg.GMM(*c1)], [1.0, 0.0]), "linear"
    )
    x = rng.standard_normal((4, 2))
    for t in (0.0, 0.5, 1.0):
        clp = path.class_log_probs(x, t)
        assert np.all(clp[:, 1] == -np.inf) and np.allclose(clp[:, 0], 0.0, atol=1e-15)
        sf = schedule_formula("linear", t)
        assert rel_err(path.velocity(x, t, 1), PathOracle(*c1, sf).velocity(x)) < 1e-10
        assert rel_err(path.velocity(x, t), PathOracle(*c0, sf).velocity(x)) < 1e-10
        cg, cf = path.classifier_guided_velocity(x, t, 1, 2.0), path.cfg_velocity(x, t, 1, 2.0)
        assert np.all(np.isfinite(cg)) and np.max(np.abs(cg - cf)) < 1e-12


def test_classifier_score_small_t():
    """Near t = 0 the classifier gradient is O(alpha_t); it must match the oracle difference of class
    and marginal scores at t = 1e-3 (rel <= 1e-9: the oracle itself cancels ~-x - (-x) there)."""
    path, cls, py, rng = _setup(seed=10)
    x = 2 * rng.standard_normal((6, 2))
    for t in (1e-3, 1e-2):
        oc, om = _oracles(cls, py, "linear", t)
        for y in range(3):
            assert rel_err(path.classifier_score(x, t, y), oc[y].score(x) - om.score(x)) < 1e-9, (
                t,
                y,
            )


def test_guided_rejects_different_schedules():
    """x_t means different things under different schedules: combining such fields is an error."""
    rng = np.random.default_rng(12)
    g = refcfg.GMM([1.0], rng.standard_normal((1, 2)), [1.0])
    with pytest.raises(ValueError, match="schedule"):
        refcfg.guided(refcfg.GMMPath(g, "linear").field(), refcfg.GMMPath(g, "cosine").field(), 2.0)
    # the same named schedule built twice is the same schedule
    f = refcfg.guided(
        refcfg.GMMPath(g, "vp").field(), refcfg.GMMPath(g, refcfg.schedule("vp")).field(), 2.0
    )
    x = rng.standard_normal((3, 2))
    np.testing.assert_allclose(
        f.velocity(x, 0.5), refcfg.GMMPath(g, "vp").velocity(x, 0.5), rtol=1e-14
    )
