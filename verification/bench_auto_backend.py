"""Where ``backend="auto"`` should leave the CPU kernels for NumPy: both backends timed on the same
calls across work sizes, in one process (so that the machine's load affects both alike).

For each field kind (covariance type, K, d; Heun, and Euler-Maruyama on the README's problem) and
each size (n particles x steps steps) it times ``refcfg.sample(..., backend="numpy")`` and
``backend="cpu"`` with the kernels already compiled (warm: one untimed call first), the best of
``--repeat`` calls, wall and CPU seconds (CPU: this process, every thread; on a loaded shared
machine the figure to read), and prints the work measure of the auto rule
(``refcfg.sampling.api.auto_work``: steps x stages x (n x K x d + the per-evaluation overhead)),
NumPy's CPU time per unit of work and the backend the rule picks.

What the threshold trades: below it a call never pays the kernels' cold compile (15-20 s of CPU
per covariance type on the 2-core reference machine, ``verification/bench_compile.py``) and, warm,
loses at most the NumPy time minus the kernel time of a call at the threshold (the table's last
columns); above it the kernels' speed wins. ``--budget`` (seconds) prints the largest work whose
NumPy CPU time stays under the budget at every kind, from the slowest kind's time per unit of work
(cells of at least 0.05 s).

Usage:  python verification/bench_auto_backend.py [--repeat R] [--budget S] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sampling import mixture

# (name, maker, sampler, extra keywords): the README's problem (ODE and SDE), an isotropic built-in
# and the roofline's larger shapes
KINDS = (
    ("two-class-2d (K=4 d=2 full)", lambda: _problem("two-class-2d"), "heun", {}),
    ("two-class-2d SDE", lambda: _problem("two-class-2d"), "euler_maruyama", {"sigma": 1.0}),
    ("mit-symmetric (K=5 d=2 iso)", lambda: _problem("mit-symmetric"), "heun", {}),
    ("K=64 d=16 iso", lambda: mixture(64, 16, False), "heun", {}),
    ("K=64 d=16 full", lambda: mixture(64, 16, True), "heun", {}),
)
SIZES = ((100, 20), (300, 20), (1000, 20), (1000, 100), (4000, 100), (10000, 100))
QUICK_SIZES = ((300, 20), (1000, 100))
STOP_NUMPY_S = 1.5  # larger sizes of a kind are skipped once its NumPy CPU time passes this


def best(fn, repeat):
    """(wall, CPU) seconds of the fastest of ``repeat`` calls (CPU: this process, all threads)."""
    out = (np.inf, np.inf)
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        fn()
        out = min(out, (time.perf_counter() - w, time.process_time() - c))
    return out


def _problem(name):
    import refcfg

    return refcfg.GMMPath(refcfg.problem(name), refcfg.schedule("linear"))


def measure(repeat, sizes):
    """Rows (kind, n, steps, work, numpy s, cpu s, picked)."""
    import refcfg
    from refcfg.sampling.api import auto_work, resolve_backend

    rows = []
    for name, make, sampler, kw in KINDS:
        path = make()
        field = path.cfg(0, 3.0)
        refcfg.sample(field, 16, sampler, steps=2, seed=0, backend="cpu", **kw)  # compile or load
        for n, steps in sizes:

            def run(be, field=field, n=n, steps=steps, sampler=sampler, kw=kw):
                return refcfg.sample(field, n, sampler, steps=steps, seed=0, backend=be, **kw)

            t_np, c_np = best(lambda: run("numpy"), repeat)
            t_cpu, c_cpu = best(lambda: run("cpu"), repeat)
            work = auto_work(field, n, steps, sampler)
            picked = resolve_backend("auto", field, work=work)
            rows.append((name, n, steps, work, t_np, c_np, t_cpu, c_cpu, picked))
            print(
                f"{name:28s} n {n:6d} steps {steps:4d} work {work:10.3g}  numpy {t_np:8.4f} s"
                f" (CPU {c_np:8.4f})  kernel {t_cpu:8.4f} s (CPU {c_cpu:8.4f})  numpy ns/work "
                f"{c_np / work * 1e9:6.2f} CPU  auto -> {picked}  "
                f"(load {os.getloadavg()[0]:.2f})",
                flush=True,
            )
            if c_np > STOP_NUMPY_S:
                break
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="calls per cell, best kept (default 3)")
    ap.add_argument("--budget", type=float, default=1.0, help="NumPy seconds allowed (default 1)")
    ap.add_argument("--quick", action="store_true", help="two sizes per kind")
    args = ap.parse_args(argv)
    from refcfg.sampling.api import AUTO_NUMPY_WORK

    print(f"load average at start {os.getloadavg()}, {os.cpu_count()} CPUs", flush=True)
    rows = measure(args.repeat, QUICK_SIZES if args.quick else SIZES)
    print(
        "\n| kind | n | steps | work | NumPy wall s (CPU s) | kernel wall s (CPU s), warm | "
        "NumPy / kernel, wall | NumPy CPU ns per work | auto |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, n, steps, work, t_np, c_np, t_cpu, c_cpu, picked in rows:
        print(
            f"| {name} | {n} | {steps} | {work:.3g} | {t_np:.3f} ({c_np:.3f}) | "
            f"{t_cpu:.4f} ({c_cpu:.4f}) | {t_np / t_cpu:.0f} | {c_np / work * 1e9:.0f} | {picked} |"
        )
    # the slowest kind's NumPy CPU time per unit of work, among cells large enough that per-call
    # overheads do not dominate (>= 0.05 s)
    per = [c_np / work for _, _, _, work, _, c_np, _, _, _ in rows if c_np >= 0.05]
    if per:
        worst = max(per)
        print(
            f"\nslowest NumPy CPU time per unit of work: {worst * 1e9:.2f} ns; work whose NumPy "
            f"CPU time stays under {args.budget:g} s at every kind: {args.budget / worst:.3g} "
            f"(AUTO_NUMPY_WORK = {AUTO_NUMPY_WORK:.3g})"
        )
    print(f"load average at end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
