"""An example of a user's own pytest file: test *your* guidance code against refcfg's exact fields.

Run it with ``pytest test_my_field.py``. ``my_cfg_velocity`` stands for your implementation; here it
is a short from-scratch NumPy version for Gaussian mixtures under the linear schedule
(alpha_t = t, beta_t = 1 - t), written without refcfg, so the tests below really check it.
"""

import numpy as np
from hypothesis import given, settings

import refcfg
from refcfg.testing import assert_field_matches, guidance_weights, labeled_gmms


# ---------------------------------------------------------------- "your" implementation
def my_velocity(weights, means, covs, x, t):
    """Marginal velocity of x_t = t z + (1 - t) eps, z ~ sum_k w_k N(m_k, C_k), eps ~ N(0, I):
    u = sum_k r_k(x) [m_k + (t C_k - (1 - t) I) S_k^{-1} (x - t m_k)], S_k = t^2 C_k + (1 - t)^2 I."""
    d = x.shape[1]
    logr, vel = [], []
    for w, m, C in zip(weights, means, covs):
        S = t * t * C + (1 - t) ** 2 * np.eye(d)
        diff = x - t * m
        sol = np.linalg.solve(S, diff.T).T
        _, logdet = np.linalg.slogdet(S)
        logr.append(np.log(w) - 0.5 * (logdet + np.sum(diff * sol, axis=1)))
        vel.append(m + sol @ (t * C - (1 - t) * np.eye(d)).T)
    logr = np.array(logr)
    r = np.exp(logr - logr.max(axis=0))
    r /= r.sum(axis=0)
    return np.einsum("kn,knd->nd", r, np.array(vel))


def params(mix, y):
    """(weights, means, covs) of p(z | y), or of p(z) for the null label."""
    if y >= 0:
        g = mix.classes[y]
        return g.weights, g.means, g.covs
    return (
        np.concatenate([p * g.weights for p, g in zip(mix.class_probs, mix.classes)]),
        np.concatenate([g.means for g in mix.classes]),
        np.concatenate([g.covs for g in mix.classes]),
    )


def my_cfg_velocity(mix, x, t, y, w):
    """CFG in the notes' convention: w u(x|y) + (1 - w) u(x|null) (w = 1: no guidance)."""
    out = np.empty_like(x)
    for label in np.unique(y):
        i = y == label
        cond = my_velocity(*params(mix, int(label)), x[i], t)
        uncond = my_velocity(*params(mix, -1), x[i], t)
        out[i] = w * cond + (1 - w) * uncond
    return out


# ---------------------------------------------------------------- the tests
MIX = refcfg.problem("two-class-2d")


def field(mix, w=1.0):
    """Adapt to refcfg's signature fn(x (N, d), t (N,), y (N,)) -> (N, d); check_field calls it with
    one time per call. NULL labels (-1) are the unconditional field."""

    def fn(x, t, y):
        tv = float(t[0])
        out = np.empty_like(x)
        null = y == refcfg.NULL
        if null.any():
            out[null] = my_velocity(*params(mix, -1), x[null], tv)
        if (~null).any():
            out[~null] = my_cfg_velocity(mix, x[~null], tv, y[~null], w)
        return out

    return fn


def test_conditional_and_unconditional_velocity():
    # labels cycle over both classes and NULL; times 0, 0.1, ..., 1 including both endpoints
    assert_field_matches(field(MIX), problem="two-class-2d", kind="velocity", rtol=1e-8)


def test_cfg_velocity_w3():
    report = assert_field_matches(
        field(MIX, w=3.0), problem="two-class-2d", kind="velocity", w=3.0, rtol=1e-8
    )
    print(report)  # per-time errors, visible with pytest -s


@settings(max_examples=10, deadline=None)
@given(mix=labeled_gmms(d=2, n_classes=2), w=guidance_weights(0.0, 5.0))
def test_cfg_velocity_on_random_mixtures(mix, w):
    assert_field_matches(
        field(mix, w),
        problem=mix,
        kind="velocity",
        w=w,
        n=8,
        times=[0.0, 0.3, 0.7, 1.0],
        rtol=1e-7,
        atol=1e-9,
    )
