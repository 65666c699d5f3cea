"""Hypothesis property tests of the exact core.

Random small well-conditioned GMMs / labeled GMMs (strategies written locally: covariance eigenvalues
in [0.25, 2.5], means in [-3, 3], weights >= 0.05 before normalisation), times in [1e-3, 1 - 1e-3]
and the endpoints 0 and 1, points in [-4, 4]^d. Every property is a test that can fail; tolerances are
stated next to each assertion. max_examples is kept small so the file runs in well under 30 s.
"""

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import refcfg

from _oracles import (
    PathOracle,
    fd_derivative,
    fd_gradient,
    fd_jacobian,
    full_covs,
    rel_err,
    schedule_formula,
)

SETTINGS = dict(
    deadline=None, suppress_health_check=[HealthCheck.too_slow]
)  # derandomized by the conftest profile
ALL_SCHEDULES = ["linear", "cosine", "sqrt", "polynomial", "linear-vp", "vp"]
SMOOTH_SCHEDULES = [
    "linear",
    "cosine",
    "polynomial",
    "vp",
]  # derivatives of all orders bounded on [0, 1]

# ------------------------------------------------------------------ strategies


def _unit(draw, n, lo, hi):
    return np.array(draw(st.lists(st.floats(lo, hi, allow_nan=False), min_size=n, max_size=n)))


@st.composite
def gmm_params(draw, d=None, max_k=3):
    """(weights, means, covs, cov_type) of a well-conditioned GMM."""
    if d is None:
        d = draw(st.integers(1, 3))
    K = draw(st.integers(1, max_k))
    cov_type = draw(st.sampled_from(["full", "diag", "isotropic"]))
    w = _unit(draw, K, 0.05, 1.0)
    w = w / w.sum()
    mu = _unit(draw, K * d, -3.0, 3.0).reshape(K, d)
    if cov_type == "isotropic":
        covs = _unit(draw, K, 0.25, 2.5)
    elif cov_type == "diag":
        covs = _unit(draw, K * d, 0.25, 2.5).reshape(K, d)
    else:
        lam = _unit(draw, K * d, 0.25, 2.5).reshape(K, d)
        angles = _unit(draw, K * d * d, -1.0, 1.0).reshape(K, d, d)
        covs = np.empty((K, d, d))
        for k in range(K):
            Q, _ = np.linalg.qr(angles[k] + 2.0 * np.eye(d))  # an orthogonal matrix
            c = (Q * lam[k]) @ Q.T
            covs[k] = 0.5 * (c + c.T)
    return w, mu, covs, d


@st.composite
def labeled_params(draw):
    d = draw(st.integers(1, 3))
    C = draw(st.integers(2, 3))
    cls = [draw(gmm_params(d=d, max_k=2))[:3] for _ in range(C)]
    py = _unit(draw, C, 0.1, 1.0)
    return cls, py / py.sum(), d


def points(draw, d, n=3, lo=-4.0, hi=4.0):
    return _unit(draw, n * d, lo, hi).reshape(n, d)


times_interior = st.floats(1e-3, 1 - 1e-3, allow_nan=False)
times_all = st.one_of(times_interior, st.sampled_from([0.0, 1.0]))


def _marg(cls, py, d):
    w = np.concatenate([py[c] * cls[c][0] for c in range(len(cls))])
    mu = np.concatenate([c[1] for c in cls])
    covs = np.concatenate([full_covs(c[2], d) for c in cls])
    return w, mu, covs


def _labeled_path(cls, py, name):
    return refcfg.GMMPath(
        refcfg.LabeledGMM([refcfg.GMM(*c) for c in cls], py), refcfg.schedule(name)
    )


# ------------------------------------------------------------------ properties


@settings(max_examples=40, **SETTINGS)
@given(st.data(), gmm_params(), st.sampled_from(ALL_SCHEDULES), times_all)
def test_fields_equal_gaussian_conditioning(data, p, name, t):
    """log_prob, score, x0, eps, velocity = the oracle's (scipy + np.linalg.solve): rel <= 1e-9."""
    w, mu, covs, d = p
    x = points(data.draw, d)
    path = refcfg.GMMPath(refcfg.GMM(w, mu, covs), name)
    o = PathOracle(w, mu, covs, schedule_formula(name, t))
    assert rel_err(path.log_prob(x, t), o.log_prob(x), floor=1e-3) < 1e-9
    for fn, want in (("score", o.score(x)), ("x0", o.post_mean_z(x)), ("velocity", o.velocity(x))):
        got = getattr(path, fn)(x, t)
        assert np.all(np.isfinite(got))
        assert rel_err(got, want, floor=1e-6) < 1e-9, fn
    assert np.max(np.abs(path.eps(x, t) - o.post_mean_eps(x))) <= 1e-9 * max(1.0, np.max(np.abs(x)))


@settings(max_examples=40, **SETTINGS)
@given(st.data(), gmm_params(), st.sampled_from(ALL_SCHEDULES), times_interior)
def test_conversion_identity_eq41(data, p, name, t):
    """u = a_t score + b_t x (eq. 41/42), t in [1e-3, 1 - 1e-3]: |u - (a s + b x)| <= 1e-11 * scale,
    scale = max(1, |a s|, |b x|) (the conversion itself cancels between a s and b x)."""
    w, mu, covs, d = p
    x = points(data.draw, d)
    path = refcfg.GMMPath(refcfg.GMM(w, mu, covs), name)
    al, be, da, db, bdb = schedule_formula(name, t)
    a, b = be * be * da / al - bdb, da / al
    s, u = path.score(x, t), path.velocity(x, t)
    scale = max(1.0, np.max(np.abs(a * s)), np.max(np.abs(b * x)))
    assert np.max(np.abs(u - (a * s + b * x))) <= 1e-11 * scale


@settings(max_examples=30, **SETTINGS)
@given(st.data(), gmm_params(), st.sampled_from(ALL_SCHEDULES), times_all)
def test_score_is_gradient_of_log_prob(data, p, name, t):
    """score = 5-point FD gradient of log_prob (h = 1e-4): |diff| <= 1e-7 * max(1, |score|)."""
    w, mu, covs, d = p
    x = points(data.draw, d)
    path = refcfg.GMMPath(refcfg.GMM(w, mu, covs), name)
    s = path.score(x, t)
    fd = fd_gradient(lambda y: path.log_prob(y, t), x, h=1e-4)
    assert np.max(np.abs(s - fd)) <= 1e-7 * max(1.0, np.max(np.abs(s)))


@settings(max_examples=30, **SETTINGS)
@given(st.data(), gmm_params(), st.sampled_from(ALL_SCHEDULES), times_all)
def test_divergence_is_trace_of_velocity_jacobian(data, p, name, t):
    """exact divergence = trace of the 5-point FD Jacobian of the velocity (h = 1e-4):
    |diff| <= 1e-7 * max(1, |div|)."""
    w, mu, covs, d = p
    x = points(data.draw, d)
    path = refcfg.GMMPath(refcfg.GMM(w, mu, covs), name)
    div = path.divergence(x, t)
    tr = np.trace(fd_jacobian(lambda y: path.velocity(y, t), x, h=1e-4), axis1=1, axis2=2)
    assert np.all(np.isfinite(div))
    assert np.max(np.abs(div - tr)) <= 1e-7 * max(1.0, np.max(np.abs(div)))


@settings(max_examples=30, **SETTINGS)
@given(st.data(), gmm_params(), st.sampled_from(SMOOTH_SCHEDULES), times_interior)
def test_continuity_equation(data, p, name, t):
    """d/dt p_t + div(p_t u_t) = 0, divided by p_t: d/dt log p_t + div u + score . u = 0.
    d/dt by the 5-point FD of path.log_prob in t (h = min(2e-4, t/4, (1 - t)/4));
    |residual| <= 1e-6 * max(1, |d/dt log p|, |div u|, |score.u|)."""
    w, mu, covs, d = p
    x = points(data.draw, d)
    path = refcfg.GMMPath(refcfg.GMM(w, mu, covs), name)
    h = min(2e-4, t / 4, (1 - t) / 4)
    dlogp = fd_derivative(lambda tt: path.log_prob(x, tt), t, h=h)
    u, s, div = path.velocity(x, t), path.score(x, t), path.divergence(x, t)
    su = np.sum(s * u, axis=1)
    res = dlogp + div + su
    scale = max(1.0, np.max(np.abs(dlogp)), np.max(np.abs(div)), np.max(np.abs(su)))
    assert np.max(np.abs(res)) <= 1e-6 * scale


@settings(max_examples=12, **SETTINGS)
@given(
    st.data(),
    gmm_params(max_k=2),
    st.sampled_from(["linear", "cosine", "vp"]),
    st.floats(0.05, 0.95),
    st.integers(0, 2**31 - 1),
)
def test_marginalization_trick_monte_carlo(data, p, name, t, seed):
    """u_t(x) = E[u_t(x|z) | x_t = x]: z drawn from the exact posterior p(z | x_t = x) (a Gaussian
    mixture, tests/_oracles.PathOracle.posterior_components), N = 40000, seed drawn by hypothesis;
    every coordinate within 6 Monte Carlo standard errors + 1e-9 (false-alarm rate < 1e-8 a coordinate)."""
    w, mu, covs, d = p
    x = points(data.draw, d, n=1, lo=-3, hi=3)
    path = refcfg.GMMPath(refcfg.GMM(w, mu, covs), name)
    al, be, da, db, _ = schedule_formula(name, t)
    r, m, C = PathOracle(w, mu, covs, schedule_formula(name, t)).posterior_components(x[0])
    rng = np.random.default_rng(seed)
    N = 40_000
    k = rng.choice(len(r), size=N, p=r / r.sum())
    L = np.linalg.cholesky(C)
    z = m[k] + np.einsum("nij,nj->ni", L[k], rng.standard_normal((N, d)))
    uc = da * z + db / be * (x[0] - al * z)  # eq. 20
    se = uc.std(0) / np.sqrt(N)
    v = path.velocity(x, t)[0]
    assert np.all(np.abs(uc.mean(0) - v) <= 6 * se + 1e-9)


@settings(max_examples=30, **SETTINGS)
@given(st.data(), labeled_params(), st.sampled_from(ALL_SCHEDULES), times_all)
def test_bayes(data, lp, name, t):
    """sum_y p_t(y|x) = 1 (abs <= 1e-12); log p_t(x) = logsumexp_y(log p(y) + log p_t(x|y))
    (abs <= 1e-10 * max(1, |log p|)); class_log_probs = Bayes from the library's own densities."""
    cls, py, d = lp
    x = points(data.draw, d)
    path = _labeled_path(cls, py, name)
    clp = path.class_log_probs(x, t)
    assert np.max(np.abs(np.exp(clp).sum(1) - 1)) <= 1e-12
    cond = np.stack([np.log(py[c]) + path.log_prob(x, t, c) for c in range(len(cls))], 1)
    lpx = path.log_prob(x, t)
    m = cond.max(1)
    lse = m + np.log(np.exp(cond - m[:, None]).sum(1))
    assert np.max(np.abs(lpx - lse)) <= 1e-10 * max(1.0, np.max(np.abs(lpx)))
    assert np.max(np.abs(clp - (cond - lpx[:, None]))) <= 1e-10 * max(1.0, np.max(np.abs(cond)))


@settings(max_examples=30, **SETTINGS)
@given(
    st.data(),
    labeled_params(),
    st.sampled_from(ALL_SCHEDULES),
    times_all,
    st.floats(-3.0, 10.0, allow_nan=False),
)
def test_cfg_and_classifier_guidance(data, lp, name, t, w):
    """CFG at w = 1 is u(x|y), at w = 0 u(x|null) (rel <= 1e-13); classifier guidance (eq. 62) equals
    CFG (eq. 65) for every w (|diff| <= 1e-9 * max(1, |u~|))."""
    cls, py, d = lp
    x = points(data.draw, d)
    y = data.draw(st.integers(0, len(cls) - 1))
    path = _labeled_path(cls, py, name)
    uy, un = path.velocity(x, t, y), path.velocity(x, t)
    assert rel_err(path.cfg_velocity(x, t, y, 1.0), uy, floor=1e-8) <= 1e-13
    assert rel_err(path.cfg_velocity(x, t, y, 0.0), un, floor=1e-8) <= 1e-13
    cf = path.cfg_velocity(x, t, y, w)
    cg = path.classifier_guided_velocity(x, t, y, w)
    assert np.all(np.isfinite(cg))
    assert np.max(np.abs(cf - cg)) <= 1e-9 * max(1.0, np.max(np.abs(cf)))
    # and CFG is the written-out combination of the oracle's class and marginal velocities
    sf = schedule_formula(name, t)
    want = w * PathOracle(*cls[y], sf).velocity(x) + (1 - w) * PathOracle(
        *_marg(cls, py, d), sf
    ).velocity(x)
    assert np.max(np.abs(cf - want)) <= 1e-9 * max(1.0, np.max(np.abs(want)))


@settings(max_examples=25, **SETTINGS)
@given(st.data(), gmm_params(), st.sampled_from([s for s in ALL_SCHEDULES if s != "vp"]))
def test_t0_score_is_minus_x(data, p, name):
    """alpha_0 = 0: p_0 = N(0, I) whatever the data, so score(x, 0) = -x (abs <= 1e-13 |x|)."""
    w, mu, covs, d = p
    x = points(data.draw, d, lo=-50, hi=50)
    path = refcfg.GMMPath(refcfg.GMM(w, mu, covs), name)
    assert np.max(np.abs(path.score(x, 0.0) + x)) <= 1e-13 * max(1.0, np.max(np.abs(x)))


@settings(max_examples=25, **SETTINGS)
@given(st.data(), gmm_params(), st.sampled_from(ALL_SCHEDULES))
def test_t1_log_prob_is_data_law(data, p, name):
    """alpha_1 = 1, beta_1 = 0: log p_1 = log p_data (GMM.log_prob and scipy), rel <= 1e-12."""
    w, mu, covs, d = p
    x = points(data.draw, d)
    g = refcfg.GMM(w, mu, covs)
    path = refcfg.GMMPath(g, name)
    lp1 = path.log_prob(x, 1.0)
    assert rel_err(lp1, g.log_prob(x), floor=1e-3) <= 1e-12
    o = PathOracle(w, mu, covs, (1.0, 0.0, 0.0, 0.0, 0.0))
    assert rel_err(lp1, o.log_prob(x), floor=1e-3) <= 1e-12


@settings(max_examples=25, phases=[Phase.explicit, Phase.reuse, Phase.generate], **SETTINGS)
@given(st.data(), labeled_params(), st.sampled_from(ALL_SCHEDULES))
def test_per_particle_labels_and_times(data, lp, name):
    """Label arrays with NULL entries and per-particle times give, row by row, the scalar results."""
    cls, py, d = lp
    n = 4
    x = points(data.draw, d, n=n)
    y = np.array(data.draw(st.lists(st.integers(-1, len(cls) - 1), min_size=n, max_size=n)))
    t = np.array(data.draw(st.lists(times_all, min_size=n, max_size=n)))
    path = _labeled_path(cls, py, name)
    got = path.velocity(x, t, y)
    for i in range(n):
        yi = None if y[i] == refcfg.NULL else int(y[i])
        want = path.velocity(x[i : i + 1], float(t[i]), yi)[0]
        np.testing.assert_allclose(got[i], want, rtol=1e-12, atol=1e-13)


@settings(max_examples=30, **SETTINGS)
@given(
    st.data(),
    gmm_params(),
    st.sampled_from(ALL_SCHEDULES),
    times_interior,
    st.sampled_from(["velocity", "score", "x0", "eps"]),
    st.sampled_from(["velocity", "score", "x0", "eps"]),
)
def test_convert_maps_path_quantities(data, p, name, t, src, dst):
    """refcfg.convert maps the path's exact src quantity to its exact dst quantity at interior t:
    |diff| <= 1e-10 * scale, scale = max(1, |src|, |dst|, |x|) / min(alpha_t, beta_t) (the conversions
    divide by alpha_t or beta_t, which amplifies round-off near the endpoints)."""
    w, mu, covs, d = p
    x = points(data.draw, d)
    path = refcfg.GMMPath(refcfg.GMM(w, mu, covs), name)
    q = {
        "velocity": path.velocity(x, t),
        "score": path.score(x, t),
        "x0": path.x0(x, t),
        "eps": path.eps(x, t),
    }
    got = refcfg.convert.convert(q[src], src, dst, x, t, path.schedule)
    al, be = schedule_formula(name, t)[:2]
    scale = max(1.0, np.max(np.abs(q[src])), np.max(np.abs(q[dst])), np.max(np.abs(x))) / min(
        al, be
    )
    assert np.max(np.abs(got - q[dst])) <= 1e-10 * scale


@settings(max_examples=25, **SETTINGS)
@given(
    st.data(),
    gmm_params(d=2),
    gmm_params(d=2),
    st.sampled_from(ALL_SCHEDULES),
    times_all,
    st.floats(-3.0, 10.0, allow_nan=False),
)
def test_guided_any_two_fields(data, pa, pb, name, t, w):
    """refcfg.guided(a, b, w) = w a + (1 - w) b for two unrelated exact fields (velocity and score),
    against the oracle's fields: |diff| <= 1e-9 * max(1, |a|, |b|) * max(1, |w|)."""
    x = points(data.draw, 2)
    fa = refcfg.GMMPath(refcfg.GMM(*pa[:3]), name).field()
    fb = refcfg.GMMPath(refcfg.GMM(*pb[:3]), name).field()
    g = refcfg.guided(fa, fb, w)
    sf = schedule_formula(name, t)
    oa, ob = PathOracle(*pa[:3], sf), PathOracle(*pb[:3], sf)
    for fn, va, vb in (
        ("velocity", oa.velocity(x), ob.velocity(x)),
        ("score", oa.score(x), ob.score(x)),
    ):
        scale = max(1.0, np.max(np.abs(va)), np.max(np.abs(vb))) * max(1.0, abs(w))
        assert np.max(np.abs(getattr(g, fn)(x, t) - (w * va + (1 - w) * vb))) <= 1e-9 * scale, fn
