"""refcfg.guidance.spaces: the v space (v = alpha eps - beta x0) against the exact fields' closed
forms, its inverse, plain CFG formed in v (the same velocity, endpoints included, with no
extrapolation), and a nonlinear rule that depends on it. float64, tolerances stated per test."""

import math

import numpy as np
import pytest

import refcfg
from refcfg import guidance as V
from refcfg.guidance.spaces import from_space, to_space

TIMES = [0.0, 0.05, 0.3, 0.7, 0.95, 1.0]
W = 3.0


@pytest.mark.parametrize("sched", ["linear", "cosine", "vp"])
def test_v_space_matches_closed_forms_and_inverts(sched):
    """to_space(u, "v") = alpha eps - beta x0 from the exact x0 and eps (<= 1e-9 relative), and
    from_space inverts it (<= 1e-9), at every time where D is finite."""
    p = refcfg.GMMPath(refcfg.problem("two-class-2d"), sched)
    x = 2 * np.random.default_rng(0).standard_normal((9, 2))
    for t in TIMES:
        if not np.isfinite(p.schedule.D(t)):
            with pytest.raises(ValueError, match="v-space"):
                to_space(p.velocity(x, 0.5, 0), x, t, "v", p.schedule)
            continue
        u = p.velocity(x, t, 0)
        want = p.schedule.alpha(t) * p.eps(x, t, 0) - p.schedule.beta(t) * p.x0(x, t, 0)
        got = to_space(u, x, t, "v", p.schedule)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(from_space(got, x, t, "v", p.schedule), u, rtol=1e-9, atol=1e-9)


def test_v_space_equals_interop_v_prediction():
    """The same v as refcfg.interop's v prediction (computed there from eps and x0), per-row t."""
    from refcfg.interop import predict

    p = refcfg.GMMPath(refcfg.problem("two-class-2d"), "linear")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((12, 2))
    t = rng.uniform(0, 1, 12)
    field = p.cfg(1, 2.0)
    got = to_space(field.velocity(x, t), x, t, "v", p.schedule)
    np.testing.assert_allclose(
        got, predict(field, x, t, "v", backend="numpy"), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("t", TIMES)
def test_plain_cfg_in_v_space_is_exact_cfg(t):
    """v is affine in u with a coefficient independent of the prediction: w c + (1 - w) u formed in
    v is eq. 65's velocity, at the endpoints too (no extrapolation: <= 1e-10)."""
    p = refcfg.GMMPath(refcfg.problem("two-class-2d"), "linear")
    x = 2 * np.random.default_rng(2).standard_normal((11, 2))
    f = V.PlainCFG(p.field(0), p.field(None), W, space="v")
    np.testing.assert_allclose(f.velocity(x, t), p.cfg_velocity(x, t, 0, W), rtol=1e-10, atol=1e-10)


@pytest.mark.slow
def test_a_nonlinear_rule_depends_on_the_v_space():
    p = refcfg.GMMPath(refcfg.problem("two-class-2d"), "linear")
    x = 2 * np.random.default_rng(3).standard_normal((11, 2))
    c, u = p.field(0), p.field(None)
    for t in (0.3, 0.7):
        outs = {
            sp: V.APG(c, u, W, eta=0.0, norm_threshold=math.inf, space=sp).velocity(x, t)
            for sp in ("velocity", "x0", "eps", "v")
        }
        scale = np.abs(outs["velocity"]).max()
        for other in ("velocity", "x0", "eps"):
            assert np.abs(outs["v"] - outs[other]).max() > 1e-2 * scale, (other, t)


@pytest.mark.slow
def test_v_rescale_against_manual_v_space():
    """GuidanceRescale in v against the rule written out on the exact v predictions (<= 1e-10)."""
    p = refcfg.GMMPath(refcfg.problem("two-class-2d"), "cosine")
    x = 2 * np.random.default_rng(4).standard_normal((8, 2))
    sch = p.schedule
    for t in (0.2, 0.6, 0.9):
        al, be = sch.alpha(t), sch.beta(t)
        vc = al * p.eps(x, t, 0) - be * p.x0(x, t, 0)
        vu = al * p.eps(x, t, None) - be * p.x0(x, t, None)
        g = vu + W * (vc - vu)
        ratio = vc.std(axis=1, ddof=1, keepdims=True) / g.std(axis=1, ddof=1, keepdims=True)
        v = 0.7 * g * ratio + 0.3 * g
        # independent inverse: (x, v) = R (x0, eps) with R = [[al, be], [-be, al]] a scaled
        # rotation, so x0 = (al x - be v) / (al^2 + be^2), eps = (be x + al v) / (al^2 + be^2)
        q = al * al + be * be
        want = sch.dalpha(t) * (al * x - be * v) / q + sch.dbeta(t) * (be * x + al * v) / q
        got = V.GuidanceRescale(p.field(0), p.field(None), W, phi=0.7, space="v").velocity(x, t)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
