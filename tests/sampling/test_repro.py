"""Reproducibility (seed, thread count, kernels compiled or loaded from numba's cache) and lazy
compilation (no kernel at ``import refcfg``)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import refcfg

pytestmark = pytest.mark.slow  # subprocess runs (one compile or cache load each)

_RUN = """
import hashlib, json, numba, numpy as np, refcfg
p = refcfg.GMMPath(refcfg.problem("two-class-2d"))
y = np.arange(300) % 2
out = {"threads": numba.get_num_threads()}
for sampler, sigma in (("heun", None), ("euler_maruyama", "ddpm"), ("euler_maruyama", 0.7)):
    x = refcfg.sample(p, 300, sampler, steps=20, seed=5, sigma=sigma, y=y, w=2.5, backend="cpu")
    out[f"{sampler}-{sigma}"] = hashlib.sha256(x.tobytes()).hexdigest()
print(json.dumps(out))
"""


def _run(threads):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
    r = subprocess.run(
        [sys.executable, "-c", _RUN],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_same_bits_for_one_and_two_threads():
    one, two = _run(1), _run(2)
    assert one.pop("threads") == 1 and two.pop("threads") == 2
    assert one == two


def test_seed_reproducible_and_distinct():
    p = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    kw = dict(sampler="euler_maruyama", steps=10, sigma=1.0, y=0, w=2.0, backend="cpu")
    a = refcfg.sample(p, 200, seed=1, **kw)
    assert np.array_equal(a, refcfg.sample(p, 200, seed=1, **kw))
    assert not np.any(a == refcfg.sample(p, 200, seed=2, **kw))
    g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
    assert np.array_equal(refcfg.sample(p, 50, seed=g1, **kw), refcfg.sample(p, 50, seed=g2, **kw))


def test_import_refcfg_compiles_nothing():
    code = (
        "import sys, refcfg, refcfg.sampling, refcfg.sampling.likelihood, "
        "refcfg.sampling.cpu; print(sorted(m for m in sys.modules if m.startswith('numba') "
        "or m.endswith('_cpu_kernels') or m.endswith('_cpu_math')))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]", r.stdout


_KERNELS = """
import hashlib, json, numpy as np, refcfg
from refcfg.sampling import _cpu_kernels as kk, cpu
out = {}
rng = np.random.default_rng(3)
def h(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
# every kernel specialisation (one time / per-particle times, with and without the divergence,
# the fused loop with and without noise, the likelihood) and the forms the data choose at run
# time: isotropic split and direct rows, full covariances in one tile and in several (M form and
# coordinates again)
for name, n in (("two-class-2d", 300), ("mit-symmetric", 300), ("highdim", 200)):
    p = refcfg.GMMPath(refcfg.problem(name))
    x = 2.0 * rng.standard_normal((n, p.d))
    f = refcfg.CFGField(p, 0, 2.5)
    t = rng.choice([0.0, 0.3, 0.7, 1.0], n)
    out[f"{name}-v03"] = h(cpu.velocity(f, x, 0.3))
    out[f"{name}-v08"] = h(cpu.velocity(f, x, 0.8))
    out[f"{name}-vt"] = h(cpu.velocity(f, x, t))
    out[f"{name}-s"] = h(cpu.score(f, x, 0.4))
    out[f"{name}-heun"] = h(refcfg.sample(p, n, "heun", steps=4, seed=1, y=0, w=2.5, backend="cpu"))
    out[f"{name}-em"] = h(refcfg.sample(p, n, "euler_maruyama", steps=4, sigma=0.5, seed=1, y=0,
                                        w=2.5, backend="cpu"))
    out[f"div:{name}"] = h(cpu.divergence(f, x, 0.6))
    out[f"div:{name}-logdet"] = h(cpu.integrate_logdet(f, x, np.linspace(1.0, 0.0, 5))[1])
tiles = refcfg.GMMPath(refcfg.LabeledGMM([refcfg.GMM(np.full(300, 1 / 300),
                                                     rng.standard_normal((300, 16)),
                                                     np.tile(np.eye(16), (300, 1, 1)) * 0.5)]))
xt = rng.standard_normal((cpu._MFORM_MIN_N + 10, 16))
ft = refcfg.CFGField(tiles, 0, 2.0)
out["tiles-mform"] = h(cpu.velocity(ft, xt, 0.3))
out["tiles-again"] = h(cpu.velocity(ft, xt, rng.choice([0.2, 0.6], len(xt))))
stats = {k: (sum(f.stats.cache_hits.values()), sum(f.stats.cache_misses.values()))
         for k, f in (("eval", kk.eval_blk), ("integrate", kk.integrate_blk))}
print(json.dumps({"hashes": out, "stats": stats}))
"""


@pytest.fixture(scope="module")
def cold_and_cached(tmp_path_factory):
    """The hashes of _KERNELS' results from a process that compiles the kernels and from one that
    loads them from numba's cache (the same cache directory)."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path_factory.mktemp("numba-cache")))
    runs = []
    for _ in range(2):
        r = subprocess.run(
            [sys.executable, "-c", _KERNELS],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=900,
        )
        runs.append(json.loads(r.stdout.strip().splitlines()[-1]))
    cold, cached = runs
    for kernel in ("eval", "integrate"):
        assert cold["stats"][kernel][1] > 0 and cold["stats"][kernel][0] == 0  # compiled
        assert cached["stats"][kernel][0] > 0 and cached["stats"][kernel][1] == 0  # loaded
    return cold["hashes"], cached["hashes"]


def test_same_bits_compiled_or_loaded_from_cache(cold_and_cached):
    # numba compiles the kernels in the first process and loads them from its cache in the
    # second: every result must be the same bits (an inlined helper in pass 1, and fastmath in the
    # divergence, once made them differ in rounding), so that workers agree whatever their cache
    cold, cached = cold_and_cached
    assert len(cold) == 26
    assert cold == cached
