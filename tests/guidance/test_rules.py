"""Tests of the guidance rules (refcfg.guidance): each combination rule against an independent
per-row NumPy evaluation, each reduction to plain CFG, the space (velocity / x0 / eps) facts, the per-step state, errors.

Oracles: explicit per-row loops written here (not the vectorised code under test); the core's
``GMMPath.cfg_velocity`` / ``x0`` / ``eps`` (a different implementation of the exact fields); the
posterior identities x = alpha x0 + beta eps, u = dalpha x0 + dbeta eps; the sampler itself for
CFG-Zero*'s zero-init. Tolerances are stated per test (float64).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from refcfg import guidance as V
from refcfg.paths import GMMPath
from refcfg.problems import problem
from refcfg.sampling import sample
from refcfg.schedules import schedule

W = 3.0


@pytest.fixture(scope="module")
def path():
    return GMMPath(problem("two-class-2d"), "linear")


@pytest.fixture
def rng():  # per test: a test's inputs do not depend on which other tests ran before it
    return np.random.default_rng(1234)


def _rand(rng, n=7, d=3, scale=2.0):
    return scale * rng.standard_normal((n, d)), scale * rng.standard_normal((n, d))


# ------------------------------------------------------------------------------------------------
# 1. combination rules vs direct per-row NumPy evaluations
# ------------------------------------------------------------------------------------------------


def test_cfg_combine_rowwise(rng):
    c, u = _rand(rng)
    w = rng.uniform(-1, 5, size=c.shape[0])
    ref = np.array([w[i] * c[i] + (1 - w[i]) * u[i] for i in range(c.shape[0])])
    np.testing.assert_allclose(V.cfg_combine(c, u, w), ref, rtol=1e-14, atol=1e-13)


@pytest.mark.parametrize("phi", [0.0, 0.3, 0.7, 1.0])
def test_rescale_combine_rowwise(rng, phi):
    c, u = _rand(rng, d=4)
    out = V.rescale_combine(c, u, W, phi)
    for i in range(c.shape[0]):
        g = u[i] + W * (c[i] - u[i])
        # unbiased std as torch / diffusers compute it; the ratio is the same as with ddof = 0
        g_r = g * (np.std(c[i], ddof=1) / np.std(g, ddof=1))
        np.testing.assert_allclose(out[i], phi * g_r + (1 - phi) * g, rtol=1e-13, atol=1e-13)


def _apg_row(c, u, w, eta, r, beta, prev):
    delta = c - u
    avg = delta + beta * prev
    n = math.sqrt(float(avg @ avg))
    clipped = avg * min(1.0, r / n) if n > 0 else avg
    e = c / math.sqrt(float(c @ c))  # unit vector along c (torch normalize)
    par = float(clipped @ e) * e
    return c + (w - 1) * ((clipped - par) + eta * par), avg


@pytest.mark.parametrize("eta,r,beta", [(0.0, 15.0, 0.0), (0.5, 1.0, -0.5), (1.0, math.inf, 0.3)])
def test_apg_combine_rowwise_three_steps(rng, eta, r, beta):
    n, d = 6, 3
    prev_rows = [np.zeros(d) for _ in range(n)]
    running = None
    for _ in range(3):
        c, u = _rand(rng, n=n, d=d)
        out, running = V.apg_combine(c, u, W, eta, r, beta, running)
        for i in range(n):
            ref, prev_rows[i] = _apg_row(c[i], u[i], W, eta, r, beta, prev_rows[i])
            np.testing.assert_allclose(out[i], ref, rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(running[i], prev_rows[i], rtol=1e-14, atol=1e-14)


def test_apg_norm_threshold_binds(rng):
    # with r small the applied update has norm r * |w - 1| exactly when eta = 1 (no projection loss)
    c, u = _rand(rng, n=5, d=3, scale=5.0)
    out, _ = V.apg_combine(c, u, W, eta=1.0, norm_threshold=0.1)
    np.testing.assert_allclose(np.linalg.norm(out - c, axis=1), 0.1 * (W - 1), rtol=1e-12)


def test_cfg_zero_star_rowwise(rng):
    c, u = _rand(rng, d=5)
    out = V.cfg_zero_star_combine(c, u, W)
    for i in range(c.shape[0]):
        s = float(np.dot(c[i], u[i])) / (float(np.dot(u[i], u[i])) + 1e-8)
        np.testing.assert_allclose(out[i], s * u[i] + W * (c[i] - s * u[i]), rtol=1e-13, atol=1e-13)


def test_cfg_zero_star_scale_is_least_squares(rng):
    # s* minimises |c - s u|^2 (the paper's derivation), checked by a scalar optimiser per row
    from scipy.optimize import minimize_scalar

    c, u = _rand(rng, d=4)
    s = V.cfg_zero_star_scale(c, u, eps=0.0)[:, 0]
    for i in range(c.shape[0]):
        best = minimize_scalar(lambda a: float(np.sum((c[i] - a * u[i]) ** 2))).x
        assert abs(s[i] - best) < 1e-6


@pytest.mark.parametrize("kind", ["constant", "linear", "cosine"])
def test_weight_schedule_mean_and_values(kind):
    f = V.weight_schedule(kind, W)
    mean = integrate.quad(lambda t: float(f(np.array(t))), 0.0, 1.0)[0]
    assert abs(mean - W) < 1e-10  # mean over t equals the constant weight
    g = {
        "constant": lambda t: 1.0,
        "linear": lambda t: 2 * t,
        "cosine": lambda t: 1 - math.cos(math.pi * t),
    }[kind]
    for t in (0.0, 0.25, 0.9, 1.0):
        assert abs(float(f(np.array(t))) - (1 + (W - 1) * g(t))) < 1e-14


def test_noise_level_linear():
    t = np.array([0.0, 0.2, 0.5, 1.0])
    s = V.noise_level(schedule("linear"), t)
    assert s[0] == np.inf and s[-1] == 0.0
    np.testing.assert_allclose(s[1:3], (1 - t[1:3]) / t[1:3], rtol=1e-15)


# ------------------------------------------------------------------------------------------------
# 2. spaces: the conversions, commutation of CFG, non-commutation of the nonlinear variants
# ------------------------------------------------------------------------------------------------

TIMES = [0.05, 0.3, 0.7, 0.95]


@pytest.mark.parametrize("sched", ["linear", "cosine", "vp"])
def test_to_space_matches_exact_x0_eps(sched, rng):
    p = GMMPath(problem("two-class-2d"), sched)
    x = 2 * rng.standard_normal((9, 2))
    for t in TIMES + [0.0]:
        u = p.velocity(x, t, 0)
        np.testing.assert_allclose(
            V.to_space(u, x, t, "x0", p.schedule), p.x0(x, t, 0), rtol=1e-9, atol=1e-9
        )
        np.testing.assert_allclose(
            V.to_space(u, x, t, "eps", p.schedule), p.eps(x, t, 0), rtol=1e-9, atol=1e-9
        )
        for sp in ("x0", "eps"):
            if (sp == "x0" and t == 1.0) or (sp == "eps" and t == 0.0 and sched != "vp"):
                continue
            back = V.from_space(V.to_space(u, x, t, sp, p.schedule), x, t, sp, p.schedule)
            np.testing.assert_allclose(back, u, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("space", ["x0", "eps"])
@pytest.mark.parametrize("t", TIMES + [0.0, 1.0])
def test_plain_cfg_commutes_with_conversions(path, rng, space, t):
    # affine maps: w c + (1 - w) u is the same velocity whatever space it is formed in; at the
    # singular endpoints (x0: t = 1, eps: t = 0) the extrapolated limit agrees to ~1e-9
    x = 2 * rng.standard_normal((11, 2))
    f = V.PlainCFG(path.field(0), path.field(None), W, space=space)
    ref = path.cfg_velocity(x, t, 0, W)
    tol = 1e-7 if t in (0.0, 1.0) else 1e-10
    np.testing.assert_allclose(f.velocity(x, t), ref, rtol=tol, atol=tol)


@pytest.mark.slow
@pytest.mark.parametrize(
    "make",
    [
        lambda c, u, sp: V.GuidanceRescale(c, u, W, phi=0.7, space=sp),
        lambda c, u, sp: V.APG(c, u, W, eta=0.0, norm_threshold=math.inf, space=sp),
        lambda c, u, sp: V.CFGZeroStar(c, u, W, space=sp),
    ],
    ids=["rescale", "apg", "cfg-zero-star"],
)
def test_nonlinear_variants_depend_on_space(path, rng, make):
    x = 2 * rng.standard_normal((11, 2))
    c, u = path.field(0), path.field(None)
    for t in (0.3, 0.7):
        outs = {sp: make(c, u, sp).velocity(x, t) for sp in V.SPACES}
        scale = np.abs(outs["velocity"]).max()
        for a, b in (("velocity", "x0"), ("velocity", "eps"), ("x0", "eps")):
            assert np.abs(outs[a] - outs[b]).max() > 1e-2 * scale, (a, b, t)


@pytest.mark.slow
def test_rescale_field_against_manual_eps_space(path, rng):
    # guided eps by the per-row rule, mapped back by x0 = (x - beta eps)/alpha, u = dalpha x0 + dbeta eps
    x = 2 * rng.standard_normal((8, 2))
    sched = path.schedule
    for t in TIMES:
        ec, eu = path.eps(x, t, 0), path.eps(x, t, None)
        g = eu + W * (ec - eu)
        ratio = ec.std(axis=1, ddof=1, keepdims=True) / g.std(axis=1, ddof=1, keepdims=True)
        e = 0.7 * g * ratio + 0.3 * g
        a, b, da, db = sched.alpha(t), sched.beta(t), sched.dalpha(t), sched.dbeta(t)
        ref = da * (x - b * e) / a + db * e
        f = V.GuidanceRescale(path.field(0), path.field(None), W, phi=0.7, space="eps")
        np.testing.assert_allclose(f.velocity(x, t), ref, rtol=1e-9, atol=1e-9)


@pytest.mark.slow
def test_apg_field_against_manual_x0_space(path, rng):
    x = 2 * rng.standard_normal((8, 2))
    sched = path.schedule
    for t in TIMES:
        zc, zu = path.x0(x, t, 0), path.x0(x, t, None)
        z = np.array([_apg_row(zc[i], zu[i], W, 0.0, 0.5, 0.0, np.zeros(2))[0] for i in range(8)])
        a, b, da, db = sched.alpha(t), sched.beta(t), sched.dalpha(t), sched.dbeta(t)
        ref = da * z + db * (x - a * z) / b
        f = V.APG(path.field(0), path.field(None), W, eta=0.0, norm_threshold=0.5, space="x0")
        np.testing.assert_allclose(f.velocity(x, t), ref, rtol=1e-9, atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("space,t_end,t_near", [("x0", 1.0, 1 - 1e-7), ("eps", 0.0, 1e-7)])
def test_endpoint_limit_is_continuous(path, rng, space, t_end, t_near):
    # where the back map is singular the field is its limit: continuous at the endpoint
    x = 2 * rng.standard_normal((6, 2))
    f = V.GuidanceRescale(path.field(0), path.field(None), W, phi=0.7, space=space)
    a, b = f.velocity(x, t_end), f.velocity(x, t_near)
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# 3. reductions to plain CFG where the papers say so (field level, against GMMPath.cfg_velocity)
# ------------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "make",
    [
        lambda p: V.GuidanceRescale(p.field(0), p.field(None), W, phi=0.0),
        lambda p: V.APG(
            p.field(0), p.field(None), W, eta=1.0, norm_threshold=math.inf, momentum=0.0
        ),
        lambda p: V.GuidanceInterval(p.field(0), p.field(None), W, sigma_lo=None, sigma_hi=None),
        lambda p: V.CFGZeroStar(
            p.field(0), p.field(None), W, optimized_scale=False, zero_until=None
        ),
        lambda p: V.ScheduledCFG(p.field(0), p.field(None), W, kind="constant"),
        lambda p: V.Autoguidance(p.field(0), p.field(None), W),
    ],
    ids=[
        "rescale-phi0",
        "apg-eta1-rinf-nomomentum",
        "interval-all",
        "zero-star-off",
        "schedule-constant",
        "autoguidance-weak-is-uncond",
    ],
)
def test_reduces_to_plain_cfg(path, rng, make):
    f = make(path)
    x = 2 * rng.standard_normal((10, 2))
    for t in [0.0] + TIMES + [1.0]:
        np.testing.assert_allclose(
            f.velocity(x, t), path.cfg_velocity(x, t, 0, W), rtol=1e-7, atol=1e-7
        )


@pytest.mark.slow
def test_all_variants_are_conditional_at_w1(path, rng):
    # w = 1 means no guidance: every variant except autoguidance's (weak field equal weight 0) is
    # the conditional field (CFG-Zero*'s s* and APG's projection multiply (w - 1) = 0 terms)
    x = 2 * rng.standard_normal((10, 2))
    for name in V.RULES:
        f = V.make(name, path, 0, 1.0)
        for t in TIMES:
            np.testing.assert_allclose(
                f.velocity(x, t), path.velocity(x, t, 0), rtol=1e-8, atol=1e-8, err_msg=name
            )


def test_interval_active_set_linear(path):
    lo, hi = 0.28, 2.9
    f = V.GuidanceInterval(path.field(0), path.field(None), W, sigma_lo=lo, sigma_hi=hi)
    t = np.linspace(0, 1, 100001)
    on = f.active(t)
    # sigma = (1 - t)/t in (lo, hi]  <=>  t in [1/(1 + hi), 1/(1 + lo))
    assert np.array_equal(on, (t >= 1 / (1 + hi) - 1e-15) & (t < 1 / (1 + lo)))
    x = np.array([[0.3, -0.2]])
    inside, outside = 0.5, 0.9
    np.testing.assert_allclose(
        f.velocity(x, inside), path.cfg_velocity(x, inside, 0, W), rtol=1e-12
    )
    np.testing.assert_allclose(f.velocity(x, outside), path.velocity(x, outside, 0), rtol=1e-12)


def test_weaker_mixture_and_autoguidance(path, rng):
    mix = path.mixture
    weak = V.weaker_mixture(mix, 2.0)
    for g, h in zip(mix.classes, weak.classes):
        np.testing.assert_allclose(h.covs, 2.0 * g.covs, rtol=1e-12)
        np.testing.assert_array_equal(h.means, g.means)
    same = GMMPath(V.weaker_mixture(mix, 1.0), path.schedule)
    f = V.Autoguidance(path.field(0), same.field(0), W)
    x = 2 * rng.standard_normal((5, 2))
    np.testing.assert_allclose(f.velocity(x, 0.4), path.velocity(x, 0.4, 0), rtol=1e-10, atol=1e-12)
    wp = GMMPath(weak, path.schedule)
    f2 = V.make("autoguidance", path, 0, W)
    ref = W * path.velocity(x, 0.4, 0) + (1 - W) * wp.velocity(x, 0.4, 0)
    np.testing.assert_allclose(f2.velocity(x, 0.4), ref, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# 4. per-step state: CFG-Zero*'s zero-init, APG momentum keyed on t, reproducibility
# ------------------------------------------------------------------------------------------------


def test_zero_init_equals_starting_later(path):
    # Euler with the first K velocities zeroed == Euler from t_K on the same noise (independent:
    # the sampler's own grid arithmetic)
    grid = np.linspace(0, 1, 21)
    K = 2
    noise = np.random.default_rng(5).standard_normal((50, 2))
    z = V.CFGZeroStar(
        path.field(0), path.field(None), W, zero_until=V.CFGZeroStar.zero_init_from_grid(grid, K)
    )
    nz = V.CFGZeroStar(path.field(0), path.field(None), W, zero_until=None)
    a = sample(z, 50, sampler="euler", t_grid=grid, x_init=noise)
    b = sample(nz, 50, sampler="euler", t_grid=grid[K:], x_init=noise)
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
    assert V.CFGZeroStar.zero_init_from_grid(grid, 0) is None


def _apg_stateful(path, **kw):
    return V.APG(
        path.field(0),
        path.field(None),
        W,
        eta=0.0,
        norm_threshold=math.inf,
        momentum=-0.5,
        space="velocity",
        **kw,
    )


@pytest.mark.slow
def test_apg_momentum_keyed_on_t(path, rng):
    x = 2 * rng.standard_normal((4, 2))
    c = {t: path.velocity(x, t, 0) for t in (0.1, 0.2, 0.3)}
    u = {t: path.velocity(x, t, None) for t in (0.1, 0.2, 0.3)}
    f = _apg_stateful(path)
    f.velocity(x, 0.1)
    f.velocity(x, 0.2)
    f.velocity(x + 1.0, 0.2)  # a second call at the same t (Heun): must not count twice
    out = f.velocity(x, 0.3)
    avg1 = c[0.1] - u[0.1]
    x1 = x + 1.0  # the last call at t = 0.2 (it replaces the first one there)
    avg2 = (path.velocity(x1, 0.2, 0) - path.velocity(x1, 0.2, None)) + (-0.5) * avg1
    ref = np.array(
        [_apg_row(c[0.3][i], u[0.3][i], W, 0.0, math.inf, -0.5, avg2[i])[0] for i in range(4)]
    )
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)


def test_apg_reset_and_reproducible_sampling(path):
    f = _apg_stateful(path)
    noise = np.random.default_rng(3).standard_normal((30, 2))
    a = sample(f, 30, sampler="heun", steps=10, x_init=noise)
    b = sample(f, 30, sampler="heun", steps=10, x_init=noise)  # auto reset at t = 0
    np.testing.assert_array_equal(a, b)
    g = _apg_stateful(path, auto_reset=False)
    sample(g, 30, sampler="euler", steps=5, x_init=noise)
    with pytest.raises(ValueError, match="reset"):
        g.velocity(noise, 0.0)
    g.reset()
    c = sample(g, 30, sampler="euler", steps=5, x_init=noise)
    d = sample(_apg_stateful(path), 30, sampler="euler", steps=5, x_init=noise)
    np.testing.assert_array_equal(c, d)
    # momentum changes the result (the state is used at all)
    e = sample(
        V.APG(
            path.field(0),
            path.field(None),
            W,
            eta=0.0,
            norm_threshold=math.inf,
            momentum=0.0,
            space="velocity",
        ),
        30,
        sampler="euler",
        steps=5,
        x_init=noise,
    )
    assert np.abs(c - e).max() > 1e-3


# ------------------------------------------------------------------------------------------------
# 5. errors
# ------------------------------------------------------------------------------------------------


def test_errors(path):
    c, u = path.field(0), path.field(None)
    with pytest.raises(ValueError, match="space"):
        V.GuidanceRescale(c, u, W, space="score")
    with pytest.raises(TypeError, match="phi"):
        V.GuidanceRescale(c, u, W, phi="a lot")
    with pytest.raises(ValueError, match="norm_threshold"):
        V.APG(c, u, W, norm_threshold=0.0)
    with pytest.raises(ValueError, match="sigma_hi"):
        V.GuidanceInterval(c, u, W, sigma_lo=3.0, sigma_hi=1.0)
    with pytest.raises(TypeError, match="cond"):
        V.PlainCFG(object(), u, W)
    with pytest.raises(ValueError, match="kind"):
        V.weight_schedule("exponential", W)
    with pytest.raises(ValueError, match="d >= 2"):
        V.rescale_combine(np.ones((3, 1)), np.zeros((3, 1)), W)
    with pytest.raises(ValueError, match="shape"):
        V.cfg_combine(np.ones((3, 2)), np.ones((4, 2)), W)
    with pytest.raises(ValueError, match="one time per call"):
        _apg_stateful(path).velocity(np.zeros((2, 2)), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="zero_init_steps"):
        V.CFGZeroStar.zero_init_from_grid(np.linspace(0, 1, 5), 5)
    with pytest.raises(ValueError, match="name"):
        V.make("magic", path, 0, W)
    with pytest.raises(ValueError, match="cov_scale"):
        V.weaker_mixture(path.mixture, -1.0)
    with pytest.raises(ValueError, match="x has shape"):
        V.PlainCFG(c, u, W).velocity(np.zeros((2, 3)), 0.5)


def test_per_row_times_for_stateless_variants(path, rng):
    # rows with different t (including a singular endpoint row) equal row-by-row evaluation
    # (the fields are wrapped to evaluate row by row at float times, so this checks the variant's
    # own per-row handling whatever the core does with (N,) times)
    class RowField:
        def __init__(self, inner):
            self.inner, self.d, self.schedule = inner, inner.d, inner.schedule

        def velocity(self, x, t):
            tt = np.broadcast_to(np.asarray(t, dtype=float), (x.shape[0],))
            return np.concatenate(
                [self.inner.velocity(x[i : i + 1], float(tt[i])) for i in range(x.shape[0])]
            )

    x = 2 * rng.standard_normal((4, 2))
    t = np.array([0.0, 0.4, 0.8, 1.0])
    f = V.GuidanceRescale(RowField(path.field(0)), RowField(path.field(None)), W, space="x0")
    out = f.velocity(x, t)
    for i in range(4):
        np.testing.assert_allclose(
            out[i], f.velocity(x[i : i + 1], float(t[i]))[0], rtol=1e-12, atol=1e-12
        )


@pytest.mark.slow
def test_learned_like_fields_need_only_velocity(path, rng):
    # a field with velocity(x, t) only (as a trained network would be): works in velocity space,
    # and in x0 / eps space once the schedule is given; equal to the exact-field variant
    class Bare:
        def __init__(self, inner):
            self.velocity = inner.velocity

    c, u = Bare(path.field(0)), Bare(path.field(None))
    x = 2 * rng.standard_normal((5, 2))
    with pytest.raises(ValueError, match="schedule"):
        V.APG(c, u, W, space="x0")
    a = V.APG(c, u, W, space="x0", schedule=path.schedule).velocity(x, 0.4)
    b = V.APG(path.field(0), path.field(None), W, space="x0").velocity(x, 0.4)
    # the bare fields go through their own velocity (NumPy), the exact ones through the CPU kernels
    # (the registered evaluator): the same values to rounding
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        V.CFGZeroStar(c, u, W).velocity(x, 0.4),
        V.CFGZeroStar(path.field(0), path.field(None), W).velocity(x, 0.4),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.slow
@pytest.mark.parametrize("make", [V.GuidanceRescale, V.APG, V.CFGZeroStar])
def test_nonlinear_rules_evaluate_through_the_field_protocol(path, rng, make):
    # each input field's velocity(x, t) is called once per evaluation, with the points given
    calls = []

    class Recording:
        def __init__(self, inner):
            self.inner, self.d, self.schedule = inner, inner.d, inner.schedule

        def velocity(self, x, t):
            calls.append((x.shape, t))
            return self.inner.velocity(x, t)

    x = 2 * rng.standard_normal((6, 2))
    rule = make(Recording(path.field(0)), Recording(path.field(None)), W)
    out = rule.velocity(x, 0.4)
    assert calls == [((6, 2), 0.4), ((6, 2), 0.4)]
    # exact fields go to the CPU kernels (the registered evaluator): the same field to rounding
    want = make(path.field(0), path.field(None), W).velocity(x, 0.4)
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)


@pytest.mark.slow
def test_nonlinear_inputs_are_the_fields_own_velocities_on_the_kernels():
    # refcfg.sampling registers its CPU kernels as the evaluator of a nonlinear rule's input fields:
    # bit for bit the kernel's velocity, and the field's own NumPy velocity to 1e-12 (relative)
    from refcfg.guidance import nonlinear
    from refcfg.sampling import cpu

    path = GMMPath(problem("mit-symmetric"), schedule("cosine"))
    cond, ref = path.field(1), path.field(None)
    rule = V.GuidanceRescale(cond, ref, w=3.0)
    x = np.random.default_rng(3).standard_normal((40, 2)) * 2.0
    for t in (0.0, 0.4, 1.0):
        got = rule._component(cond, x, t)
        np.testing.assert_array_equal(got, cpu.velocity(cond, x, t))
        np.testing.assert_allclose(got, cond.velocity(x, t), rtol=1e-12, atol=1e-12)
    with pytest.raises(TypeError, match="evaluate must be callable"):
        nonlinear.register_input_velocity("kernels")


@pytest.mark.slow
def test_cfg_zero_star_keeps_the_field_methods(path, rng):
    # its eps parameter (the denominator guard of s*) must not shadow the field method eps(x, t):
    # x0 and eps of the rule are the conversions of its own velocity
    from refcfg.convert import convert

    rule = V.CFGZeroStar(path.field(0), path.field(None), W, eps=1e-6)
    x = 2 * rng.standard_normal((5, 2))
    v = rule.velocity(x, 0.4)
    for kind in ("x0", "eps"):
        want = convert(v, "velocity", kind, x, 0.4, path.schedule)
        np.testing.assert_allclose(getattr(rule, kind)(x, 0.4), want, rtol=1e-12, atol=1e-12)
