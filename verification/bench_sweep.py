"""Benchmark of ``refcfg sweep``: throughput (cells per second) with 1 and 2 Dask workers, and the
overhead per cell against calling the cell function directly.

One spec (two-class-2d, plain CFG at 6 weights, Heun, ``--steps`` steps, ``--n`` samples, ``--seeds``
seeds; energy distances, confidence, log-likelihood) is run

1. directly: ``refcfg.sweep.run_cell(evaluate, cell)`` for every cell in this process (the work),
   once before and once after the other runs (the faster pass is the reference: the machine's
   load varies);
2. in this process through ``refcfg.sweep.run(..., workers=0)`` (adds the per-cell files and the table);
3. on a LocalCluster of 1 and of 2 worker processes (one thread each), already started and warmed up
   (cluster start-up is timed separately), through ``run(..., scheduler=address)``.

overhead per cell = (wall time of the sweep - sum of the direct cell times) / cells; with 2 workers
the direct time is divided by 2 (ideal speed-up) before subtracting. The machine's load average is
printed with the numbers. Every run's table is checked identical to the in-process one.

    python verification/bench_sweep.py [--n 2000] [--steps 20] [--seeds 4]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path


def _spec(n, steps, seeds):
    return {"name": "bench", "seed": 0, "seeds": seeds,
            "axes": {"problem": ["two-class-2d"], "rule": ["cfg"],
                     "w": [1.0, 1.5, 2.0, 3.0, 4.0, 6.0], "sampler": ["heun"], "steps": [steps],
                     "n": [n]},
            "metrics": {"names": ["ed_cond", "ed_tilted", "confidence", "loglik", "time"],
                        "ed_max_n": 2000}}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=4)
    args = ap.parse_args(argv)

    from distributed import LocalCluster

    from refcfg.sweep import evaluate, load_spec, read_table, run, run_cell
    from refcfg.sweep.spec import TIMING_COLUMNS

    load0 = os.getloadavg()
    spec = load_spec(_spec(args.n, args.steps, args.seeds))
    cells = spec.cells()
    warm = load_spec(_spec(args.n, args.steps, 1) | {"seed": 1})
    run_cell(evaluate, cells[0])                       # compile / load the kernels once

    def direct_pass():
        t0 = time.perf_counter()
        for c in cells:
            run_cell(evaluate, c)
        return time.perf_counter() - t0

    direct_before = direct_pass()

    def stable(t):
        return t.drop_columns(list(TIMING_COLUMNS))

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        run(spec, tmp / "local", workers=0, progress=False)
        rows.append(("run(workers=0): this process, with files", time.perf_counter() - t0, None))
        ref = stable(read_table(tmp / "local"))
        for k in (1, 2):
            t0 = time.perf_counter()
            with LocalCluster(n_workers=k, threads_per_worker=1, processes=True,
                              dashboard_address=None, silence_logs=logging.ERROR) as cluster:
                start = time.perf_counter() - t0
                run(warm, tmp / f"warm{k}", scheduler=cluster.scheduler_address, progress=False)
                t0 = time.perf_counter()
                run(spec, tmp / f"c{k}", scheduler=cluster.scheduler_address, progress=False)
                wall = time.perf_counter() - t0
            assert stable(read_table(tmp / f"c{k}")).equals(ref), "table differs from one process"
            rows.append((f"LocalCluster, {k} worker{'s' if k > 1 else ''} (start-up {start:.1f} s)",
                         wall, k))

    direct_after = direct_pass()
    direct = min(direct_before, direct_after)
    rows.insert(0, ("direct (cell function in this process, best of 2 passes)", direct, None))
    nc = len(cells)
    load1 = os.getloadavg()
    print(f"# refcfg sweep benchmark: {nc} cells (two-class-2d, cfg, heun {args.steps} steps, "
          f"n = {args.n}), {os.cpu_count()} cores, 1-min load average {load0[0]:.2f} before, "
          f"{load1[0]:.2f} after (5-min {load1[1]:.2f})\n")
    print("| run | wall (s) | cells/s | overhead per cell (ms) |")
    print("|---|---:|---:|---:|")
    for name, wall, k in rows:
        ideal = direct / (k or 1)
        over = "-" if name.startswith("direct") else f"{1e3 * (wall - ideal) / nc:.1f}"
        print(f"| {name} | {wall:.2f} | {nc / wall:.2f} | {over} |")
    print(f"\ndirect passes: {direct_before:.2f} s before, {direct_after:.2f} s after the cluster runs "
          f"({1e3 * direct / nc:.1f} ms per cell); every table identical to the in-process one")


if __name__ == "__main__":
    main()
