"""CPU backend: exact Gaussian-mixture fields evaluated and integrated by fused Numba kernels.

``refcfg.sample(..., backend="cpu")`` (and ``"auto"`` for lowerable fields) lands here. A field is
lowered by the one lowering (``refcfg.sampling.lowering``) to the records ``Components``,
``Groups`` and ``TimeTables``; the per-time tables of every stage time are computed once on the
host (never inside the particle loop); the kernels (``refcfg.sampling._cpu_kernels``) run over
blocks of particles, P particles per field evaluation, and each block stays in thread-local
buffers across all time steps (fused time loop: no (N, K, d) temporaries, no per-step round trips
through memory). A call splits the blocks into TASKS_PER_THREAD tasks per thread (contiguous
ranges) and runs them on a pool of ``numba.get_num_threads()`` Python threads; the kernels release
the GIL (``nogil``). They are plain (not ``parallel=True``) functions: numba's parallel pipeline
compiled each kernel twice more (once inside its parallel wrapper) and re-optimised it there,
which was most of the cold compile time (docs/performance.md).

Samplers: every explicit Runge-Kutta tableau of ``refcfg.sampling.steppers`` on the probability-flow
ODE dX = u_t(X) dt, and "euler_maruyama" on the SDE eq. 44, dX = [u + sigma_t^2/2 score] dt +
sigma_t dW. SDE noise is a counter-based stream per (seed, particle, step)
(``refcfg.sampling._cpu_math``), so a seed gives the same samples for every thread count;
``noise=`` (steps, n, d) overrides it. The likelihood integrator is the same fused loop with the
divergence switched on.

Nothing here compiles at import: numba and the kernels are imported on the first call. A call
that is about to compile a kernel (no entry in numba's cache for its specialisation) logs one
message on the ``refcfg.sampling.compile`` logger first (``compile_message``); ``refcfg.sample``
prints nothing itself, and the command line shows that message.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import logging
import threading

import numpy as np

from .._validation import as_generator, as_points, require_finite_result
from .lowering import MODE_DIAG, MODE_FULL, MODE_ISOTROPIC, is_lowerable, lower, require_lowerable
from .steppers import SDE_SAMPLERS, TABLEAUS, stage_times, tableau

__all__ = [
    "available",
    "supports",
    "velocity",
    "score",
    "divergence",
    "integrate",
    "integrate_logdet",
    "seed_to_int",
    "normals",
    "compile_message",
    "announce_compiles",
]

TASKS_PER_THREAD = 4
_TABLE_LIMIT = 1 << 23  # elements of one (T, K, d) table before evaluation at many times is chunked
_MFORM_LIMIT = 1 << 23  # elements of the (T, d d, K) tables of the M form (full covariances)
# fewest particles for the M form: building its tables (``_cpu_kernels.mform_tables``) costs about
# as much as the kernel's work on ~35 particles (measured: K = 1024, d = 16, 10 time rows: ~6 ms)
_MFORM_MIN_N = 1024
_NO_MFORM = np.empty((0, 0, 0))


def _lanes(comp):
    """Particles per field evaluation in the blocked kernels: 256 for small mixtures (K d <= 32);
    for full covariances with K d > 64, 32 (the (K d, P) scratch then stays in L2) unless d >= 32
    (64: the rotations' products are then large enough that wider panels pay); else 64 (the
    measurements behind these choices: docs/performance.md, "What the kernel does")."""
    K, d = comp.lam.shape[0], comp.mu.shape[0]
    if K * d <= 32:
        return 256
    return 32 if comp.mode == MODE_FULL and K * d > 64 and d < 32 else 64


def _threads() -> int:
    import numba

    return numba.get_num_threads()


def _ntask() -> int:
    """Parallel tasks of a kernel call: TASKS_PER_THREAD per Numba thread. Each task allocates its
    scratch once for a contiguous range of particle blocks; several per thread balance the load
    when other work shares the cores. Results do not depend on it."""
    return TASKS_PER_THREAD * _threads()


def _mode_tag(comp):
    """The kernels' compile-time covariance mode: a tuple of length comp.mode (``_blk_field``)."""
    return (0,) * comp.mode


def _nblocks(n, P):
    """Blocks of ``_cpu_kernels._bsize(P)`` = max(BLOCK, P) particles covering n particles."""
    B = max(_k().BLOCK, P)
    return (n + B - 1) // B


_POOL = {"n": 0, "pool": None}
_POOL_LOCK = threading.Lock()


def _pool(n):
    """The shared pool of n worker threads (made again when the thread count changed)."""
    with _POOL_LOCK:
        if _POOL["n"] != n:
            if _POOL["pool"] is not None:
                _POOL["pool"].shutdown(wait=False)
            _POOL["pool"] = concurrent.futures.ThreadPoolExecutor(n, "refcfg-cpu")
            _POOL["n"] = n
        return _POOL["pool"]


# --- compile announcement ---------------------------------------------------------------------

_log = logging.getLogger("refcfg.sampling.compile")
# cold compile of one kernel specialisation, seconds of CPU time on the 2-core reference machine
# (verification/bench_compile.py; the first one in a process also pays numba's own start-up)
COMPILE_SECONDS = {"integrate_blk": 11, "eval_blk": 10, "mform_tables": 2}


def compile_message(seconds) -> str:
    """The one line the command line prints before a kernel compiles."""
    return (
        f"compiling the sampling kernels once for this machine, ~{seconds:.0f} s; later runs "
        f"load them from the cache"
    )


def _will_compile(kernel, args) -> bool:
    """True when calling the numba dispatcher ``kernel`` with ``args`` is about to compile: the
    specialisation is neither loaded in this process nor in numba's cache index. Reads numba's
    (private) cache index; False where that cannot be read (then nothing is announced)."""
    try:
        signature = tuple(kernel.typeof_pyval(a) for a in args)
        if signature in kernel.overloads:
            return False
        cache = kernel._cache
        key = cache._index_key(signature, kernel.targetctx.codegen())
        return key not in cache._cache_file._load_index()
    except Exception:  # noqa: BLE001 -- numba internals changed: assume cached (no announcement)
        return False


class _OneLine(logging.Handler):
    """Prints a record's message alone on a line of ``stream`` (stderr when None), flushed."""

    def __init__(self, stream=None):
        super().__init__(logging.INFO)
        self.stream = stream

    def emit(self, record):
        import sys

        print(record.getMessage(), file=self.stream or sys.stderr, flush=True)


@contextlib.contextmanager
def announce_compiles(stream=None):
    """Within the block, print ``compile_message`` on ``stream`` (stderr) whenever a kernel is
    about to compile (the command line runs every command in this block; ``refcfg.sample`` itself
    only logs)."""
    handler = _OneLine(stream)
    level = _log.level
    _log.addHandler(handler)
    _log.setLevel(logging.INFO)
    try:
        yield
    finally:
        _log.removeHandler(handler)
        _log.setLevel(level)


def _announce(kernel, args):
    if _log.isEnabledFor(logging.INFO) and _will_compile(kernel, args):
        _log.info(compile_message(COMPILE_SECONDS.get(kernel.__name__, 15)))


def _launch(kernel, nitems, *args):
    """kernel(i0, i1, *args) for contiguous ranges [i0, i1) of ``nitems`` items of work (blocks of
    particles, or table rows), in at most ``_ntask()`` tasks. The calling thread and
    ``numba.get_num_threads() - 1`` pool threads take the tasks in turn; results do not depend on
    the split (each item's arithmetic is its own)."""
    nt = max(1, min(nitems, _ntask()))
    bounds = [(c * nitems // nt, (c + 1) * nitems // nt) for c in range(nt)]
    _announce(kernel, bounds[0] + args)
    runners = min(_threads(), nt)
    if runners == 1:
        for i0, i1 in bounds:
            kernel(i0, i1, *args)
        return
    todo = iter(bounds)
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                nxt = next(todo, None)
            if nxt is None:
                return
            kernel(nxt[0], nxt[1], *args)

    pool = _pool(_threads() - 1)
    futures = [pool.submit(work) for _ in range(runners - 1)]
    try:
        work()
    finally:
        for f in futures:
            f.result()


def available() -> bool:
    """True when numba can be imported (the CPU kernels compile on first use)."""
    try:
        import numba  # noqa: F401
    except ImportError:  # pragma: no cover - numba is a dependency
        return False
    return True


def supports(field) -> bool:
    """True when ``field`` can run on the CPU kernels (exact fields and linear guided trees)."""
    return is_lowerable(field) and available()


def _k():
    """The kernel module, imported on first use (see ``_import_kernels``)."""
    k = _KERNELS.get("k")
    if k is None:
        k = _KERNELS["k"] = _import_kernels()
    return k


_KERNELS: dict = {}


def _import_kernels():
    """Import the kernels. numba keeps compiled kernels next to the package (``__pycache__``) or,
    where that directory is not writable (a root-installed site-packages), in the user's cache
    directory (~/.cache/numba); NUMBA_CACHE_DIR overrides both. Where neither is writable numba
    refuses to define a cached function at all: the kernels then compile into a temporary
    directory for this process, with a warning naming NUMBA_CACHE_DIR."""
    try:
        from . import _cpu_kernels
    except RuntimeError as exc:
        if "no locator available" not in str(exc):
            raise
        import tempfile

        import numba.core.config

        numba.core.config.CACHE_DIR = tempfile.mkdtemp(prefix="refcfg-numba-")
        logging.getLogger("refcfg").warning(
            "numba cannot write its cache next to refcfg nor in the user cache directory; the "
            "sampling kernels compile anew in every process (set NUMBA_CACHE_DIR to a writable "
            "directory to keep them)"
        )
        from . import _cpu_kernels
    return _cpu_kernels


def _lower(field, n):
    require_lowerable(field, "cpu")
    return lower(field, n)


def _layout(low):
    """The kernels' ``Layout`` of a lowered mixture: its records and the component matrices in
    the layouts of the block products ((1, 1) placeholders where a mode does not use them)."""
    comp = low.comp
    unused = np.empty((1, 1))
    if comp.mode == MODE_ISOTROPIC:
        return _k().Layout(comp, low.groups, unused, unused, np.ascontiguousarray(comp.mu.T))
    d, _, K = comp.QT.shape
    to_eigen = np.ascontiguousarray(np.transpose(comp.QT, (2, 1, 0)).reshape(K * d, d))
    from_eigen = np.ascontiguousarray(np.transpose(comp.QT, (0, 2, 1)).reshape(d, K * d))
    return _k().Layout(comp, low.groups, to_eigen, from_eigen, unused)


def _tables(low, tables, n, want_div=False, one_row=True):
    """The kernels' ``Tables``: the lowering's TimeTables ``tables`` and, for the full-covariance
    kernels when their components run in tiles (``_cpu_kernels.tile_size``), the M form's:
    M[r, i d + j, k] = (M_rk)_ij with M_rk = Q_k diag(gain_rk) Q_k^T and
    b[r, :, k] = dm_r mu_k - alpha_r M_rk mu_k, so that pass 2 needs no eigen-coordinates
    (it then does two matrix products per particle-component at every K instead of three).
    Empty placeholders otherwise: other modes, no tiles, the divergence (which keeps the
    coordinates), rows per particle (``one_row`` False: the M form serves one row for all
    particles at a time), fewer than _MFORM_MIN_N particles ``n``, or tables over _MFORM_LIMIT
    elements (many time rows); the tiles then compute the coordinates again."""
    c = low.comp
    K, d = int(low.K), int(low.d)
    T = tables.alpha.shape[0]
    if (
        c.mode != MODE_FULL
        or want_div
        or not one_row
        or n < _MFORM_MIN_N
        or _k().tile_size(K, d, _lanes(c)) == K
        or T * d * d * K > _MFORM_LIMIT
    ):
        return _k().Tables(tables, _NO_MFORM, _NO_MFORM)
    MT = np.empty((T, d * d, K))
    BT = np.empty((T, d, K))
    _launch(_k().mform_tables, T * d, c.QT, tables.gain, c.mu, tables.alpha, tables.dm, MT, BT)
    return _k().Tables(tables, MT, BT)


def _points(x, d):
    # the NumPy core's check (|x| <= X_MAX); as_float_array inside does not copy float64 input
    return np.ascontiguousarray(as_points(x, d, allow_empty=True, copy=False))


def _evaluate(field, x, t, kind, with_div=False):
    low = _lower(field, None)
    x = _points(x, low.d)
    N = x.shape[0]
    if low.n is not None and low.n != N:
        raise ValueError(
            f"x has {N} points but the field holds per-particle labels/weights for {low.n}"
        )
    t_arr = np.asarray(t, dtype=np.float64)
    if t_arr.ndim == 0:
        times, tidx = t_arr.reshape(1), None
    elif t_arr.shape == (N,):
        times, tidx = np.unique(t_arr, return_inverse=True)
        tidx = tidx.astype(np.int64)
    else:
        raise ValueError(f"t must be a float or shape ({N},), got shape {t_arr.shape}")
    if np.any(~np.isfinite(times)) or np.any(times < 0) or np.any(times > 1):
        raise ValueError("t must lie in [0, 1]")
    k = _k()
    out = np.empty_like(x)
    div = np.empty(N)
    per = max(1, _TABLE_LIMIT // max(1, low.K * low.d))
    if len(times) <= per:
        chunks = [(None, times, tidx)]
    else:  # many distinct times: evaluate in chunks of particles with their own tables
        order = np.argsort(tidx, kind="stable")
        chunks = []
        for s in range(0, N, per):
            idx = order[s : s + per]
            tt, ti = np.unique(t_arr[idx], return_inverse=True)
            chunks.append((idx, tt, ti.astype(np.int64)))
    lay = _layout(low)
    for idx, tt, ti in chunks:
        sub = low if idx is None else low.select(idx)
        if idx is not None:
            lay = lay._replace(grp=sub.groups)
        xs = x if idx is None else np.ascontiguousarray(x[idx])
        rows = 0 if len(tt) == 1 else ti  # one row for all, or one per particle
        tabs = _tables(sub, sub.tables(tt, kind), xs.shape[0], with_div, one_row=len(tt) == 1)
        o = np.empty_like(xs)
        dv = np.empty(xs.shape[0]) if with_div else None
        with _blas_serial(sub.comp):
            P = _lanes(sub.comp)
            _launch(
                k.eval_blk,
                _nblocks(xs.shape[0], P),
                xs,
                rows,
                _mode_tag(sub.comp),
                lay,
                tabs,
                P,
                o,
                dv,
            )
        if idx is None:
            out, div = o, dv
        else:
            out[idx] = o
            if with_div:
                div[idx] = dv
    require_finite_result(out, kind)  # the NumPy core's error, never inf/NaN returned
    if with_div:
        require_finite_result(div, "div")
    return (out, div) if with_div else out


def velocity(field, x, t) -> np.ndarray:
    """The field's velocity at (x (N, d), t float or (N,)) by the Numba kernel (the marginal
    velocity, eq. 18 of the notes, in closed form; guided combinations eqs. 62/65)."""
    return _evaluate(field, x, t, "velocity")


def score(field, x, t) -> np.ndarray:
    """The field's score (guided: the same linear combination of exact scores)."""
    return _evaluate(field, x, t, "score")


def divergence(field, x, t) -> np.ndarray:
    """The exact divergence of the field's velocity, (N,)."""
    return _evaluate(field, x, t, "velocity", with_div=True)[1]


def seed_to_int(seed) -> int:
    """A 63-bit integer key for the counter-based SDE noise: an int seed is used as is (mod 2^63);
    a Generator or None draws one."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
        return int(seed) % (1 << 63)
    return int(as_generator(seed).integers(0, 1 << 63))


def normals(seed, n, steps, d, first_particle=0) -> np.ndarray:
    """The (steps, n, d) standard normals the CPU SDE kernel uses for ``seed`` (int): normal
    [s, i, j] is a pure function of (seed, first_particle + i, s, j)."""
    _k()  # imports _cpu_math (see _import_kernels)
    from ._cpu_math import normals_table

    if first_particle:
        return normals_table(seed_to_int(seed), n + first_particle, steps, d)[:, first_particle:]
    return normals_table(seed_to_int(seed), n, steps, d)


@functools.lru_cache(maxsize=1)
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _blas_serial(comp):
    """One BLAS thread while a kernel runs its small products (full covariances): inside the
    kernels' parallel loop a threaded BLAS starts threads of its own on cores that are already
    busy (measured: up to 12x slower at K = 4096, d = 16). Other modes call no BLAS."""
    stack = contextlib.ExitStack()
    if comp.mode != MODE_DIAG:
        stack.enter_context(_blas_controller().limit(limits=1, user_api="blas"))
    return stack


def _noise(diffusion, normals=None, key=0, first_particle=0):
    """The kernels' ``Noise``: diffusion (S,) the SDE's sigma_t at ts[:-1] (zeros for an ODE);
    normals (S, n, d), or None for the counter-based stream of ``key`` from particle
    ``first_particle`` on."""
    from_array = normals is not None
    return _k().Noise(
        diffusion,
        bool(np.any(diffusion != 0.0)),
        from_array,
        np.ascontiguousarray(np.asarray(normals, dtype=np.float64))
        if from_array
        else np.zeros((1, 1, 1)),
        np.uint64(key),
        np.int64(first_particle),
    )


def _run(low, x0, grid, tables, noise, slot, traj, want_div=False):
    """One call of the fused kernel on the ``Grid`` with the ``Noise``; the state at grid time
    i goes to traj[slot[i]] where slot[i] >= 0. Returns (x at the last time, integral of div F or
    None)."""
    k = _k()
    n = x0.shape[0]
    out = k.Output(np.empty_like(x0), slot, traj)
    dl = np.empty(n) if want_div else None
    with _blas_serial(low.comp):
        P = _lanes(low.comp)
        _launch(
            k.integrate_blk,
            _nblocks(n, P),
            x0,
            _mode_tag(low.comp),
            _layout(low),
            _tables(low, tables, n, want_div),
            grid,
            P,
            noise,
            out,
            dl,
        )
    return out.x, dl


def integrate(
    field,
    x_init,
    ts,
    sampler,
    sigma=None,
    noise=None,
    seed=None,
    trajectory_every=None,
    first_particle=0,
):
    """Integrate a lowerable field from ts[0] to ts[-1], starting at x_init (n, d).

    sampler: a name of ``steppers.SAMPLERS``; for "euler_maruyama" sigma (S,) = sigma_t at ts[:-1].
    Noise: ``noise`` (S, n, d) standard normals, else the counter-based stream of ``seed`` (an int,
    or a Generator / None from which a key is drawn). Returns x at ts[-1], or (x, trajectory
    (T, n, d), times (T,)) with ``trajectory_every`` = k (every k-th grid time, always the first and
    the last). Validation of ts/sigma/noise is the caller's (``refcfg.sample``)."""
    x0 = np.ascontiguousarray(np.asarray(x_init, dtype=np.float64))
    n, d = x0.shape
    low = _lower(field, n)
    ts = np.ascontiguousarray(np.asarray(ts, dtype=np.float64))
    S = len(ts) - 1
    tab = tableau(sampler)
    rows = stage_times(ts, tab).ravel()
    diffusion = np.zeros(S)  # the SDE's sigma_t at ts[:-1]
    if sampler in SDE_SAMPLERS:
        diffusion[:] = np.asarray(sigma, dtype=np.float64)
        tables = low.tables(rows, "drift", diffusion)
    else:
        tables = low.tables(rows, "velocity")
    key = 0 if noise is not None or sampler not in SDE_SAMPLERS else seed_to_int(seed)
    slot = np.full(S + 1, -1, dtype=np.int64)
    if trajectory_every:
        keep = [i for i in range(S + 1) if i % trajectory_every == 0 or i == S]
        slot[keep] = np.arange(len(keep))
        traj = np.empty((len(keep), n, d))
    else:
        keep = None
        traj = np.empty((1, 1, 1))
    grid = _k().Grid(ts, tab.a, tab.b)
    out, _ = _run(low, x0, grid, tables, _noise(diffusion, noise, key, first_particle), slot, traj)
    if trajectory_every:
        return out, traj, ts[keep]
    return out


def integrate_logdet(field, x, ts, sampler="heun"):
    """Integrate the augmented ODE (x, l)' = (u, div u) along ``ts`` (any order; from 1 to 0 for
    the likelihood) with the tableau of the ODE sampler ``sampler``. Returns (x at ts[-1],
    integral of div u dt along ts)."""
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    low = _lower(field, x.shape[0])
    ts = np.ascontiguousarray(np.asarray(ts, dtype=np.float64))
    if sampler not in TABLEAUS:
        raise ValueError(f"sampler must be one of {tuple(TABLEAUS)}, got {sampler!r}")
    tab = TABLEAUS[sampler]
    S = len(ts) - 1
    tables = low.tables(stage_times(ts, tab).ravel(), "velocity")
    slot = np.full(S + 1, -1, dtype=np.int64)
    grid = _k().Grid(ts, tab.a, tab.b)
    return _run(low, x, grid, tables, _noise(np.zeros(S)), slot, np.empty((1, 1, 1)), True)
