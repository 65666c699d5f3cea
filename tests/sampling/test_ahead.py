"""``compile_ahead``: a child process compiles a job's CPU kernels into numba's cache, which the job
then loads (no compile, the same bits); its arguments, the cases where it starts no child, and
stopping a child. The compiling test runs in fresh processes with empty cache directories (slow);
the others start at most a child that is stopped at once."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import refcfg
from refcfg.sampling import ahead
from refcfg.sampling.ahead import compile_ahead

# One process with an empty NUMBA_CACHE_DIR. mode "ahead": a child compiles the job's kernels
# first; mode "failed": the child is given a field whose schedule it cannot rebuild (callables of
# this script's __main__), so it fails and the job compiles by itself. Either way the job runs
# with the compile announcement captured and its samples are saved.
_RUN = """
import io, json, logging, sys
import numpy as np, refcfg
from refcfg.sampling import ahead, cpu

mode, out = sys.argv[1], sys.argv[2]
ahead.usable_cpus = lambda: 2  # the test is about the cache, not the CPU policy

def alpha(t):
    return t

def beta(t):
    return 1.0 - t

def dalpha(t):
    return np.ones_like(t)

def dbeta(t):
    return -np.ones_like(t)

warnings = []
class Keep(logging.Handler):
    def emit(self, record):
        if record.name == "refcfg":  # not the compile announcement (refcfg.sampling.compile)
            warnings.append(record.getMessage())
logging.getLogger("refcfg").addHandler(Keep())

path = refcfg.GMMPath(refcfg.problem("two-class-2d"))
field = path.cfg(0, 3.0)
if mode == "ahead":
    to_child = field
else:
    custom = refcfg.GMMPath(refcfg.problem("two-class-2d"), refcfg.custom_schedule(alpha, beta, dalpha, dbeta))
    to_child = custom.cfg(0, 3.0)
a = ahead.compile_ahead(to_child, "heun", n=300)
ok = a.wait(600)
buf = io.StringIO()
with cpu.announce_compiles(buf):
    x = refcfg.sample(field, 300, "heun", steps=20, seed=11, backend="cpu")
from refcfg.sampling import _cpu_kernels as kk
st = kk.integrate_blk.stats
np.save(out, x)
print(json.dumps({"started": a.started, "waited": ok, "announced": buf.getvalue(),
                  "hits": sum(st.cache_hits.values()), "misses": sum(st.cache_misses.values()),
                  "warnings": warnings}))
"""


def _run(mode, tmp_path):
    cache = tmp_path / f"cache-{mode}"
    cache.mkdir()
    out = tmp_path / f"{mode}.npy"
    r = subprocess.run(
        [sys.executable, "-c", _RUN, mode, str(out)],
        env=dict(os.environ, NUMBA_CACHE_DIR=str(cache)),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1]), np.load(out)


@pytest.mark.slow  # two cold compiles (about 15 s of CPU each on 2 cores) and one child compile
def test_child_compiles_into_the_shared_cache_and_results_are_the_same_bits(tmp_path):
    done, x_ahead = _run("ahead", tmp_path)
    assert done["started"] and done["waited"] is True, done
    # the job loaded its kernel from the cache the child wrote: nothing to announce, no compile
    assert done["announced"] == "", done
    assert done["hits"] >= 1 and done["misses"] == 0, done
    assert done["warnings"] == [], done

    failed, x_self = _run("failed", tmp_path)
    assert failed["started"] and failed["waited"] is False, failed
    # the warning says so and repeats the child's error; the job then compiles and announces it
    (warning,) = failed["warnings"]
    assert "failed" in warning and "AttributeError" in warning, warning
    assert failed["announced"].startswith("compiling the sampling kernels once"), failed
    assert failed["hits"] == 0 and failed["misses"] >= 1, failed

    assert x_ahead.shape == (300, 2)
    assert np.array_equal(x_ahead, x_self)  # compiled here or loaded from the child's cache


# --- fast: arguments, the cases without a child, stopping a child -----------------------------


@pytest.fixture
def cfg():
    return refcfg.GMMPath(refcfg.problem("two-class-2d")).cfg(0, 3.0)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"steps": 10}, ValueError, "steps"),
        ({"seed": 1}, ValueError, "seed"),
        ({"backend": "cpu"}, ValueError, "backend"),
        ({"sampler": "leapfrog"}, ValueError, "sampler must be one of"),
        ({"n": 0}, ValueError, "n must be a positive int"),
        ({"n": 2.5}, TypeError, "n must be a positive int"),
        ({"sampler": "euler_maruyama"}, ValueError, "sigma is required"),
        ({"sigma": 1.0}, ValueError, "sigma is only used"),
        ({"return_trajectory": True, "trajectory_every": 0}, ValueError, "trajectory_every"),
        ({"t_start": 2.0}, ValueError, "t_start"),
        ({"y": 5}, ValueError, "y must be in"),
    ],
)
def test_bad_arguments_are_refused_before_anything_starts(cfg, kwargs, exc, match, monkeypatch):
    started = []
    monkeypatch.setattr(ahead.subprocess, "Popen", lambda *a, **k: started.append(a))
    with pytest.raises(exc, match=match):
        compile_ahead(cfg, **kwargs)
    assert started == []


def test_not_a_field_is_a_type_error():
    with pytest.raises(TypeError, match="velocity"):
        compile_ahead(object())


class _Learned:
    """A field that does not lower (no exact terms)."""

    d = 2

    def velocity(self, x, t):
        return -x


def test_bad_arguments_with_a_field_that_does_not_lower_are_refused_too():
    with pytest.raises(ValueError, match="sigma is only used"):
        compile_ahead(_Learned(), sigma=1.0)


def test_no_child_for_a_field_that_does_not_lower():
    a = compile_ahead(_Learned())
    assert not a.started and a.pid is None and a.done
    assert "does not lower" in a.reason
    assert a.wait() is False
    a.close()  # nothing to stop


def test_no_child_for_a_field_that_does_not_pickle():
    custom = refcfg.custom_schedule(
        lambda t: t, lambda t: 1.0 - t, lambda t: np.ones_like(t), lambda t: -np.ones_like(t)
    )
    field = refcfg.GMMPath(refcfg.problem("two-class-2d"), custom).cfg(0, 3.0)
    a = compile_ahead(field)
    assert not a.started and "cannot be pickled" in a.reason and "lambda" in a.reason


def test_no_child_with_one_usable_cpu(cfg, monkeypatch):
    monkeypatch.setattr(ahead, "usable_cpus", lambda: 1)
    a = compile_ahead(cfg)
    assert not a.started and "1 usable CPU" in a.reason


def test_usable_cpus_counts_the_affinity_mask():
    n = ahead.usable_cpus()
    assert isinstance(n, int) and 1 <= n <= (os.cpu_count() or n)
    if hasattr(os, "sched_getaffinity"):
        assert n == len(os.sched_getaffinity(0))


def test_child_environment_shares_the_cache_and_this_package(monkeypatch, tmp_path):
    import numba.core.config

    monkeypatch.setattr(numba.core.config, "CACHE_DIR", str(tmp_path))
    env = ahead._child_env()
    assert env["NUMBA_CACHE_DIR"] == str(tmp_path)
    assert env["NUMBA_NUM_THREADS"] == "1"
    root = os.path.dirname(os.path.dirname(os.path.abspath(refcfg.__file__)))
    assert env["PYTHONPATH"].split(os.pathsep)[0] == root


def test_close_stops_a_running_child(cfg, monkeypatch, tmp_path):
    monkeypatch.setattr(ahead, "usable_cpus", lambda: 2)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))  # nothing written to the shared cache
    import numba.core.config

    monkeypatch.setattr(numba.core.config, "CACHE_DIR", str(tmp_path))
    with compile_ahead(cfg, n=10) as a:
        assert a.started and not a.done and a in ahead._LIVE
        files = a._files
        assert all(os.path.exists(f) for f in files)
    # the with block closed it: terminated (it was importing), waited for, its files removed
    assert a.done and a._proc.returncode != 0
    assert a not in ahead._LIVE and not any(os.path.exists(f) for f in files)
    assert a.wait() is False  # stopped on purpose: False, no warning
    a.close()  # again: nothing to do


def test_wait_with_a_timeout_on_a_running_child(cfg, monkeypatch, tmp_path):
    monkeypatch.setattr(ahead, "usable_cpus", lambda: 2)
    import numba.core.config

    monkeypatch.setattr(numba.core.config, "CACHE_DIR", str(tmp_path))
    a = compile_ahead(cfg, n=10)
    try:
        assert a.wait(timeout=0.01) is False and not a.done  # still starting up
        with pytest.raises(ValueError, match="timeout"):
            a.wait(timeout=-1)
    finally:
        a.close()
    assert a.done


def test_n_must_match_the_fields_per_particle_labels(monkeypatch):
    started = []
    monkeypatch.setattr(ahead.subprocess, "Popen", lambda *a, **k: started.append(a))
    field = refcfg.GMMPath(refcfg.problem("two-class-2d")).cfg(np.array([0, 1, 0]), 3.0)
    with pytest.raises(ValueError, match=r"per-particle labels or weights \(3\), got 5"):
        compile_ahead(field, n=5)
    assert started == []


def test_no_child_when_its_files_cannot_be_written(cfg, monkeypatch, tmp_path):
    """A full or unwritable temporary directory is a reason not to start, not an error."""
    monkeypatch.setattr(ahead, "usable_cpus", lambda: 2)
    made = []

    def mkstemp(prefix="", suffix=""):
        if made:  # the second file cannot be made: the first is removed again
            raise OSError(28, "No space left on device")
        path = tmp_path / f"{prefix}0{suffix}"
        made.append(path)
        return os.open(path, os.O_CREAT | os.O_WRONLY), str(path)

    monkeypatch.setattr(ahead.tempfile, "mkstemp", mkstemp)
    a = compile_ahead(cfg)
    assert not a.started and "could not be started" in a.reason and "No space" in a.reason
    assert made and not made[0].exists()
