"""Benchmark of ``refcfg sweep``: throughput (cells per second) with 1 and 2 Dask workers, and the
overhead per cell against calling the cell function directly.

Two specs on two-class-2d with plain CFG at 6 weights and Heun (``CASES``): "work", cells dominated
by their own work (n = 2000, 20 steps, energy distances, confidence, log-likelihood), and "tiny",
cells so small (n = 200, 4 steps, confidence only) that the sweep's own cost per cell shows. Each is run

1. directly: ``refcfg.sweep.run_cell(evaluate, cell)`` for every cell in this process (the work),
   once before and once after the other runs (the faster pass is the reference: the machine's
   load varies);
2. in this process through ``refcfg.sweep.run(..., workers=0)`` (adds the per-cell files and the table);
3. on a LocalCluster of 1 and of 2 worker processes (one thread each), already started and warmed up
   (cluster start-up is timed separately), through ``run(..., scheduler=address)``.

overhead per cell = (wall time of the sweep - sum of the direct cell times) / cells; with 2 workers
the direct time is divided by 2 (ideal speed-up) before subtracting. The machine's load average is
printed with the numbers. Every run's table is checked identical to the in-process one.

    python verification/bench_sweep.py [--case work|tiny|all]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from pathlib import Path


def _spec(n, steps, seeds, metrics):
    return {
        "name": "bench",
        "seed": 0,
        "seeds": seeds,
        "axes": {
            "problem": ["two-class-2d"],
            "rule": ["cfg"],
            "w": [1.0, 1.5, 2.0, 3.0, 4.0, 6.0],
            "sampler": ["heun"],
            "steps": [steps],
            "n": [n],
        },
        "metrics": {"names": list(metrics), "ed_max_n": 2000},
    }


CASES = {
    # cells dominated by their work (energy distances at n = 2000 are most of it)
    "work": dict(
        n=2000, steps=20, seeds=4, metrics=("ed_cond", "ed_tilted", "confidence", "loglik", "time")
    ),
    # tiny cells: the time is mostly the sweep machinery's own cost per cell
    "tiny": dict(n=200, steps=4, seeds=8, metrics=("confidence",)),
}


def bench(case: str) -> str:
    """Run one case (``CASES``) and return its Markdown table."""
    from distributed import LocalCluster

    from refcfg.sweep import evaluate, load_spec, read_table, run, run_cell
    from refcfg.sweep.spec import TIMING_COLUMNS

    c = CASES[case]
    load0 = os.getloadavg()
    spec = load_spec(_spec(c["n"], c["steps"], c["seeds"], c["metrics"]))
    cells = spec.cells()
    warm = load_spec(_spec(c["n"], c["steps"], 1, c["metrics"]) | {"seed": 1})
    run_cell(evaluate, cells[0])  # compile / load the kernels once

    def direct_pass():
        t0 = time.perf_counter()
        for cell in cells:
            run_cell(evaluate, cell)
        return time.perf_counter() - t0

    direct_before = direct_pass()

    def stable(t):
        return t.drop_columns([k for k in TIMING_COLUMNS if k in t.column_names])

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        run(spec, tmp / "local", workers=0, progress=False)
        rows.append(("run(workers=0): this process, with files", time.perf_counter() - t0, None))
        ref = stable(read_table(tmp / "local"))
        for k in (1, 2):
            t0 = time.perf_counter()
            with LocalCluster(
                n_workers=k,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            ) as cluster:
                start = time.perf_counter() - t0
                run(warm, tmp / f"warm{k}", scheduler=cluster.scheduler_address, progress=False)
                t0 = time.perf_counter()
                run(spec, tmp / f"c{k}", scheduler=cluster.scheduler_address, progress=False)
                wall = time.perf_counter() - t0
            assert stable(read_table(tmp / f"c{k}")).equals(ref), "table differs from one process"
            rows.append(
                (
                    f"LocalCluster, {k} worker{'s' if k > 1 else ''} (start-up {start:.1f} s)",
                    wall,
                    k,
                )
            )

    direct_after = direct_pass()
    direct = min(direct_before, direct_after)
    rows.insert(0, ("direct (cell function in this process, best of 2 passes)", direct, None))
    nc = len(cells)
    load1 = os.getloadavg()
    lines = [
        f"## {case}: {nc} cells (two-class-2d, cfg at 6 w, heun {c['steps']} steps, "
        f"n = {c['n']}, metrics {', '.join(c['metrics'])})",
        "",
        f"{os.cpu_count()} cores; 1-min load average {load0[0]:.2f} before, {load1[0]:.2f} "
        f"after (5-min {load1[1]:.2f})",
        "",
        "| run | wall (s) | cells/s | overhead per cell (ms) |",
        "|---|---:|---:|---:|",
    ]
    for name, wall, k in rows:
        ideal = direct / (k or 1)
        over = "-" if name.startswith("direct") else f"{1e3 * (wall - ideal) / nc:.1f}"
        lines.append(f"| {name} | {wall:.2f} | {nc / wall:.2f} | {over} |")
    lines += [
        "",
        f"direct passes: {direct_before:.2f} s before, {direct_after:.2f} s after the "
        f"cluster runs ({1e3 * direct / nc:.1f} ms per cell); every table identical to the "
        f"in-process one",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=[*CASES, "all"], default="all")
    args = ap.parse_args(argv)
    for case in CASES if args.case == "all" else [args.case]:
        print(bench(case), flush=True)


if __name__ == "__main__":
    main()
