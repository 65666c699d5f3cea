"""Point masses (covariance 0) in the exact core: every field of GMMPath against an independent
computation, the posterior over the training points by scipy.special.logsumexp, in float64.

For data z uniform over points mu_j (weights w_j) and x = alpha z + beta eps, p_t(j | x) is the softmax
of log w_j - |x - alpha mu_j|^2 / (2 beta^2); E[z|x] = sum_j p_t(j|x) mu_j; score = -(x - alpha E[z|x])
/ beta^2; E[eps|x] = (x - alpha E[z|x]) / beta; u = dalpha E[z|x] + dbeta E[eps|x]. Tolerance: 1e-10
relative (max-norm of the error over max-norm of the reference), at t in {1e-6, 0.3, 0.9, 1 - 1e-9}.
"""

import numpy as np
import pytest
from scipy.special import logsumexp

import refcfg
from refcfg import convert

RTOL = 1e-10
TIMES = (1e-6, 0.3, 0.9, 1 - 1e-9)
D, PER_CLASS = 5, (7, 5, 6)


def _points():
    rng = np.random.default_rng(11)
    X = [rng.standard_normal((k, D)) for k in PER_CLASS]
    W = [rng.dirichlet(np.ones(k)) for k in PER_CLASS]
    return X, W, np.array([0.2, 0.5, 0.3])


def _mixture(cov_kind):
    X, W, P = _points()
    zero = {
        "isotropic": lambda k: np.zeros(k),
        "diag": lambda k: np.zeros((k, D)),
        "full": lambda k: np.zeros((k, D, D)),
    }[cov_kind]
    return refcfg.LabeledGMM([refcfg.GMM(w, x, zero(len(x))) for x, w in zip(X, W)], P)


def _oracle(x, t, y, schedule):
    """The fields of the point-mass law from the posterior over the points (scipy logsumexp)."""
    X, W, P = _points()
    sch = refcfg.schedule(schedule)
    al, be, da, db = (float(f(t)) for f in (sch.alpha, sch.beta, sch.dalpha, sch.dbeta))
    mus = np.concatenate(X)
    logw = np.concatenate([np.log(p) + np.log(w) for p, w in zip(P, W)])
    cls = np.repeat(np.arange(len(X)), PER_CLASS)
    if y is not None:
        logw = np.where(cls == y, logw - np.log(P[y]), -np.inf)
    sq = ((x[:, None, :] - al * mus[None]) ** 2).sum(-1)
    logits = logw - sq / (2 * be * be)
    lse = logsumexp(logits, axis=1)
    r = np.exp(logits - lse[:, None])
    x0 = r @ mus
    eps = (x - al * x0) / be
    # div u: u = da x0 + (b / be^2)(x - al x0), b = be dbeta, and d x0 / dx = (al / be^2) Cov_r(mu)
    b = be * db
    tr_cov = (r * (mus * mus).sum(1)).sum(1) - (x0 * x0).sum(1)
    div = D * b / be**2 + (da - al * b / be**2) * (al / be**2) * tr_cov
    out = {
        "x0": x0,
        "eps": eps,
        "score": -eps / be,
        "velocity": da * x0 + db * eps,
        "logp": lse - 0.5 * D * np.log(2 * np.pi * be * be),
        "div": div,
    }
    if y is None:
        out["clp"] = (
            np.stack([logsumexp(logits[:, cls == c], axis=1) for c in range(len(X))], 1)
            - lse[:, None]
        )
    return out


def _rel(got, ref):
    return float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))


def _points_at(t, schedule, n=40, seed=0):
    """Half the points drawn from the path at t (near the data), half standard normal."""
    X, _, _ = _points()
    sch = refcfg.schedule(schedule)
    rng = np.random.default_rng(seed)
    z = np.concatenate(X)[rng.integers(0, sum(PER_CLASS), n // 2)]
    near = float(sch.alpha(t)) * z + float(sch.beta(t)) * rng.standard_normal(z.shape)
    return np.concatenate([near, rng.standard_normal((n - n // 2, D))])


@pytest.mark.parametrize("cov_kind", ["isotropic", "diag", "full"])
@pytest.mark.parametrize("schedule", ["linear", "vp"])
@pytest.mark.parametrize("t", TIMES)
def test_point_mass_fields_match_posterior_over_points(cov_kind, schedule, t):
    path = refcfg.GMMPath(_mixture(cov_kind), schedule)
    x = _points_at(t, schedule)
    for y in (None, 0, 2):
        ref = _oracle(x, t, y, schedule)
        got = path.fields(x, t, y, want=("x0", "eps", "score", "velocity", "logp", "div"))
        for key in ("x0", "eps", "score", "velocity", "logp"):
            assert _rel(got[key], ref[key]) <= RTOL, (key, y)
        assert _rel(path.velocity(x, t, y), ref["velocity"]) <= RTOL
        assert _rel(got["div"], ref["div"]) <= RTOL, ("div", y)
    ref = _oracle(x, t, None, schedule)
    clp = path.class_log_probs(x, t)
    finite = np.isfinite(ref["clp"]) & (ref["clp"] > -1e300)
    assert np.all(
        np.abs(clp - ref["clp"])[finite] <= RTOL * np.maximum(1.0, np.abs(ref["clp"][finite]))
    )
    # the classifier gradient by Bayes: score(x|y) - score(x)
    cs = _oracle(x, t, 1, schedule)["score"] - ref["score"]
    assert np.max(np.abs(path.classifier_score(x, t, 1) - cs)) <= RTOL * np.max(
        np.abs(ref["score"])
    )


@pytest.mark.parametrize("t", TIMES)
def test_point_mass_guidance_identities(t):
    """CFG at w = 1 is the conditional field; classifier guidance equals CFG for every w."""
    path = refcfg.GMMPath(_mixture("isotropic"), "linear")
    x = _points_at(t, "linear", seed=1)
    cond = _oracle(x, t, 2, "linear")
    assert _rel(path.cfg_velocity(x, t, 2, 1.0), cond["velocity"]) <= RTOL
    assert _rel(path.cfg(2, 1.0).score(x, t), cond["score"]) <= RTOL
    for w in (0.0, 2.0, 8.0):
        cfg = path.cfg_velocity(x, t, 2, w)
        uncond = _oracle(x, t, None, "linear")["velocity"]
        assert _rel(cfg, w * cond["velocity"] + (1 - w) * uncond) <= RTOL
        scale = np.max(np.abs(cond["velocity"])) + np.max(np.abs(uncond))
        assert np.max(np.abs(path.classifier_guided_velocity(x, t, 2, w) - cfg)) <= 1e-9 * scale
        assert np.max(
            np.abs(path.classifier_guided(2, w).score(x, t) - path.cfg_score(x, t, 2, w))
        ) <= 1e-9 * np.max(np.abs(path.cfg_score(x, t, 2, w)))


@pytest.mark.parametrize("t", (0.3, 0.9, 1 - 1e-9))
def test_point_mass_conversions(t):
    """The conversions between parametrisations hold for the point-mass fields (t < 1)."""
    path = refcfg.GMMPath(_mixture("diag"), "linear")
    x = _points_at(t, "linear", seed=2)
    f = path.fields(x, t, 0, want=("x0", "eps", "score", "velocity"))
    assert _rel(convert.convert(f["x0"], "x0", "velocity", x, t), f["velocity"]) <= 1e-9
    assert _rel(convert.convert(f["x0"], "x0", "score", x, t), f["score"]) <= 1e-9
    assert _rel(convert.convert(f["score"], "score", "eps", x, t), f["eps"]) <= RTOL


def test_limit_at_t1_all_point_masses():
    """At t = 1 (beta = 0) the posterior is the nearest point of the class: x0, the responsibilities
    and the class probabilities are their limits; the diverging fields are refused."""
    X, W, _ = _points()
    path = refcfg.GMMPath(_mixture("full"), "linear")
    x = _points_at(0.7, "linear", seed=3)
    x[0] = X[1][2]  # exactly on a training point of class 1
    mus = X[0]
    nearest = mus[np.argmin(((x[:, None] - mus[None]) ** 2).sum(-1), axis=1)]
    np.testing.assert_array_equal(path.x0(x, 1.0, 0), nearest)
    assert np.allclose(path.x0(x, 1.0, 0), path.x0(x, 1 - 1e-12, 0), rtol=0, atol=1e-9)
    clp = path.class_log_probs(x, 1.0)
    assert clp[0, 1] == 0.0 and np.all(clp[0, [0, 2]] == -np.inf)
    np.testing.assert_array_equal(path.x0(x[:1], 1.0), x[:1])
    # per-point times: rows at t = 1 take the limit, the others the smooth formula
    tt = np.where(np.arange(x.shape[0]) % 2 == 0, 1.0, 0.5)
    got = path.x0(x, tt, 0)
    np.testing.assert_array_equal(got[::2], nearest[::2])
    assert _rel(got[1::2], _oracle(x[1::2], 0.5, 0, "linear")["x0"]) <= RTOL
    for fn in (path.velocity, path.score, path.eps, path.log_prob):
        with pytest.raises(ValueError, match="t = 1.0: .* not finite where beta_t = 0"):
            fn(x, 1.0)
    with pytest.raises(ValueError, match="not finite where beta_t = 0"):
        path.cfg(0, 2.0).velocity(x, tt)


def test_limit_at_t1_mixed_point_and_gaussian():
    """A class with a point mass at 0 and N(0, I): at t = 1 the Gaussian takes the posterior off the
    point (x0 = x) and the point mass on it (x0 = 0); both match t = 1 - 1e-9 to 1e-8."""
    g = refcfg.GMM([0.5, 0.5], np.zeros((2, 2)), np.array([0.0, 1.0]))
    path = refcfg.GMMPath(g, "linear")
    x = np.array([[0.5, -0.25], [0.0, 0.0]])
    np.testing.assert_array_equal(path.x0(x, 1.0), [[0.5, -0.25], [0.0, 0.0]])
    assert np.max(np.abs(path.x0(x, 1 - 1e-9) - path.x0(x, 1.0))) <= 1e-8
    np.testing.assert_array_equal(path.responsibilities(x, 1.0), [[0.0, 1.0], [1.0, 0.0]])


def test_point_mass_construction_and_refusals():
    for covs in (np.zeros(2), np.zeros((2, 3)), np.zeros((2, 3, 3))):
        g = refcfg.GMM([0.5, 0.5], np.eye(2, 3), covs)
        assert np.all(g.point_mass) and np.all(g.eigvals == 0)
        np.testing.assert_array_equal(
            g.sample(4, seed=0)[1], g.means[g.sample_with_components(4, 0)[1]][1]
        )
    for fn in ("log_prob", "score", "responsibilities"):
        with pytest.raises(ValueError, match="point mass"):
            getattr(g, fn)(np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"covs\[0\] must be positive definite"):
        refcfg.GMM([1.0], [[0.0, 0.0]], [[[1.0, 0.0], [0.0, 0.0]]])  # singular, not zero
    with pytest.raises(ValueError, match=r"covs\[0\] must be positive definite"):
        refcfg.GMM([1.0], [[0.0, 0.0]], [-0.0 - 1e-300])
