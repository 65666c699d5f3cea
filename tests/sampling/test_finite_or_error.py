"""Every backend returns finite values that agree with the NumPy core, or raises the NumPy core's
error, before any work where the arguments tell: a class with prior 0 (its conditional law exists),
points beyond X_MAX, guidance weights beyond W_MAX, runs that diverge, points far from every
component (where a log-normaliser loses its sum to rounding).

Backends: "numpy" (the reference), "cpu" (Numba kernels) here; "cuda" under numba's CUDA simulator in
a subprocess (``test_cuda_simulator_finite_or_error``, slow tier). Oracles independent of the
kernels: the NumPy core, and for the prior-0 class the path of that class's own GMM."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import refcfg
from refcfg._validation import W_MAX, X_MAX
from refcfg.sampling import cpu

ROOT = Path(__file__).resolve().parents[2]
TIMES = [0.0, 0.3, 0.7, 1.0]
TOL = 1e-12  # float64 fields and samples, relative to the largest entry


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def _zero_prior():
    g0 = refcfg.GMM(
        [0.3, 0.7], [[2.0, 0.0], [1.0, 1.5]], [[[0.4, 0.1], [0.1, 0.3]], [[0.2, 0.0], [0.0, 0.5]]]
    )
    g1 = refcfg.GMM(
        [0.6, 0.4],
        [[-2.0, 0.5], [-1.0, -1.0]],
        [[[0.3, 0.0], [0.0, 0.6]], [[0.5, -0.2], [-0.2, 0.4]]],
    )
    mix = refcfg.LabeledGMM([g0, g1], [1.0, 0.0])
    return refcfg.GMMPath(mix), refcfg.GMMPath(g1), refcfg.GMMPath(g0)


# ---- a class with prior 0 -------------------------------------------------------------------


@pytest.mark.slow
def test_prior_zero_class_fields_are_its_own_gmm_on_every_backend():
    path, alone1, alone0 = _zero_prior()
    x = np.random.default_rng(0).standard_normal((40, 2)) * 2
    for t in TIMES[:-1] + [0.999]:
        want = alone1.velocity(x, t)  # the conditional law of class 1: g1 alone
        assert rel(path.velocity(x, t, 1), want) < TOL
        assert rel(cpu.velocity(path.field(1), x, t), want) < TOL
        assert rel(cpu.score(path.field(1), x, t), alone1.score(x, t)) < TOL
        # the unconditional field is class 0's (weight 0 for class 1)
        assert rel(cpu.velocity(path.field(None), x, t), alone0.velocity(x, t)) < TOL
        # CFG and classifier guidance towards the class of prior 0: CPU = NumPy core
        for f in (
            refcfg.CFGField(path, 1, 2.5),
            refcfg.ClassifierGuidedField(path, 1, 2.5),
            refcfg.CFGField(path, np.array([1, 0, -1, 1] * 10), 1.5),
        ):
            v = cpu.velocity(f, x, t)
            assert np.all(np.isfinite(v)) and rel(v, f.velocity(x, t)) < TOL, (t, f)
    t = np.linspace(0, 1, 40)  # per-point times, endpoints included
    assert rel(cpu.velocity(path.field(1), x, t), alone1.velocity(x, t)) < TOL


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["euler", "heun", "rk4"])
def test_prior_zero_class_samples_equal_numpy(sampler):
    path, alone1, _ = _zero_prior()
    x0 = np.random.default_rng(1).standard_normal((64, 2))
    kw = dict(steps=12, x_init=x0)
    for y, w in ((1, None), (1, 3.0), (np.array([1, 0, -1, 1] * 16), 2.0)):
        a = refcfg.sample(path, 64, sampler, y=y, w=w, backend="numpy", **kw)
        b = refcfg.sample(path, 64, sampler, y=y, w=w, backend="cpu", **kw)
        assert np.all(np.isfinite(b)) and rel(b, a) < TOL, (y, w)
    # y = 1 unguided is the flow of class 1's own GMM
    c = refcfg.sample(alone1, 64, sampler, backend="cpu", **kw)
    assert rel(refcfg.sample(path, 64, sampler, y=1, backend="cpu", **kw), c) < TOL


@pytest.mark.slow
def test_prior_zero_class_likelihood_equals_numpy():
    path, alone1, _ = _zero_prior()
    x = np.random.default_rng(2).standard_normal((20, 2))
    a = refcfg.log_likelihood(path, x, steps=16, y=1, backend="numpy")
    b = refcfg.log_likelihood(path, x, steps=16, y=1, backend="cpu")
    assert np.all(np.isfinite(b)) and rel(b, a) < 1e-10
    assert rel(b, refcfg.log_likelihood(alone1, x, steps=16, backend="cpu")) < 1e-10


# ---- guards before work, the same on every backend --------------------------------------------

BACKENDS = ["numpy", "cpu"]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_points_beyond_x_max_are_refused(backend):
    path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    big = np.full((3, 2), 1e200)
    msg = r"x has entries up to 1e\+200; \|x\| <= 1e\+100"
    with pytest.raises(ValueError, match=msg):
        if backend == "numpy":
            path.velocity(big, 0.5, 0)
        else:
            cpu.velocity(path.field(0), big, 0.5)
    with pytest.raises(
        ValueError, match=msg.replace("x has", "x_init has").replace(r"\|x\|", r"\|x_init\|")
    ):
        refcfg.sample(path, 3, steps=2, x_init=big, backend=backend)
    with pytest.raises(ValueError, match=msg):
        refcfg.log_likelihood(path, big, steps=2, backend=backend)
    # at X_MAX itself: finite and equal
    edge = np.full((3, 2), X_MAX)
    a = path.velocity(edge, 0.5, 0)
    b = cpu.velocity(path.field(0), edge, 0.5)
    assert np.all(np.isfinite(b)) and rel(b, a) < TOL


@pytest.mark.parametrize("backend", BACKENDS)
def test_guidance_weight_beyond_w_max_is_refused_before_work(backend):
    path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    for w in (1e50, -1e7, np.array([1.0, 2e6, 1.0])):
        with pytest.raises(ValueError, match=r"\|w\| <= 1e\+06"):
            refcfg.sample(path, 3, steps=2, y=0, w=w, backend=backend)
    with pytest.raises(TypeError, match="w must be a float, got True"):
        refcfg.sample(path, 3, steps=2, y=0, w=True, backend=backend)
    assert refcfg.CFGField(path, 0, W_MAX).w == W_MAX


@pytest.mark.slow
def test_divergence_is_the_same_error_on_every_backend():
    # w = 1e6 (accepted) with 20 Heun steps: the state passes 1e100 before t = 1
    path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    errs = {}
    for backend in BACKENDS:
        with pytest.raises(
            ValueError, match=r"sampling diverged: the state left \|x\| <= 1e\+100"
        ) as e:
            refcfg.sample(path, 50, "heun", steps=20, seed=1, y=0, w=1e6, backend=backend)
        errs[backend] = str(e.value)
    assert len(set(errs.values())) == 1
    # with 20 Euler steps it stays below 1e100: finite on both, equal
    a, b = (
        refcfg.sample(path, 50, "euler", steps=20, seed=1, y=0, w=1e6, backend=be)
        for be in BACKENDS
    )
    assert np.all(np.isfinite(b)) and rel(b, a) < 1e-10


# ---- far from every component: the log-normaliser loses its sum ------------------------------


def _schedule_at(schedule, t):
    v = schedule.values(t)
    return tuple(float(np.asarray(q)) for q in (v.alpha, v.beta, v.dalpha, v.beta_dbeta))


@pytest.mark.slow
@pytest.mark.parametrize("t", [0.5, 0.9, 0.999, 1.0])
def test_far_points_sum_responsibilities_to_one_on_every_backend(t):
    # five classes of equal isotropic covariance lam: u = gain x + sum_k r_k (dm - alpha gain) mu_k
    # with gain = (alpha dm lam + beta dbeta) / s the same for every k and sum_k r_k = 1, so
    # |u - gain x| <= max_k |(dm - alpha gain) mu_k| whatever the responsibilities (NumPy used to
    # give r_k = 1 each far away, i.e. 5 gain x); the kernels normalise by the sum of exponentials
    path = refcfg.GMMPath(refcfg.problem("mit-symmetric"))
    al, be, da, bdb = _schedule_at(path.schedule, t)
    lam = path.mixture.marginal.eigvals[0, 0]
    gain = (al * da * lam + bdb) / (al**2 * lam + be**2)
    bound = abs(da - al * gain) * np.max(np.linalg.norm(path.mixture.marginal.means, axis=1))
    for xv in (1e8, 1e20, 1e50, 1e100):
        x = np.full((2, 2), xv) * np.array([[1.0], [-1.0]])
        for f in (path.field(None), path.field(2)):
            a, b = f.velocity(x, t), cpu.velocity(f, x, t)
            slack = bound * (1 + 1e-9) + 1e-12 * abs(gain) * xv
            assert np.all(np.linalg.norm(a - gain * x, axis=1) <= slack), (xv, f, a)
            assert np.all(np.linalg.norm(b - gain * x, axis=1) <= slack), (xv, f, b)
        f = refcfg.CFGField(path, 0, 5.0)  # weights 5 and -4: |u - gain x| <= 9 bound
        a, b = f.velocity(x, t), cpu.velocity(f, x, t)
        assert np.all(np.linalg.norm(a - gain * x, axis=1) <= 9 * slack), (xv, a)
        assert np.all(np.linalg.norm(b - gain * x, axis=1) <= 9 * slack), (xv, b)
        clp = path.class_log_probs(x, t)
        assert np.allclose(np.exp(clp).sum(1), 1.0, rtol=0, atol=1e-12), xv


def test_responsibilities_of_far_points_sum_to_one():
    g = refcfg.GMM([0.2, 0.3, 0.5], [[0.0, 1.0], [1.0, 0.0], [-1.0, -1.0]], [1.0, 1.0, 1.0])
    r = g.responsibilities(np.array([[1e20, 1e20], [3.0, 4.0]]))
    assert np.allclose(r.sum(1), 1.0, rtol=0, atol=1e-12)


# ---- CUDA (simulator) ---------------------------------------------------------------------------

CUDA_SCRIPT = textwrap.dedent("""
    import numpy as np, refcfg
    from refcfg.sampling import cuda
    assert cuda.simulator_enabled()
    g0 = refcfg.GMM([1.0], [[2.0, 0.0]], [0.3])
    g1 = refcfg.GMM([0.5, 0.5], [[-2.0, 0.0], [-1.0, 1.0]], [0.3, 0.2])
    path = refcfg.GMMPath(refcfg.LabeledGMM([g0, g1], [1.0, 0.0]))
    x0 = np.random.default_rng(0).standard_normal((4, 2))
    for y, w in ((1, None), (1, 3.0)):
        a = refcfg.sample(path, 4, "euler", steps=2, x_init=x0, y=y, w=w, backend="numpy")
        b = refcfg.sample(path, 4, "euler", steps=2, x_init=x0, y=y, w=w, backend="cuda")
        err = float(np.max(np.abs(a - b)) / np.max(np.abs(a)))
        assert np.all(np.isfinite(b)) and err < 1e-12, (y, w, b, a)
    for kw, msg in ((dict(y=0, w=1e50), "|w| <= 1e+06"),
                    (dict(x_init=np.full((4, 2), 1e200)), "|x_init| <= 1e+100")):
        try:
            refcfg.sample(path, 4, "euler", steps=2, backend="cuda", **kw)
        except ValueError as e:
            assert msg in str(e), e
        else:
            raise AssertionError(f"no error for {kw}")
    print("CUDA-SIM OK")
""")


@pytest.mark.slow
def test_cuda_simulator_finite_or_error():
    pytest.importorskip("numba_cuda", reason="numba-cuda (the 'cuda' extra) is not installed")
    env = dict(
        os.environ,
        NUMBA_ENABLE_CUDASIM="1",
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    proc = subprocess.run(
        [sys.executable, "-c", CUDA_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0 and "CUDA-SIM OK" in proc.stdout, proc.stderr[-3000:]
