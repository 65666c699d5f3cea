"""Concurrent callers of the Numba kernels (``refcfg._threads.parallel_region``): four Python
threads sampling and evaluating at once, under each threading layer numba can load here
(workqueue always; omp and tbb where their libraries are present), give the same bits as one
thread calling in turn, and never take the process down (workqueue alone aborts with SIGABRT
when two threads enter a parallel region together; the guard serialises it)."""

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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
    layer = numba.threading_layer()
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
            assert np.array_equal(out[i][0], serial[i][0]), (layer, rep, i)
            assert np.array_equal(out[i][1], serial[i][1]), (layer, rep, i)
    print("LAYER", layer)
""")


def _loads(layer: str) -> bool:
    if layer == "workqueue":
        return True
    try:
        importlib.import_module(f"numba.np.ufunc.{layer}pool")
    except (ImportError, OSError):
        return False
    return True


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["workqueue", "omp", "tbb"])
def test_four_threads_under_each_layer_equal_serial(layer):
    if not _loads(layer):
        pytest.skip(f"numba's {layer} threading layer cannot load here")
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer, NUMBA_NUM_THREADS="2",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                          timeout=600, cwd=ROOT)
    assert proc.returncode == 0, (proc.returncode, proc.stderr[-2000:])
    assert f"LAYER {layer}" in proc.stdout


def test_parallel_region_is_reentrant_and_learns_the_layer():
    import threading

    import numba
    import numpy as np

    import refcfg
    from refcfg import _threads
    from refcfg.sampling import cpu

    path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    cpu.velocity(path.field(0), np.zeros((4, 2)), 0.5)          # a parallel region has run
    assert _threads._layer_safe is (numba.threading_layer() in _threads.THREADSAFE_LAYERS)

    done = []

    def nested():
        _threads._layer_safe = None       # as before the first call: the lock is taken
        with _threads.parallel_region():
            with _threads.parallel_region():     # a kernel inside another's guard, one thread
                done.append(True)

    th = threading.Thread(target=nested, daemon=True)
    th.start()
    th.join(timeout=30)
    assert done == [True], "nested parallel_region blocked (the lock must be reentrant)"
    # the guard learnt the layer again on its way out
    assert _threads._layer_safe is (numba.threading_layer() in _threads.THREADSAFE_LAYERS)
