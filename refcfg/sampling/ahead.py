"""Compile the CPU kernels of a sampling job ahead, in a child process, while this one works on.

The first kernel call of a job on a fresh machine compiles its specialisation (about 15 s of CPU
on a 2-core machine, docs/performance.md, "Cold start"). A program that knows its job in advance
(``refcfg demo``: it trains a network before it samples) can have that compile done meanwhile:
``compile_ahead(field, sampler, n=n)`` starts ``python -m refcfg.sampling.ahead`` on the field,
which runs the same job with one step and min(n, 1024) particles on ``backend="cpu"``. numba
specialises the kernels on the argument types, not on the sizes (the one size that can choose a
kernel: full covariances use the M form from 1024 particles on), so that compiles exactly the
job's specialisations and writes them to numba's cache, which the child shares with this process;
the job's own first call then loads them from the cache instead of compiling.

A process, not a thread: numba's compiler holds the GIL, so a compile in a thread stops every
other Python thread of the process (measured: a training of 4.0 s took 13.0 s with a compile in a
thread beside it). A child process runs on another core: the CPU time is the same compile plus the
child's start-up (~1.5 s, its imports), and the wall time of the compile is hidden where a core is
idle.

Results never depend on it: kernels loaded from the cache and kernels compiled in the process
give the same bits (tests/sampling/test_repro.py). A child that fails costs nothing but the
warning: the job then compiles on its own first call, as without it.
"""

from __future__ import annotations

import atexit
import logging
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

__all__ = ["Ahead", "compile_ahead", "usable_cpus", "OPTIONS"]

OPTIONS = ("sigma", "t_start", "t_end", "return_trajectory", "trajectory_every", "y", "w")
"""The ``refcfg.sample`` options that ``compile_ahead`` takes (the ones that can change which
kernels a job compiles). Sizes (n, steps, t_grid, x_init, noise), the seed and the backend do not
change them and are refused."""

STDERR_LINES = 20
"""Lines of a failed child's stderr that the warning repeats."""

_log = logging.getLogger("refcfg")
_LIVE: set = set()  # children not yet waited for, closed at interpreter exit
_LIVE_LOCK = threading.Lock()


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else the count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class Ahead:
    """A compile-ahead child (``compile_ahead``). ``started`` is False, with the ``reason``, when
    no child was started; ``wait()`` says whether it compiled (exited 0); ``close()`` stops it.
    Use as a context manager, or call ``close()``: a child still running at interpreter exit is
    stopped then."""

    def __init__(self, reason: str | None = None, proc=None, files=()):
        self.started = proc is not None
        self.reason = reason
        self._proc = proc
        self._files = tuple(files)  # (job pickle, stderr log)
        self._warned = False
        if proc is not None:
            with _LIVE_LOCK:
                _LIVE.add(self)

    def __repr__(self) -> str:
        if not self.started:
            return f"Ahead(not started: {self.reason})"
        state = "running" if self._proc.poll() is None else f"exit {self._proc.returncode}"
        return f"Ahead(pid {self._proc.pid}, {state})"

    @property
    def pid(self) -> int | None:
        """The child's process id (None when not started)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def done(self) -> bool:
        """True when no child runs (it exited, was closed, or never started)."""
        return self._proc is None or self._proc.poll() is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the child (at most ``timeout`` seconds; None: until it exits). True when it
        exited 0 (the kernels are in the cache: compiled by it, or found there already); False when it was not started, failed (a warning on
        the ``refcfg`` logger with the end of its stderr), was closed, or is still running after
        ``timeout`` (then ``done`` is False)."""
        if timeout is not None and not (isinstance(timeout, (int, float)) and timeout >= 0):
            raise ValueError(f"timeout must be None or a number >= 0, got {timeout!r}")
        if self._proc is None:
            return False
        try:
            rc = self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        if rc != 0 and not self._warned:
            self._warned = True
            _log.warning(
                "compiling the sampling kernels ahead in a child process failed (exit %s); the "
                "first sampling call compiles them instead. The child's stderr ended with:\n%s",
                rc,
                self._stderr_tail(),
            )
        self._cleanup()
        return rc == 0

    def close(self) -> None:
        """Stop the child if it still runs (terminate, then kill after 5 s) and remove its files.
        Idempotent; also called at interpreter exit and by ``with``."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            self._warned = True  # stopped on purpose: no warning about its exit status
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._cleanup()

    def __enter__(self) -> Ahead:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _stderr_tail(self) -> str:
        try:
            text = Path(self._files[1]).read_text(encoding="utf-8", errors="replace")
        except (OSError, IndexError):
            return "(no stderr)"
        lines = text.strip().splitlines()[-STDERR_LINES:]
        return "\n".join(lines) if lines else "(empty)"

    def _cleanup(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            return
        with _LIVE_LOCK:
            _LIVE.discard(self)
        for f in self._files:
            try:
                os.unlink(f)
            except OSError:
                pass
        self._files = ()


@atexit.register
def _close_all() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for a in live:
        a.close()


def _package_root() -> str:
    """The directory holding this refcfg package, as imported (not symlink-resolved: numba keys
    its user-wide cache directory on the package's path, which parent and child must share)."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _child_env() -> dict:
    """The child's environment: this one, with numba's cache directory as this process uses it
    (``cpu._import_kernels`` may have set a temporary one), one thread everywhere (the child's job
    is tiny; its work is the compile), and this refcfg first on the path."""
    import numba.core.config

    env = dict(os.environ)
    cache_dir = getattr(numba.core.config, "CACHE_DIR", "")
    if cache_dir:
        env["NUMBA_CACHE_DIR"] = str(cache_dir)
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    root = _package_root()
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def compile_ahead(field, sampler: str = "heun", *, n: int | None = None, **options) -> Ahead:
    """Start compiling, in a child process, the CPU kernels that ``refcfg.sample(field, n,
    sampler, backend="cpu", **options)`` will need, and return at once (module docstring: why a
    process).

    ``n``: the job's particle count, when known (a job of 1024 particles or more can use one more
    kernel with full covariances); a field with per-particle labels or weights uses its own.
    ``options``: the ``refcfg.sample`` options in ``OPTIONS``. Arguments are checked here
    (TypeError / ValueError naming the argument) before anything starts.

    Returns an ``Ahead``. No child is started (``started`` False, ``reason`` says why; no
    exception) when the field does not lower to the kernels, numba cannot be imported, fewer than
    2 CPUs are usable (the child would take the core this process needs), the field (with its
    schedule) cannot be pickled, or the child's files or process cannot be created. Results never depend on the child: kernels loaded from the cache
    give the same bits as kernels compiled in the process, and a failed child only means the job's
    first call compiles.
    """
    from .._validation import as_positive_int
    from . import api, cpu, lowering
    from .steppers import SAMPLERS

    bad = sorted(set(options) - set(OPTIONS))
    if bad:
        raise ValueError(
            f"compile_ahead takes the sample options {OPTIONS}, got {bad}: the kernels are "
            f"specialised on types, not on sizes, seeds or the noise, so the child runs the job "
            f"with at most {cpu._MFORM_MIN_N} particles and one step"
        )
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if n is not None:
        n = as_positive_int(n, "n")
    y, w = options.pop("y", None), options.pop("w", None)
    field = api._as_field(field, y, w)
    try:
        low, why = lowering.lower(field), None  # ValueError for inconsistent per-particle arrays
    except lowering.NotLowerable as exc:
        low, why = None, str(exc)
    # the job the child runs: as many particles as the field's per-particle arrays, else up to the
    # fewest particles of the full-covariance M form (cpu._tables), so that it uses the same kernels
    if low is not None and low.n is not None:
        if n is not None and n != low.n:
            raise ValueError(
                f"n must be the particle count of the field's per-particle labels or weights "
                f"({low.n}), got {n}"
            )
        n_child = low.n
    else:
        n_child = max(2, min(n or 2, cpu._MFORM_MIN_N))
    job = api._check_job(
        field,
        n_child,
        sampler,
        1,
        None,
        None,
        "float64",
        options.get("return_trajectory", False),
        options.get("trajectory_every", 1),
    )
    api._sde_inputs(
        field,
        sampler,
        "cpu",
        options.get("sigma"),
        None,
        api.time_grid(1, options.get("t_start", 0.0), options.get("t_end", 1.0)),
        (job.n, job.d),
    )
    if low is None:
        return Ahead(f"the field does not lower to the CPU kernels: {why}")
    if not cpu.available():  # pragma: no cover - numba is a dependency
        return Ahead("numba cannot be imported")
    cpus = usable_cpus()
    if cpus < 2:
        return Ahead(
            f"{cpus} usable CPU: a compile in a child process would take the core this process "
            f"needs"
        )
    try:
        data = pickle.dumps((field, sampler, n_child, options), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 -- pickle raises several types; the reason says which
        return Ahead(
            f"the field cannot be pickled for the child process ({type(exc).__name__}: {exc})"
        )
    # import the kernels here first: where numba can write no cache next to refcfg nor in the
    # user's directory, that import chooses a temporary cache directory, which the child must share
    cpu._k()
    env = _child_env()
    files: list[str] = []
    try:
        fd, job_file = tempfile.mkstemp(prefix="refcfg-ahead-", suffix=".pkl")
        files.append(job_file)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        fd, err_file = tempfile.mkstemp(prefix="refcfg-ahead-", suffix=".err")
        files.append(err_file)
        with os.fdopen(fd, "wb") as err:
            # run from the directory holding this refcfg: with ``-m`` the child's first import
            # path is its working directory, which must not hold another refcfg
            proc = subprocess.Popen(
                [sys.executable, "-m", "refcfg.sampling.ahead", job_file, str(os.getpid())],
                cwd=_package_root(),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                close_fds=True,
            )
    except OSError as exc:
        for f in files:
            try:
                os.unlink(f)
            except OSError:
                pass
        return Ahead(f"the child process could not be started ({exc})")
    return Ahead(proc=proc, files=(job_file, err_file))


def _exit_with_parent(parent: int) -> None:
    """End this child when its parent is gone (killed: no ``atexit`` ran there to stop it); a
    daemon thread polls the parent process id twice a second."""

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="refcfg-ahead-parent").start()


def _main(argv) -> int:
    """The child: unpickle (field, sampler, n, options) from the file argv[0] and run the job's
    kernels once (one step), which compiles them into numba's cache."""
    if len(argv) != 2:
        print("usage: python -m refcfg.sampling.ahead JOB_FILE PARENT_PID", file=sys.stderr)
        return 2
    with open(argv[0], "rb") as fh:
        field, sampler, n, options = pickle.load(fh)
    os.unlink(argv[0])
    _exit_with_parent(int(argv[1]))
    from .api import sample

    sample(field, n, sampler, steps=1, seed=0, backend="cpu", **options)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
