"""The CPU kernels' cold start: the compile announcement (a log record from ``refcfg.sample``, one
printed line from the command line), its absence once numba's cache holds the kernels, the
mode-specialised compile (an isotropic field compiles no full-covariance code), and the thread
pool's results not depending on the thread count."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import refcfg
from refcfg.sampling import cpu

_COLD = """
import json, logging, sys, numpy as np, refcfg
from refcfg.sampling import cpu, _cpu_kernels as kk
records = []
class H(logging.Handler):
    def emit(self, record):
        records.append(record.getMessage())
log = logging.getLogger("refcfg.sampling.compile")
log.addHandler(H())
log.setLevel(logging.INFO)
p = refcfg.GMMPath(refcfg.problem("mit-symmetric"))
x = refcfg.sample(p, 64, "euler", steps=2, seed=1, y=0, w=2.0, backend="cpu")
dv = cpu.divergence(refcfg.CFGField(p, 0, 2.0), x, 0.5)
# which of the divergence's pass-2 functions numba compiled in this process
seen = sorted(n for n in ("_blk_pass2_eig_c", "_blk_pass2_direct_c") if getattr(kk, n).signatures)
ok = bool(np.isfinite(x).all() and np.isfinite(dv).all())
print(json.dumps({"records": records, "finite": ok, "seen": seen}))
"""


def _run(code, cache, *args):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )


def test_compile_message_names_the_estimate():
    msg = cpu.compile_message(12.4)
    assert msg == (
        "compiling the sampling kernels once for this machine, ~12 s; later runs load "
        "them from the cache"
    )


@pytest.mark.slow  # one cold compile (fresh numba cache) and one cache load, in subprocesses
def test_compile_is_logged_not_printed_then_cached(tmp_path):
    cold = _run(_COLD, tmp_path)
    out = json.loads(cold.stdout.strip().splitlines()[-1])
    assert out["finite"]
    # one record per kernel, before it compiled; nothing printed
    assert out["records"] == [
        cpu.compile_message(cpu.COMPILE_SECONDS["integrate_blk"]),
        cpu.compile_message(cpu.COMPILE_SECONDS["eval_blk"]),
    ]
    assert "compiling" not in cold.stderr and len(cold.stdout.strip().splitlines()) == 1
    # an isotropic field: the full-covariance pass of the divergence is not compiled
    assert out["seen"] == ["_blk_pass2_direct_c"]
    warm = _run(_COLD, tmp_path)
    assert json.loads(warm.stdout.strip().splitlines()[-1])["records"] == []  # loaded, silent


@pytest.mark.slow  # a cold compile of the score kernel
def test_announcement_prints_once_per_compile_inside_its_block(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    code = (
        "import sys, numpy as np, refcfg\n"
        "from refcfg.sampling import cpu\n"
        "p = refcfg.GMMPath(refcfg.problem('gauss-1d'))\n"
        "f = refcfg.CFGField(p, 0, 2.0)\n"
        "with cpu.announce_compiles():\n"
        "    for _ in range(2):\n"
        "        cpu.score(f, np.zeros((5, 1)), 0.5)\n"
        "cpu.divergence(f, np.zeros((5, 1)), 0.5)\n"
    )  # compiles after the block: silent
    r = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=900,
    )
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("compiling the sampling")]
    assert lines == [cpu.compile_message(cpu.COMPILE_SECONDS["eval_blk"])]


@pytest.mark.slow
def test_results_do_not_depend_on_threads_or_tasks(monkeypatch):
    # the pool splits the blocks into tasks; every particle's arithmetic is its own
    p = refcfg.GMMPath(refcfg.problem("two-class-2d"))
    f = refcfg.CFGField(p, 0, 2.5)
    x = np.random.default_rng(0).standard_normal((700, 2)) * 2.0
    ref = cpu.velocity(f, x, 0.4)
    for threads, per in ((1, 1), (2, 1), (2, 7)):
        monkeypatch.setattr(cpu, "_threads", lambda threads=threads: threads)
        monkeypatch.setattr(cpu, "TASKS_PER_THREAD", per)
        assert np.array_equal(cpu.velocity(f, x, 0.4), ref)
