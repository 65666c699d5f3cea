"""refcfg.vector_prompts against independent computations.

Oracles (no refcfg inside): p(c | y) from scipy's multivariate normal; p(x | y) and p(x) as plain
parameter lists fed to ``_oracles.PathOracle`` (Gaussian conditioning with np.linalg.solve); the
noisy classifier p_t(y | x) by conditioning the joint Gaussian of (x_t, y) in each component

    (x_t, y) | c ~ N((alpha mux_c, m_c), [[P_c, alpha A_c S_c], [alpha S_c A_c^T, S_c]]),
    P_c = alpha^2 (A_c S_c A_c^T + Sigma_c) + beta^2 I,

so p_t(y | x) = sum_c p_t(c | x) N(y; m_c + K_c (x - alpha mux_c), S_c - K_c alpha A_c S_c) with
K_c = alpha S_c A_c^T P_c^{-1}, and its x-gradient differentiated by hand from that form (checked
against finite differences). Tolerance 1e-10 (fields of size O(1), float64) at t = 0, interior
times and t = 1.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import multivariate_normal as mvn

import refcfg
from refcfg.guidance import NotLowerable
from refcfg.testing import vector_prompt_families, vector_prompts
from refcfg.vector_prompts import VectorPromptFamily, VectorPromptPath

from _oracles import PathOracle, schedule_formula

TIMES = (0.0, 1e-3, 0.31, 0.77, 1.0)
TOL = 1e-10


def _family(K=3, d=2, m=2, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.dirichlet(np.ones(K))
    mm = rng.normal(size=(K, m)) * 1.5
    S = np.array(
        [(lambda B: B @ B.T + 0.3 * np.eye(m))(rng.normal(size=(m, m)) * 0.6) for _ in range(K)]
    )
    A = rng.normal(size=(K, d, m))
    b = rng.normal(size=(K, d))
    Sig = np.array(
        [(lambda B: B @ B.T + 0.2 * np.eye(d))(rng.normal(size=(d, d)) * 0.5) for _ in range(K)]
    )
    return (w, mm, S, A, b, Sig), VectorPromptFamily(w, mm, S, A, b, Sig)


def _cond_params(params, y):
    """(weights p(c | y), means A_c y + b_c, covs Sigma_c) by scipy."""
    w, mm, S, A, b, Sig = params
    lw = np.array([np.log(w[c]) + mvn(mm[c], S[c]).logpdf(y) for c in range(len(w))])
    return np.exp(lw - logsumexp(lw)), np.einsum("kdm,m->kd", A, y) + b, Sig


def _marg_params(params):
    w, mm, S, A, b, Sig = params
    return w, np.einsum("kdm,km->kd", A, mm) + b, np.einsum("kdm,kmn,ken->kde", A, S, A) + Sig


def _classifier_oracle(params, x, y, t):
    """(log p_t(y | x), grad_x log p_t(y | x)) for one pair by joint Gaussian conditioning."""
    w, mm, S, A, b, Sig = params
    al, be = schedule_formula("linear", t)[:2]
    d = x.shape[0]
    _, mux, covx = _marg_params(params)
    l_x, l_y, g_x, g_y = [], [], [], []
    for c in range(len(w)):
        P = al * al * covx[c] + be * be * np.eye(d)
        Pinv_r = np.linalg.solve(P, x - al * mux[c])
        Kc = al * S[c] @ A[c].T @ np.linalg.inv(P)  # (m, d)
        mu_y = mm[c] + Kc @ (x - al * mux[c])
        V = S[c] - Kc @ (al * A[c] @ S[c])
        V = 0.5 * (V + V.T)
        l_x.append(np.log(w[c]) + mvn(al * mux[c], P).logpdf(x))
        l_y.append(mvn(mu_y, V).logpdf(y))
        g_x.append(-Pinv_r)  # grad log N(x; alpha mux_c, P_c)
        g_y.append(Kc.T @ np.linalg.solve(V, y - mu_y))  # grad_x log N(y; mu_y(x), V_c)
    l_x, l_y = np.array(l_x), np.array(l_y)
    q = np.exp(l_x - logsumexp(l_x))  # p_t(c | x)
    s = np.exp(l_x + l_y - logsumexp(l_x + l_y))  # p_t(c | x, y)
    logp = logsumexp(l_x + l_y) - logsumexp(l_x)
    grad = sum(s[c] * (g_x[c] + g_y[c]) for c in range(len(w))) - sum(
        q[c] * g_x[c] for c in range(len(w))
    )
    return logp, grad


@pytest.mark.parametrize("t", TIMES)
def test_conditional_and_marginal_fields_match_the_oracle(t):
    params, fam = _family()
    vp = VectorPromptPath(fam, "linear")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 2)) * 2
    Y = rng.normal(size=(6, 2)) * 1.5  # one prompt per point
    sched = schedule_formula("linear", t)
    u, s, lp = vp.velocity(X, t, Y), vp.score(X, t, Y), vp.log_prob(X, t, Y)
    for i in range(6):
        o = PathOracle(*_cond_params(params, Y[i]), sched)
        np.testing.assert_allclose(u[i], o.velocity(X[i : i + 1])[0], rtol=0, atol=TOL)
        np.testing.assert_allclose(lp[i], o.log_prob(X[i : i + 1])[0], rtol=TOL, atol=TOL)
        np.testing.assert_allclose(s[i], o.score(X[i : i + 1])[0], rtol=0, atol=TOL)
    om = PathOracle(*_marg_params(params), sched)
    np.testing.assert_allclose(vp.velocity(X, t), om.velocity(X), rtol=0, atol=TOL)
    np.testing.assert_allclose(vp.log_prob(X, t), om.log_prob(X), rtol=TOL, atol=TOL)


@pytest.mark.parametrize("t", TIMES)
def test_classifier_density_and_gradient_match_joint_conditioning(t):
    params, fam = _family(seed=2)
    vp = VectorPromptPath(fam, "linear")
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5, 2)) * 2
    Y = rng.normal(size=(5, 2))
    lp, g = vp.classifier_log_density(X, t, Y), vp.classifier_score(X, t, Y)
    for i in range(5):
        lq, gq = _classifier_oracle(params, X[i], Y[i], t)
        assert abs(lp[i] - lq) <= TOL * max(1, abs(lq)), (t, i, lp[i], lq)
        np.testing.assert_allclose(g[i], gq, rtol=0, atol=TOL)
    if t == 0.0:  # x_0 is independent of y: p_0(y | x) = p(y), gradient 0
        np.testing.assert_allclose(lp, fam.prompt_prior.log_prob(Y), rtol=0, atol=TOL)
        np.testing.assert_allclose(g, 0.0, rtol=0, atol=1e-14)  # -x - (-x) up to rounding


def test_classifier_oracle_gradient_by_finite_differences():
    # the hand-differentiated oracle gradient against central differences of the oracle density
    params, _ = _family(seed=2)
    x, y, t, h = np.array([0.3, -1.1]), np.array([0.5, 0.2]), 0.6, 1e-5
    _, g = _classifier_oracle(params, x, y, t)
    fd = [
        (
            _classifier_oracle(params, x + h * e, y, t)[0]
            - _classifier_oracle(params, x - h * e, y, t)[0]
        )
        / (2 * h)
        for e in np.eye(2)
    ]
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("t", TIMES)
@pytest.mark.parametrize("w", [0.0, 1.0, 2.5, 7.0])
def test_classifier_guidance_equals_cfg_and_w1_is_conditional(t, w):
    params, fam = _family(seed=4)
    vp = VectorPromptPath(fam, "linear")
    rng = np.random.default_rng(5)
    X = rng.normal(size=(7, 2)) * 2
    Y = rng.normal(size=(7, 2))
    cfg = vp.cfg_velocity(X, t, Y, w)
    cg = vp.classifier_guided_velocity(X, t, Y, w)
    np.testing.assert_allclose(cg, cfg, rtol=0, atol=TOL)
    # independent: u(x) + w a_t grad log p_t(y|x) with the oracle's classifier gradient
    al, be, da, db, bdb = schedule_formula("linear", t)
    om = PathOracle(*_marg_params(params), (al, be, da, db, bdb))
    for i in range(7):
        oc = PathOracle(*_cond_params(params, Y[i]), (al, be, da, db, bdb))
        if al > 0:
            a_t = be * be * da / al - bdb
            want = (
                om.velocity(X[i : i + 1])[0]
                + w * a_t * _classifier_oracle(params, X[i], Y[i], t)[1]
            )
            # a_t grad: rounding ~ 1e-16 |x| / alpha_t (5e-13 at t = 1e-3)
            np.testing.assert_allclose(cg[i], want, rtol=0, atol=TOL)
        want_cfg = w * oc.velocity(X[i : i + 1])[0] + (1 - w) * om.velocity(X[i : i + 1])[0]
        np.testing.assert_allclose(cfg[i], want_cfg, rtol=0, atol=TOL)
    if w == 1.0:
        np.testing.assert_allclose(cfg, vp.velocity(X, t, Y), rtol=0, atol=1e-14)


def test_one_prompt_and_per_point_prompts_agree():
    _, fam = _family(seed=6)
    vp = VectorPromptPath(fam, "cosine")
    X = np.random.default_rng(7).normal(size=(5, 2))
    y = np.array([0.4, -0.9])
    np.testing.assert_allclose(
        vp.velocity(X, 0.4, y), vp.velocity(X, 0.4, np.tile(y, (5, 1))), rtol=0, atol=1e-15
    )
    # a batch mixing prompts equals the rows evaluated one prompt at a time
    Y = np.array([[0.4, -0.9], [1.0, 0.0], [0.4, -0.9], [-2.0, 1.0], [1.0, 0.0]])
    u = vp.velocity(X, 0.4, Y)
    for i in range(5):
        np.testing.assert_allclose(
            u[i], vp.velocity(X[i : i + 1], 0.4, Y[i])[0], rtol=0, atol=1e-14
        )
    tab, labels = fam.prompt_table(Y)
    assert tab.n_classes == 3 and list(labels) == [0, 1, 0, 2, 1]


def test_marginal_and_joint_against_samples_and_formula():
    params, fam = _family(seed=8)
    # p(x) = int p(x | y) p(y) dy: the marginal mixture's density against the joint's x-marginal
    x, y = fam.sample(4, seed=0)
    w, mux, covx = _marg_params(params)
    want = logsumexp([np.log(w[c]) + mvn(mux[c], covx[c]).logpdf(x) for c in range(3)], axis=0)
    np.testing.assert_allclose(fam.marginal.log_prob(x), want, rtol=1e-12)
    # the joint density factorises as p(y) p(x | y)
    joint = fam.joint.log_prob(np.concatenate([x, y], 1))
    cond = np.array([fam.conditional(y[i]).log_prob(x[i : i + 1])[0] for i in range(4)])
    np.testing.assert_allclose(joint, fam.prompt_prior.log_prob(y) + cond, rtol=1e-12)


@pytest.mark.slow
def test_cpu_backend_runs_cfg_with_per_particle_prompts_and_refuses_classifier_guidance():
    _, fam = _family(seed=9)
    vp = VectorPromptPath(fam, "linear")
    n = 40
    Y = np.random.default_rng(1).normal(size=(n, 2))
    Y[::3] = Y[0]  # some prompts shared
    x0 = np.random.default_rng(2).normal(size=(n, 2))
    f = vp.cfg(Y, 3.0)
    a = refcfg.sample(f, n, sampler="heun", steps=20, x_init=x0, backend="numpy")
    b = refcfg.sample(f, n, sampler="heun", steps=20, x_init=x0, backend="cpu")
    np.testing.assert_allclose(b, a, rtol=0, atol=1e-10)
    c = refcfg.sample(
        vp.classifier_guided(Y, 3.0), n, sampler="heun", steps=20, x_init=x0, backend="numpy"
    )
    np.testing.assert_allclose(c, a, rtol=0, atol=1e-10)
    with pytest.raises(NotLowerable):
        refcfg.sample(
            vp.classifier_guided(Y, 3.0), n, sampler="heun", steps=20, x_init=x0, backend="cpu"
        )
    with pytest.raises(ValueError, match="holds 40 prompts"):
        f.velocity(x0[:5], 0.5)


def test_bad_inputs_name_the_argument():
    params, fam = _family()
    w, mm, S, A, b, Sig = params
    with pytest.raises(ValueError, match="A has shape"):
        VectorPromptFamily(w, mm, S, A[:, :, :1], b, Sig)
    with pytest.raises(ValueError, match="b has shape"):
        VectorPromptFamily(w, mm, S, A, b[:2], Sig)
    with pytest.raises(ValueError, match="covs"):
        VectorPromptFamily(w, mm, S, A, b, -Sig)
    with pytest.raises(ValueError, match="prompt_covs"):
        VectorPromptFamily(w, mm, np.zeros_like(S), A, b, Sig)
    vp = VectorPromptPath(fam)
    with pytest.raises(ValueError, match="y has shape"):
        vp.velocity(np.zeros((3, 2)), 0.5, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="y must be a prompt"):
        vp.cfg_velocity(np.zeros((3, 2)), 0.5, None, 2.0)
    with pytest.raises(TypeError, match="family must be"):
        VectorPromptPath("nope")


@settings(max_examples=25, deadline=None)
@given(fam=vector_prompt_families(), data=st.data())
def test_property_cfg_w1_and_classifier_identity(fam, data):
    vp = VectorPromptPath(fam, "linear")
    n = 4
    X = data.draw(refcfg.testing.points(fam.d, n=st.just(n)))
    Y = data.draw(vector_prompts(fam, n))
    t = data.draw(st.floats(0.05, 1.0))
    w = data.draw(st.floats(0.0, 6.0))
    u = vp.velocity(X, t, Y)
    np.testing.assert_allclose(vp.cfg_velocity(X, t, Y, 1.0), u, rtol=0, atol=1e-12)
    cfg, cg = vp.cfg_velocity(X, t, Y, w), vp.classifier_guided_velocity(X, t, Y, w)
    scale = max(1.0, float(np.abs(cfg).max()))
    np.testing.assert_allclose(cg, cfg, rtol=0, atol=1e-9 * scale)


def test_strategy_arguments_are_checked():
    with pytest.raises(ValueError, match="coef_scale"):
        vector_prompt_families(coef_scale=-1.0)
    with pytest.raises(TypeError, match="m must be"):
        vector_prompt_families(m=0)
    _, fam = _family()
    with pytest.raises(ValueError, match="n must be >= 1"):
        vector_prompts(fam, 0)


def test_row_blocks_equal_one_table():
    # NumPy evaluates per-point prompts in blocks of BLOCK rows; one table over all rows is the
    # same field (and is what the fast backends lower)
    from refcfg.vector_prompts import BLOCK

    _, fam = _family(seed=10)
    vp = VectorPromptPath(fam, "linear")
    n = 2 * BLOCK + 22
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    Y[5::7] = Y[1]
    path, labels = vp.table(Y, n)
    for t in (0.0, 0.45, 1.0):
        np.testing.assert_allclose(
            vp.velocity(X, t, Y), path.velocity(X, t, labels), rtol=0, atol=1e-13
        )
        np.testing.assert_allclose(
            vp.cfg(Y, 2.0).velocity(X, t), vp.cfg_velocity(X, t, Y, 2.0), rtol=0, atol=1e-13
        )
    assert len(vp.blocks(Y, n)) == 3
