"""Default CFG training on two-class-2d: time and accuracy check.

Trains ``refcfg.learn.train_cfg`` with its defaults on "two-class-2d", records the learning curve
(conditional-field relative L2 error E|u_theta - u|^2 / E|u|^2 averaged over t in {0.05, 0.10, ...,
0.95}, N = 2000 points per t, seed 123, every ``--eval-every`` steps) and prints the full comparison
report of the final model against the exact fields. Pass criteria: wall time <= ~60 s (2 cores) and
final mean conditional error <= 0.05.

    .venv/bin/python verification/train_two_class.py [--json out.json] [--steps N] [--width W] ...
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from refcfg.learn.compare import compare, field_errors, mean_over
from refcfg.learn.train import DEFAULTS, train_cfg
from refcfg.paths import GMMPath
from refcfg.problems import problem


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for key in ("steps", "batch", "width", "depth", "n_freqs", "warmup"):
        p.add_argument(f"--{key.replace('_', '-')}", type=int, default=None)
    for key in ("lr", "lr_final"):
        p.add_argument(f"--{key.replace('_', '-')}", type=float, default=None)
    p.add_argument("--dtype", default="float64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=1000)
    p.add_argument("--no-samples", action="store_true", help="skip the sample-level comparison")
    p.add_argument("--json", default=None, help="write the curve and report here")
    args = p.parse_args(argv)
    kwargs = {
        k: getattr(args, k)
        for k in ("steps", "batch", "width", "depth", "n_freqs", "warmup", "lr", "lr_final")
        if getattr(args, k) is not None
    }
    path = GMMPath(problem("two-class-2d"), "linear")
    t_eval = np.round(np.arange(0.05, 0.951, 0.05), 10)
    eval_seconds = [0.0, 0.0]  # wall, CPU

    def eval_fn(model):
        start, cpu = time.perf_counter(), time.process_time()
        f = field_errors(path, model, t_grid=t_eval, n=2000, seed=123)
        eval_seconds[0] += time.perf_counter() - start
        eval_seconds[1] += time.process_time() - cpu
        return dict(
            cond_err=mean_over(f["t"], f["conditional"]),
            uncond_err=mean_over(f["t"], f["unconditional"]),
        )

    settings = dict(DEFAULTS, **kwargs)
    print(
        f"settings: {settings}, dtype={args.dtype}, seed={args.seed}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}",
        flush=True,
    )
    load0 = os.getloadavg()
    res = train_cfg(
        "two-class-2d",
        seed=args.seed,
        dtype=args.dtype,
        progress=True,
        eval_fn=eval_fn,
        eval_every=args.eval_every,
        **kwargs,
    )
    train_seconds = res.seconds - eval_seconds[0]
    train_cpu = res.cpu_seconds - eval_seconds[1]
    print(
        f"\ntraining: {res.losses.size} steps in {train_seconds:.1f} s wall, {train_cpu:.1f} s CPU "
        f"(excluding {eval_seconds[0]:.1f} s wall of curve evaluation), "
        f"{1e3 * train_seconds / res.losses.size:.2f} ms/step wall, "
        f"{1e3 * train_cpu / res.losses.size:.2f} ms/step CPU; load average before/after: "
        f"{load0} / {os.getloadavg()}"
    )
    print("curve (step, seconds incl. eval, mean conditional rel. error, mean unconditional):")
    for h in res.history:
        print(
            f"  {h['step']:6d} {h['seconds']:7.1f} s  cond {h['cond_err']:.4f}  "
            f"uncond {h['uncond_err']:.4f}"
        )
    report = compare(
        path,
        res.model,
        ws=(1.0, 3.0),
        n_field=4000,
        n_samples=2000,
        steps=50,
        seed=7,
        samples=not args.no_samples,
    )
    print()
    print(report.to_text())
    final = res.history[-1]["cond_err"]
    # on a machine shared with other jobs wall time measures the load, not the code: the time
    # criterion also accepts the process CPU time (with one BLAS thread CPU time ~ idle wall time)
    ok_time = min(train_seconds, train_cpu) <= 60.0
    ok_err = final <= 0.05
    first = next((h for h in res.history if h["cond_err"] <= 0.05), None)
    if first is not None:
        print(f"first curve point with mean conditional error <= 0.05: step {first['step']}")
    print(
        f"\nCHECK time min(wall {train_seconds:.1f} s, CPU {train_cpu:.1f} s) <= 60 s: "
        f"{'PASS' if ok_time else 'FAIL'}; mean conditional error {final:.4f} "
        f"(sqrt {final**0.5:.4f}) <= 0.05: {'PASS' if ok_err else 'FAIL'}"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                dict(
                    settings=settings,
                    train_seconds=train_seconds,
                    train_cpu_seconds=train_cpu,
                    history=res.history,
                    report=report.to_dict(),
                    losses_every_100=res.losses[::100].tolist(),
                ),
                fh,
                indent=1,
            )
    return 0 if (ok_time and ok_err) else 1


if __name__ == "__main__":
    raise SystemExit(main())
