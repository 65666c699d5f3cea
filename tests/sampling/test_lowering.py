"""The one lowering (refcfg.sampling.lowering) and the backend rule: records, subclass safety,
time factors, and the refusal of non-lowerable fields by every fast backend."""

import numpy as np
import pytest

import refcfg
from refcfg.guidance import base as gbase
from refcfg.sampling import cpu, log_likelihood
from refcfg.sampling.api import resolve_backend
from refcfg.sampling.lowering import (
    MODE_FULL,
    Components,
    Groups,
    NotLowerable,
    TimeTables,
    is_lowerable,
    lower,
)

PATH = refcfg.GMMPath(refcfg.problem("two-class-2d"))
TIMES = [0.0, 0.05, 0.3, 0.5, 0.8, 0.97, 1.0]


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def test_records_follow_the_contract():
    n = 7
    f = refcfg.CFGField(PATH, np.array([0, 1, -1, 0, 1, 1, 0]), np.linspace(1, 3, n))
    low = lower(f, n)
    K, d = PATH.mixture.marginal.K, PATH.d
    assert isinstance(low.comp, Components) and isinstance(low.groups, Groups)
    assert low.comp.mode == MODE_FULL and low.K == K and low.G == 2 and low.n == n
    assert low.comp.lam.shape == (K, d) and low.comp.mu.shape == (d, K)
    assert low.comp.QT.shape == (d, d, K)
    assert low.groups.lo.shape == (n, 2) and low.groups.coef.shape == (n, 2)
    # the NULL label's group covers every component, a class's only its own
    assert (low.groups.lo[2, 0], low.groups.hi[2, 0]) == (0, K)
    tab = low.tables(np.array([0.2, 0.6]), "velocity")
    assert isinstance(tab, TimeTables) and tab.tcoef.shape == (2, 2) and np.all(tab.tcoef == 1)
    assert tab.cst.shape == (2, K) and tab.gain.shape == (2, d, K)
    # the error class is the guidance package's (one NotLowerable)
    assert NotLowerable is gbase.NotLowerable


class ZeroVelocity(refcfg.ExactField):
    """A subclass that changes the mathematics (velocity = 0) without declaring how it lowers."""

    def velocity(self, x, t):
        return np.zeros_like(np.asarray(x, dtype=np.float64))


def test_subclass_override_is_honoured_or_refused_never_replaced():
    f = ZeroVelocity(PATH, 0)
    assert not is_lowerable(f)
    x0 = np.random.default_rng(0).standard_normal((50, 2))
    # auto runs the override on NumPy: velocity 0, the samples are the start exactly
    assert resolve_backend("auto", f) == "numpy"
    assert np.array_equal(refcfg.sample(f, 50, "rk4", steps=5, x_init=x0), x0)
    # the fast backends refuse it, saying why and where it runs
    for backend in ("cpu", "cuda"):
        with pytest.raises(TypeError, match=r"overrides velocity.*backend='numpy'"):
            refcfg.sample(f, 50, "heun", steps=5, x_init=x0, backend=backend)
    with pytest.raises(TypeError, match="overrides velocity"):
        cpu.velocity(f, x0, 0.5)
    with pytest.raises(TypeError, match="overrides velocity"):
        log_likelihood(f, x0, steps=4, backend="cpu")
    # the unmodified class lowers, and "auto" takes the CPU kernels for it
    g = refcfg.ExactField(PATH, 0)
    assert is_lowerable(g) and resolve_backend("auto", g) == "cpu"


def _guided_with_time_factors():
    from refcfg.guidance.linear import GuidanceInterval, ScheduledCFG

    cond, ref = refcfg.ExactField(PATH, 1), refcfg.ExactField(PATH, None)
    return [
        GuidanceInterval(cond, ref, 3.0, sigma_lo=0.3, sigma_hi=2.0),
        ScheduledCFG(cond, ref, 2.5, kind="linear"),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("which", [0, 1])
def test_time_factors_cpu_equals_numpy(which):
    # the guidance interval (indicator time factor) and w(t) (linear profile): the kernels apply
    # coef * tcoef(t) per group; NumPy computes the rule from the fields. 1e-12 relative at
    # interior times and both endpoints, and along whole runs (stage times in and out of the
    # interval)
    f = _guided_with_time_factors()[which]
    low = lower(f)
    tc = low.tables(np.array(TIMES)).tcoef
    assert not np.all(tc == 1.0)  # the time factors are really there
    x = 2.0 * np.random.default_rng(1).standard_normal((300, 2))
    for t in TIMES:
        assert rel(cpu.velocity(f, x, t), f.velocity(x, t)) <= 1e-12, t
    tt = np.random.default_rng(2).choice(TIMES, 300)  # per-particle times (per-lane rows)
    ref = np.concatenate([f.velocity(x[i : i + 1], tt[i]) for i in range(300)])
    assert rel(cpu.velocity(f, x, tt), ref) <= 1e-12
    for sampler in ("heun", "rk4"):
        a = refcfg.sample(f, 300, sampler, steps=12, x_init=x, backend="cpu")
        b = refcfg.sample(f, 300, sampler, steps=12, x_init=x, backend="numpy")
        assert rel(a, b) <= 1e-12, sampler


def test_bad_time_factor_is_named():
    class BadFactor(refcfg.ExactField):
        def _terms(self):
            return [gbase.LinearTerm(self.path, self.y, 1.0, lambda t: np.ones(3))]

    low = lower(BadFactor(PATH, 0))
    with pytest.raises(ValueError, match="time factor"):
        low.tables(np.linspace(0, 1, 5))


@pytest.mark.slow
def test_point_masses_refused_where_beta_vanishes_on_every_backend():
    """Point masses (covariance 0): the kernels' tables would hold 1/beta_t^2 = inf at t = 1, so the
    lowering refuses before any kernel runs, like the NumPy core; below t = 1 the backends agree."""
    X = np.array([[0.0, 0.0], [1.0, 0.5], [-1.0, 0.5], [2.0, -1.0]])
    labels = np.array([0, 0, 1, 1])
    path = refcfg.GMMPath(refcfg.problems.from_points(X, labels), "linear")
    field = path.cfg(0, 2.0)
    for backend in ("numpy", "cpu"):
        with pytest.raises(ValueError, match="t = 1.0"):
            refcfg.sample(field, 8, sampler="heun", steps=4, seed=0, backend=backend)
    # Euler never evaluates at t = 1: finite on both backends, and equal
    a = refcfg.sample(field, 8, sampler="euler", steps=20, seed=0, backend="numpy")
    b = refcfg.sample(field, 8, sampler="euler", steps=20, seed=0, backend="cpu")
    assert np.all(np.isfinite(b))
    np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
    # Heun to t_end < 1: equal on both backends
    a = refcfg.sample(field, 8, sampler="heun", steps=10, seed=0, t_end=0.99, backend="numpy")
    b = refcfg.sample(field, 8, sampler="heun", steps=10, seed=0, t_end=0.99, backend="cpu")
    np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12)
