"""Benchmark of the fused Numba CPU kernels against the vectorised NumPy core (run by hand).

    .venv/bin/python verification/bench_sampling.py [--quick] [--repeat R]

Measures, in one process (so that machine load affects both sides alike):
1. exact CFG velocity evaluation, ns per particle-component (K = all components of the mixture):
   the fused kernel (``refcfg.sampling.cpu.velocity``) vs ``GMMPath.cfg_velocity`` at
   (N = 2e5, K = 8, d = 2, isotropic) and (N = 2e5, K = 64, d = 16, full covariances); ratio.
   The NumPy side at the second shape is timed on N = 2e4 (it is ~1 us per particle-component);
   the per-particle-component figure does not depend on N there (chunked, memory-bound).
2. end-to-end CFG sampling (w = 3, y = 0) of 1e6 particles x 100 Heun steps on two-class-2d:
   seconds and particle-steps per second (one Heun step = 2 field evaluations).
3. compile time of the first call: cold (fresh cache directory, NUMBA_CACHE_DIR) and cached, measured
   in subprocesses.
4. the exponential: ns per call of ``exp_fast`` in a vectorised loop vs numpy's exp (in cache).
Best of R repeats (default 3). Results vary with machine load; report the ratios.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def best(fn, repeat):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def mixture(K, d, full, seed=0):
    import refcfg

    rng = np.random.default_rng(seed)
    classes = []
    for _ in range(2):
        k = K // 2
        means = 3.0 * rng.standard_normal((k, d))
        if full:
            A = rng.standard_normal((k, d, d))
            covs = A @ np.swapaxes(A, 1, 2) / d + 0.3 * np.eye(d)
        else:
            covs = rng.uniform(0.2, 1.0, k)
        classes.append(refcfg.GMM(np.full(k, 1.0 / k), means, covs))
    return refcfg.GMMPath(refcfg.LabeledGMM(classes, [0.5, 0.5]))


def bench_eval(repeat, quick):
    import refcfg
    from refcfg.sampling import cpu

    rows = []
    for K, d, full, n_np in [(8, 2, False, 200_000), (64, 16, True, 20_000)]:
        N = 200_000 if not quick else 20_000
        n_np = min(n_np, N)
        path = mixture(K, d, full)
        f = refcfg.CFGField(path, 0, 3.0)
        x = 2.0 * np.random.default_rng(1).standard_normal((N, d))
        cpu.velocity(f, x[:10], 0.5)  # compile / load
        err = np.abs(
            cpu.velocity(f, x[:2000], 0.5) - path.cfg_velocity(x[:2000], 0.5, 0, 3.0)
        ).max()
        t_k = best(lambda: cpu.velocity(f, x, 0.5), repeat) / (N * K) * 1e9
        t_n = best(lambda: path.cfg_velocity(x[:n_np], 0.5, 0, 3.0), repeat) / (n_np * K) * 1e9
        rows.append((K, d, "full" if full else "isotropic", t_k, t_n, t_n / t_k, err))
    print(f"CFG velocity, ns per particle-component (best of {repeat})")
    print(f"{'K':>4} {'d':>3} {'cov':>9} {'fused':>9} {'numpy':>9} {'ratio':>7} {'max|diff|':>10}")
    for K, d, c, tk, tn, r, e in rows:
        print(f"{K:>4} {d:>3} {c:>9} {tk:>9.2f} {tn:>9.2f} {r:>7.1f} {e:>10.1e}")
    return rows


def bench_e2e(repeat, quick):
    import refcfg

    path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    n = 1_000_000 if not quick else 100_000
    steps = 100
    refcfg.sample(path, 10, "heun", steps=2, seed=0, y=0, w=3.0, backend="cpu")
    t = best(
        lambda: refcfg.sample(path, n, "heun", steps=steps, seed=0, y=0, w=3.0, backend="cpu"),
        max(1, repeat - 1),
    )
    n_np = 20_000
    t_np = (
        best(
            lambda: refcfg.sample(
                path, n_np, "heun", steps=steps, seed=0, y=0, w=3.0, backend="numpy"
            ),
            1,
        )
        * n
        / n_np
    )
    print(
        f"\nend-to-end CFG sampling (two-class-2d, K = {path.mixture.marginal.K}, w = 3), "
        f"{n:.0e} particles x {steps} Heun steps:"
    )
    print(f"  fused cpu: {t:.2f} s = {n * steps / t:.3g} particle-steps/s")
    print(f"  numpy (timed on {n_np} particles, scaled): {t_np:.1f} s; ratio {t_np / t:.1f}")
    return t


_COMPILE_SNIPPET = """
import time, numpy as np
t0 = time.perf_counter()
import refcfg
from refcfg.sampling import cpu
t1 = time.perf_counter()
p = refcfg.GMMPath(refcfg.problem("two-class-2d"))
refcfg.sample(p, 10, "heun", steps=2, seed=0, y=0, w=3.0, backend="cpu")
t2 = time.perf_counter()
cpu.velocity(refcfg.CFGField(p, 0, 3.0), np.zeros((4, 2)), 0.5)
t3 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f}")
"""


def bench_compile():
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        env["NUMBA_CACHE_DIR"] = tmp
        out = []
        for _ in range(2):
            r = subprocess.run(
                [sys.executable, "-c", _COMPILE_SNIPPET],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            out.append([float(v) for v in r.stdout.split()])
    (imp0, s0, v0), (imp1, s1, v1) = out
    print("\nfirst call (subprocess; import refcfg, then the first sample / velocity call):")
    print(
        f"  cold cache: import {imp0:.2f} s, sample (integrate kernel) {s0:.2f} s, "
        f"velocity (eval kernel) {v0:.2f} s"
    )
    print(f"  cached:     import {imp1:.2f} s, sample {s1:.2f} s, velocity {v1:.2f} s")


def bench_exp(repeat):
    from refcfg.sampling._cpu_math import exp_fast_array

    x = np.random.default_rng(0).uniform(-30, 0, 4096)
    o = np.empty_like(x)
    exp_fast_array(x, o)

    def loop_fast():
        for _ in range(500):
            exp_fast_array(x, o)

    def loop_np():
        for _ in range(500):
            np.exp(x, out=o)

    tf = best(loop_fast, repeat) / (500 * 4096) * 1e9
    tn = best(loop_np, repeat) / (500 * 4096) * 1e9
    print(f"\nexp, one thread, in cache: exp_fast {tf:.2f} ns, numpy {tn:.2f} ns per call")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10x fewer particles")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-compile", action="store_true", help="skip the compile-time subprocesses")
    a = ap.parse_args(argv)
    import numba

    print(
        f"numba {numba.__version__}, threads {numba.get_num_threads()}, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    bench_eval(a.repeat, a.quick)
    bench_e2e(a.repeat, a.quick)
    bench_exp(a.repeat)
    if not a.no_compile:
        bench_compile()


if __name__ == "__main__":
    main()
