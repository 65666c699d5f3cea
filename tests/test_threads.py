"""Concurrent callers of the CPU kernels: four Python threads sampling and evaluating at once give
the same bits as one thread calling in turn, and never take the process down. The kernels are
``nogil`` functions run on refcfg's own thread pool, not Numba ``parallel=True`` loops; the test pins
``NUMBA_THREADING_LAYER=workqueue``, the layer that aborts the process (SIGABRT) when two threads
enter a Numba parallel region together, and checks that no kernel is compiled as one."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import threading
    import numpy as np
    import numba
    import refcfg
    from refcfg.sampling import cpu

    path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    x = np.random.default_rng(5).standard_normal((3000, 2))

    def job(i):
        # sampling (integrate_blk) and field evaluation at per-point times (eval_blk)
        s = refcfg.sample(path, 1500, "heun", steps=12, seed=i, y=i % 2, w=2.0, backend="cpu")
        v = cpu.velocity(refcfg.CFGField(path, i % 2, 1.5 + i), x, np.linspace(0, 1, 3000))
        return s, v

    serial = [job(i) for i in range(4)]
    for rep in range(3):
        out = [None] * 4
        def run(i):
            out[i] = job(i)
        ts = [threading.Thread(target=run, args=(i,)) for i in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for i in range(4):
            assert np.array_equal(out[i][0], serial[i][0]), (rep, i)
            assert np.array_equal(out[i][1], serial[i][1]), (rep, i)
    from refcfg.sampling import _cpu_kernels
    kernels = [f for f in vars(_cpu_kernels).values() if isinstance(f, numba.core.dispatcher.Dispatcher)]
    print("KERNELS", len(kernels), "PARALLEL", sum(bool(f.targetoptions.get("parallel")) for f in kernels))
""")


def test_four_threads_equal_serial_and_no_kernel_is_a_numba_parallel_loop():
    env = dict(
        os.environ,
        NUMBA_THREADING_LAYER="workqueue",
        NUMBA_NUM_THREADS="2",
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    kernels, parallel = re.search(r"KERNELS (\d+) PARALLEL (\d+)", proc.stdout).groups()
    assert int(kernels) >= 3 and int(parallel) == 0, proc.stdout
