"""Training speed with the default BLAS threads, one thread, and the automatic choice (run by hand).

    .venv/bin/python verification/bench_training_threads.py [--steps S] [--rounds R]

In ONE process, ``train_cfg`` on two-class-2d is timed in ms per step with ``blas_threads`` =
the default count (fixed), 1, and None (the automatic choice of ``refcfg._threads``: its trial
steps are included), for two network shapes (the defaults, width 64 / batch 512; and a wide one,
width 256 / batch 2048), in two conditions:

- quiet: nothing started by this script (the machine's own load is printed);
- loaded: a background process keeps one core busy (a one-thread NumPy matrix-product loop).

Each round runs the three settings in a rotated order (1000 steps, 166 for the wide network: the
automatic choice's trial steps weigh as in a real run of a few thousand steps); the figure per
setting is the mean over rounds (default 2) of seconds / steps, i.e. what a user pays. Prints
ratio = automatic / best of (default, 1); the target is <= 1.1. Takes ~4-6 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

BUSY = (
    "import os; os.environ['OPENBLAS_NUM_THREADS'] = '1'\n"
    "import numpy as np\n"
    "a = np.random.default_rng(0).standard_normal((400, 400))\n"
    "while True:\n    a = a @ a; a /= np.abs(a).max()\n"
)

SHAPES = {
    "default (width 64, batch 512)": dict(width=64, batch=512),
    "wide (width 256, batch 2048)": dict(width=256, batch=2048),
}


def default_threads():
    from threadpoolctl import threadpool_info

    return max(
        [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"] or [1]
    )


def measure(shape, steps, rounds, default):
    from refcfg.learn.train import train_cfg

    settings = [("default", default), ("1 thread", 1), ("automatic", None)]
    times = {name: [] for name, _ in settings}
    chosen = []
    train_cfg(steps=5, progress=False, blas_threads=1, **shape)  # imports, first calls
    for r in range(rounds):
        order = settings[r % 3 :] + settings[: r % 3]
        for name, n in order:
            t0 = time.perf_counter()
            res = train_cfg(steps=steps, progress=False, seed=r, blas_threads=n, warmup=20, **shape)
            times[name].append((time.perf_counter() - t0) / steps * 1e3)
            if n is None:
                chosen.append(res.blas["threads"])
    return {k: float(np.mean(v)) for k, v in times.items()}, chosen


def report(label, shape_name, ms, chosen):
    best = min(ms["default"], ms["1 thread"])
    ratio = ms["automatic"] / best
    print(
        f"  {label:>6} | {shape_name:<30} | default {ms['default']:7.2f} | 1 thread "
        f"{ms['1 thread']:7.2f} | automatic {ms['automatic']:7.2f} (chose {chosen}) | "
        f"auto/best {ratio:4.2f} {'ok' if ratio <= 1.1 else 'ABOVE 1.1'}",
        flush=True,
    )
    return ratio


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--steps", type=int, default=1000, help="steps per run (default 1000; wide: / 6)"
    )
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--condition", choices=("quiet", "loaded", "both"), default="both")
    ap.add_argument("--shape", choices=("default", "wide", "both"), default="both")
    a = ap.parse_args(argv)
    import numpy  # noqa: F401  (loads the BLAS that threadpoolctl sees)

    default = default_threads()
    print(
        f"BLAS default threads {default}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()}; ms per step, mean of {a.rounds} rounds",
        flush=True,
    )
    ratios = []
    for label in ("quiet", "loaded"):
        if a.condition not in (label, "both"):
            continue
        busy = None
        if label == "loaded":
            busy = subprocess.Popen([sys.executable, "-c", BUSY])
            time.sleep(1.0)
        try:
            for shape_name, shape in SHAPES.items():
                if a.shape != "both" and not shape_name.startswith(a.shape):
                    continue
                steps = a.steps if shape["width"] == 64 else max(30, a.steps // 6)
                ms, chosen = measure(shape, steps, a.rounds, default)
                ratios.append(report(label, shape_name, ms, chosen))
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
        print(f"  (load average {os.getloadavg()[0]:.2f})", flush=True)
    print(f"worst automatic / best: {max(ratios):.2f} (target <= 1.1)")


if __name__ == "__main__":
    main()
