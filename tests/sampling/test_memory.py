"""Sampling and the likelihood refuse, before any work, a run whose memory cannot fit
(``refcfg.sampling.api.sample_memory`` checked by ``refcfg._limits.require_memory``), and the
estimate bounds the peak actually reached (the arrays' peak as tracemalloc sees it, in a
subprocess, slow tier; the kernels' per-thread scratch, allocated by numba, is not seen there)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import refcfg
from refcfg.sampling import api

ROOT = Path(__file__).resolve().parents[2]
PATH = refcfg.GMMPath(refcfg.problem("two-class-2d"))


@pytest.fixture
def one_gib(monkeypatch):
    monkeypatch.setenv("REFCFG_MEMORY_LIMIT", "1G")

    def no_grid(*a, **k):
        raise AssertionError("the time grid was built: the refusal came after work began")

    monkeypatch.setattr(api, "time_grid", no_grid)


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
def test_sample_refuses_what_cannot_fit_before_any_work(one_gib, backend):
    need = r"needs an estimated [\d.]+ [GT]iB of memory but 819 MiB can be used"
    with pytest.raises(
        ValueError,
        match=r"sampling 1000000000 particles over 100 steps " + need + r".*lower n or steps",
    ):
        refcfg.sample(PATH, 10**9, backend=backend)
    with pytest.raises(ValueError, match=r"over 1000000000000 steps " + need):
        refcfg.sample(PATH, 10, steps=10**12, backend=backend)
    with pytest.raises(
        ValueError,
        match=r"keeping the trajectory "
        + need
        + r".*lower n or steps \(or raise trajectory_every\)",
    ):
        refcfg.sample(PATH, 10**5, steps=10**4, return_trajectory=True, backend=backend)
    with pytest.raises(
        ValueError,
        match=r"the likelihood of 3 points over 1000000000000 steps "
        + need
        + r".*lower x's N or steps",
    ):
        refcfg.log_likelihood(PATH, np.zeros((3, 2)), steps=10**12, backend=backend)


def test_a_run_that_fits_runs_under_the_limit(monkeypatch):
    monkeypatch.setenv("REFCFG_MEMORY_LIMIT", "64M")
    x = refcfg.sample(PATH, 1000, steps=10, seed=0, backend="numpy")
    assert x.shape == (1000, 2) and np.all(np.isfinite(x))
    # the estimate of that run is well inside the limit, and it grows with n, steps and the trajectory
    e = api.sample_memory(1000, 2, 10, "heun", K=4, dd=2)
    assert e < 0.8 * 64 * 2**20
    assert api.sample_memory(2000, 2, 10, "heun", K=4, dd=2) > e
    assert api.sample_memory(1000, 2, 10, "heun", K=4, dd=2, kept=12) > e
    assert api.sample_memory(1000, 2, 10**6, "heun", K=4, dd=2, backend="cpu") > api.sample_memory(
        1000, 2, 10, "heun", K=4, dd=2, backend="cpu"
    )


def test_field_size_reads_the_lowered_components():
    assert api.field_size(refcfg.CFGField(PATH, 0, 2.0)) == (4, 2)  # full covariances
    iso = refcfg.GMMPath(refcfg.problem("mit-symmetric"))
    assert api.field_size(iso.field(1)) == (5, 1)
    assert api.field_size(object()) == (1, 1)


MEASURE = textwrap.dedent("""
    import json, sys, tracemalloc
    import refcfg
    from refcfg.sampling.api import _kept, field_size, sample_memory
    prob, n, steps, sampler, backend, every = sys.argv[1:]
    n, steps, every = int(n), int(steps), int(every)
    path = refcfg.GMMPath(refcfg.problem(prob))
    f = refcfg.CFGField(path, 0, 2.0)
    refcfg.sample(f, 10, sampler, steps=2, seed=0, backend=backend)      # load the kernels
    tracemalloc.start()                  # NumPy reports its array memory to tracemalloc
    refcfg.sample(f, n, sampler, steps=steps, seed=0, backend=backend,
                  return_trajectory=every > 0, trajectory_every=max(every, 1))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    K, dd = field_size(f)
    est = sample_memory(n, path.d, steps, sampler, K=K, dd=dd, backend=backend,
                        kept=_kept(steps, every or None))
    print(json.dumps(dict(measured=peak, estimate=est)))
""")


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ("two-class-2d", 1000000, 10, "heun", "numpy", 0),
        ("two-class-2d", 1000000, 10, "heun", "cpu", 0),
        ("two-class-2d", 100000, 100, "heun", "cpu", 10),
        ("tree", 64, 200, "rk4", "cpu", 0),
    ],
)
def test_estimate_bounds_the_measured_peak(args):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    # an upper bound (the refusal must not let through what does not fit), not a wild one
    assert r["measured"] <= r["estimate"] <= 8 * max(r["measured"], 2**20), r


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["euler", "heun"])
def test_long_cpu_ode_run_runs_in_time_segments_with_the_same_bits(monkeypatch, sampler):
    # tables of 1000 steps x s stages x K = 2032 components: above a 64 MiB limit, while the state
    # (n = 8) is tiny; the run is split in time, each segment with its own tables
    tree = refcfg.GMMPath(refcfg.problem("tree"))
    f = tree.field(None)
    K, dd = api.field_size(f)
    steps = 1000
    assert steps * api._table_bytes_per_step(sampler, K, dd) > 0.8 * 64 * 2**20
    x0 = np.random.default_rng(0).standard_normal((8, 2))
    monkeypatch.setenv("REFCFG_MEMORY_LIMIT", "64M")
    seg = api._segment_steps(
        api.sample_memory(8, 2, steps, sampler, K=K, dd=dd, backend="cpu"), steps, sampler, K, dd
    )
    assert seg is not None and seg < steps
    a = refcfg.sample(f, 8, sampler, steps=steps, x_init=x0, backend="cpu")
    monkeypatch.delenv("REFCFG_MEMORY_LIMIT")
    b = refcfg.sample(f, 8, sampler, steps=steps, x_init=x0, backend="cpu")  # whole
    assert np.array_equal(a, b)
