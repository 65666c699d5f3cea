"""CUDA backend: exact Gaussian-mixture fields and their samplers as numba CUDA kernels.

``backend="cuda"`` of ``refcfg.sample`` and batched field evaluation land here. The kernels come from
the ``numba-cuda`` package (``pip install refcfg[cuda]``; ``from numba import cuda``,
``cuda.implementation == "NVIDIA"``). Without a GPU they run under numba's CUDA simulator when
``NUMBA_ENABLE_CUDASIM=1`` is set before numba is imported (slow: ~ms per particle; for tests).

A field is *lowered* to flat arrays before any kernel runs: the marginal mixture's means (K, d),
eigenvalues (K, d) and eigenvectors (K, d, d) (or none when every covariance is diagonal), log weights
log p(y) pi_{y,k} (K,), the class of each component (K,), and per-particle labels and coefficients of
at most two exact fields (CFG, notes arXiv 2506.02070 v3 eq. 65: u~ = w u(x|y) + (1 - w) u(x|null)).
Schedule values are evaluated on the host at the distinct times, so kernels never call Python
(see ``refcfg.sampling._cuda_kernels`` for the formulas).

Supported fields: ``ExactField`` (conditional or unconditional), ``CFGField``, ``ClassifierGuidedField``
(same values as CFG for exact fields, eq. 59-62) and ``GuidedField`` of two exact fields whose paths
share a schedule. Anything else raises TypeError.

Precision: float64 by default and agrees with the NumPy core to ~1e-13 relative; ``dtype="float32"``
on request (agreement ~1e-5 relative on well-conditioned problems; tested to 1e-4).

This module imports nothing from numba at import time; ``available()`` / ``require()`` do.
"""

from __future__ import annotations

import contextlib
import numbers
import warnings

import numpy as np

from .._validation import NULL, as_float_array, as_generator, as_labels, as_points, as_times

__all__ = ["CudaUnavailableError", "available", "require", "simulator_enabled", "evaluate", "sample",
           "draw_normals", "SAMPLERS"]

SAMPLERS = ("euler", "heun", "euler_maruyama")

_TABLE_LIMIT = 1 << 24
"""Largest number of elements (U x K x d) of one time table; evaluations at more distinct times
are split into several launches."""


class CudaUnavailableError(RuntimeError):
    """``backend="cuda"`` was requested but neither a usable CUDA GPU nor the simulator is there."""


# ------------------------------------------------------------------------------------------------
# availability
# ------------------------------------------------------------------------------------------------

def simulator_enabled() -> bool:
    """True when numba's CUDA simulator is on (``NUMBA_ENABLE_CUDASIM=1`` before numba's import)."""
    try:
        from numba import config
    except ImportError:  # pragma: no cover - numba is a hard dependency
        return False
    return bool(getattr(config, "ENABLE_CUDASIM", False))


def _reason() -> str | None:
    """None when CUDA kernels can run here, else why not (one sentence)."""
    try:
        from numba import cuda
    except ImportError as exc:  # pragma: no cover - numba is a hard dependency
        return f"numba.cuda cannot be imported ({exc})"
    if simulator_enabled():
        return None
    impl = getattr(cuda, "implementation", None)
    if impl != "NVIDIA":
        return (f"the numba-cuda package is not installed (numba.cuda.implementation is {impl!r}, "
                f"'NVIDIA' is required; install it with `pip install refcfg[cuda]`)")
    try:
        ok = bool(cuda.is_available())
    except Exception as exc:  # driver errors surface here
        return f"numba.cuda.is_available() raised {type(exc).__name__}: {exc}"
    if not ok:
        return "no CUDA GPU is usable (numba.cuda.is_available() is False)"
    return None


def available() -> bool:
    """True when the CUDA kernels can run: an NVIDIA GPU through numba-cuda, or the simulator."""
    return _reason() is None


def require() -> None:
    """Raise ``CudaUnavailableError`` (a RuntimeError) unless ``available()``."""
    why = _reason()
    if why is not None:
        raise CudaUnavailableError(
            f'backend="cuda" is unavailable: {why}. Use backend="cpu" or "numpy", run on a machine '
            f"with an NVIDIA GPU and `pip install refcfg[cuda]`, or set NUMBA_ENABLE_CUDASIM=1 "
            f"before numba is imported to run the kernels in numba's CUDA simulator (slow).")


def _kernels(d: int, dtype: str, full: bool = False):
    require()
    with _quiet():  # numba-cuda's RNG module warns about deprecated jit flags under the simulator
        from . import _cuda_kernels
    return _cuda_kernels.kernels(int(d), dtype, bool(full)), _cuda_kernels


def _block(n: int) -> int:
    # in the simulator every thread of a block is a Python thread, idle ones included
    return max(1, min(32, n)) if simulator_enabled() else 128


@contextlib.contextmanager
def _quiet():
    """Silence harmless warnings: the simulator's uint64 wrap-around in the xoroshiro128p code."""
    from numba.core.errors import NumbaWarning
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="overflow encountered", category=RuntimeWarning)
        # numba-cuda's simulator compiles its RNG initialisation in object mode (a NumbaWarning), and
        # on a GPU small grids raise NumbaPerformanceWarning ("under-utilization"): both harmless
        warnings.filterwarnings("ignore", category=NumbaWarning)
        yield


# ------------------------------------------------------------------------------------------------
# lowering
# ------------------------------------------------------------------------------------------------

class _Lowered:
    """A field as flat arrays: ``ca * E_A + cb * E_B`` over the components of one or two mixtures.

    Attributes: ``means`` (K, d), ``lam`` (K, d), ``Q`` (K, d, d) or None (identity), ``logw`` (K,),
    ``ccls`` (K,) int (class of each component within its own mixture), ``a_range``/``b_range``
    (component slices of terms A/B; b_range empty for a single field), ``lab_a``/``lab_b`` (n,) int
    (NULL = all components of the term), ``ca``/``cb`` (n,) float64, ``schedule``, ``d``, ``n``.
    """

    def __init__(self, means, lam, Q, logw, ccls, a_range, b_range, lab_a, lab_b, ca, cb,
                 schedule):
        self.means, self.lam, self.Q, self.logw, self.ccls = means, lam, Q, logw, ccls
        self.a_range, self.b_range = a_range, b_range
        self.lab_a, self.lab_b, self.ca, self.cb = lab_a, lab_b, ca, cb
        self.schedule = schedule
        self.d = means.shape[1]
        self.n = lab_a.shape[0]

    @property
    def K(self) -> int:
        return self.means.shape[0]

    def tables(self, times, cv, cs):
        """Host-side per-time tables (DESIGN.md section 3) for the field cv * velocity + cs * score,
        in the layout of ``refcfg.sampling._cuda_kernels`` (see its docstring).

        times, cv, cs: (U,) float64. With s = alpha^2 lam + beta^2 (eigenvalues of S_k) and
        g = (cv (alpha dalpha lam + beta dbeta) - cs) / s, returns (T1, T2, T3, T4, lconst, mcoef,
        alpha): full covariances T1 = 1/s, T3 = g (T2, T4 placeholders); diagonal T1 = 1/sqrt(s),
        T2 = alpha mu / sqrt(s), T3 = g, T4 = mcoef mu - g alpha mu; lconst (U, K) = log pi_k -
        sum_j log s_kj / 2; mcoef (U,) = cv dalpha; alpha (U,). All float64."""
        v = self.schedule.values(np.asarray(times, dtype=np.float64))
        alpha = np.atleast_1d(np.asarray(v.alpha, dtype=np.float64))
        al = alpha[:, None, None]
        be = np.atleast_1d(v.beta)[:, None, None]
        da = np.atleast_1d(v.dalpha)
        bdb = np.atleast_1d(v.beta_dbeta)[:, None, None]
        cv = np.asarray(cv, dtype=np.float64)
        cs = np.asarray(cs, dtype=np.float64)
        s = al * al * self.lam[None] + be * be                         # (U, K, d)
        with np.errstate(invalid="ignore"):
            vel = np.where(cv[:, None, None] == 0.0, 0.0,
                           cv[:, None, None] * (al * da[:, None, None] * self.lam[None] + bdb))
            mcoef = np.where(cv == 0.0, 0.0, cv * da)
        g = (vel - cs[:, None, None]) / s
        lconst = self.logw[None] - 0.5 * np.log(s).sum(axis=2)       # (U, K)
        if self.Q is not None:
            dummy = np.zeros((1, 1, 1))
            return 1.0 / s, dummy, g, dummy, lconst, mcoef, alpha
        rs = 1.0 / np.sqrt(s)
        amu = al * self.means[None]                                    # alpha mu, (U, K, d)
        return rs, amu * rs, g, mcoef[:, None, None] * self.means[None] - g * amu, lconst, \
            mcoef, alpha


def _is(obj, name: str) -> bool:
    return any(c.__name__ == name for c in type(obj).__mro__)


def _exact_parts(field):
    """(path, y) of an ExactField-like object, else None."""
    if _is(field, "ExactField"):
        return field.path, field.y
    return None


def _lower(field, n: int) -> _Lowered:
    """Lower a supported field for n particles to flat arrays (see ``_Lowered``).

    Supported: ExactField, CFGField / GuidedField of two ExactFields on one schedule,
    ClassifierGuidedField (lowered as CFG: with exact fields u(x) + w a_t grad log p_t(y|x) equals
    w u(x|y) + (1 - w) u(x), eq. 59-62 and 65 of arXiv 2506.02070 v3)."""
    exact = _exact_parts(field)
    if exact is not None:
        path, y = exact
        return _lower_terms([(path, y, np.ones(n))], n)
    if _is(field, "ClassifierGuidedField"):
        path, y, w = field.path, field.y, field.w
        if y is None:
            raise ValueError("ClassifierGuidedField.y is None: classifier guidance needs a class label")
        wv = _weights(w, n)
        return _lower_terms([(path, y, wv), (path, None, 1.0 - wv)], n)
    if _is(field, "GuidedField"):
        a, b = _exact_parts(field.a), _exact_parts(field.b)
        if a is None or b is None:
            raise TypeError(f"backend='cuda' supports GuidedField of two ExactFields, got "
                            f"a = {type(field.a).__name__}, b = {type(field.b).__name__}")
        wv = _weights(field.w, n)
        return _lower_terms([(a[0], a[1], wv), (b[0], b[1], 1.0 - wv)], n)
    raise TypeError(f"field must be an ExactField, CFGField, ClassifierGuidedField or GuidedField of "
                    f"two ExactFields for backend='cuda', got {type(field).__name__}")


def _weights(w, n: int) -> np.ndarray:
    arr = as_float_array(w, "w")
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"w must be a finite float or shape ({n},), got shape {arr.shape}")
    return arr


def _lower_terms(terms, n: int) -> _Lowered:
    """terms: list of (path, y, coef (n,)) with one or two entries."""
    paths = []
    for path, _, _ in terms:
        if not any(path is p for p in paths):
            paths.append(path)
    if len(paths) == 2:
        if paths[0].mixture is paths[1].mixture and paths[0].schedule == paths[1].schedule:
            paths = paths[:1]
        elif paths[0].schedule != paths[1].schedule:
            raise ValueError(f"backend='cuda' needs both guided fields on one schedule, got "
                             f"{paths[0].schedule!r} and {paths[1].schedule!r}")
        elif paths[0].d != paths[1].d:
            raise ValueError(f"guided fields have dimensions {paths[0].d} and {paths[1].d}")
    margs = [p.mixture.marginal for p in paths]
    d = margs[0].d
    means = np.ascontiguousarray(np.concatenate([m.means for m in margs]), dtype=np.float64)
    lam = np.ascontiguousarray(np.concatenate([m.eigvals for m in margs]), dtype=np.float64)
    if all(m.eigvecs is None for m in margs):
        Q = None
    else:
        eye = np.eye(d)
        Q = np.ascontiguousarray(np.concatenate(
            [m.eigvecs if m.eigvecs is not None else np.broadcast_to(eye, (m.K, d, d))
             for m in margs]), dtype=np.float64)
    logw = np.concatenate([np.asarray(m.log_weights, dtype=np.float64) for m in margs])
    ccls = np.concatenate([np.asarray(p.mixture.component_class) for p in paths]).astype(np.int32)
    offsets = np.cumsum([0] + [m.K for m in margs])
    ranges, labs, coefs = [], [], []
    for path, y, coef in terms:
        i = next(j for j, p in enumerate(paths) if p is path or p.mixture is path.mixture)
        ranges.append((int(offsets[i]), int(offsets[i + 1])))
        lab = as_labels(y, n, path.n_classes)
        labs.append(np.full(n, NULL, dtype=np.int32) if lab is None else lab.astype(np.int32))
        coefs.append(np.ascontiguousarray(coef, dtype=np.float64))
    if len(terms) == 1:
        ranges.append((0, 0))
        labs.append(np.full(n, NULL, dtype=np.int32))
        coefs.append(np.zeros(n))
    return _Lowered(means, lam, Q, logw, ccls, ranges[0], ranges[1], labs[0], labs[1], coefs[0],
                   coefs[1], paths[0].schedule)


# ------------------------------------------------------------------------------------------------
# launches
# ------------------------------------------------------------------------------------------------

def _dtype(dtype) -> str:
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return name


def _to_device(arrays, F, cuda):
    return tuple(cuda.to_device(np.ascontiguousarray(a, dtype=F)) for a in arrays)


def _device_arrays(low: _Lowered, F, cuda):
    """(means, mue, Q, ccls) on the device; mue[k] = Q_k^T mu_k. Q and mue are 1-element
    placeholders when every covariance is diagonal (the diagonal kernels never read them)."""
    if low.Q is not None:
        Q = low.Q
        mue = np.einsum("kji,kj->ki", low.Q, low.means)
    else:
        Q, mue = np.zeros((1, 1, 1)), np.zeros((1, 1))
    return (cuda.to_device(low.means.astype(F)), cuda.to_device(np.ascontiguousarray(mue, dtype=F)),
            cuda.to_device(np.ascontiguousarray(Q, dtype=F)), cuda.to_device(low.ccls))


def evaluate(field, x, t, what: str = "velocity", dtype="float64") -> np.ndarray:
    """Batched exact evaluation of a field on the GPU (or the CUDA simulator), shape (N, d).

    what: "velocity" (u_t, notes eq. 21 marginalised; guided fields: w u(x|y) + (1 - w) u(x|null),
    eq. 65), "score" (grad log p_t, guided: the same combination of scores, which is the score
    (u~ - b_t x)/a_t of eq. 41 applied to the guided velocity), or "cfg" (the guided velocity; the
    field must be a CFGField, ClassifierGuidedField or GuidedField). x (N, d); t a float or (N,).
    Returns float64, or float32 with dtype="float32"."""
    plan = _EvalPlan(field, x, t, what, dtype)
    plan.launch()
    return plan.result()


class _EvalPlan:
    """An evaluation with every array already on the device: ``launch()`` runs the kernel(s) only
    (what ``verification/gpu_check.py`` times), ``result()`` copies back. One launch per chunk of
    at most ``_TABLE_LIMIT / (K d)`` distinct times."""

    def __init__(self, field, x, t, what="velocity", dtype="float64"):
        if what not in ("velocity", "score", "cfg"):
            raise ValueError(f"what must be 'velocity', 'score' or 'cfg', got {what!r}")
        if what == "cfg" and not (_is(field, "GuidedField") or _is(field, "ClassifierGuidedField")):
            raise ValueError(f"what='cfg' needs a guided field (CFGField, ClassifierGuidedField, "
                             f"GuidedField), got {type(field).__name__}")
        dt = _dtype(dtype)
        d = int(field.d)
        x = as_points(x, d)
        n = x.shape[0]
        t = as_times(t, n)
        low = _lower(field, n)
        ns, _ = _kernels(d, dt, low.Q is not None)
        from numba import cuda
        F = ns.dtype
        self.ns, self.cuda, self.out = ns, cuda, np.empty((n, d), dtype=F)
        self.n_pairs = 0   # particle-component pairs visited by one launch()
        self.chunks = []
        if n == 0:
            return
        if isinstance(t, float):
            uniq, inv = np.array([t]), np.zeros(n, dtype=np.int64)
        else:
            uniq, inv = np.unique(t, return_inverse=True)
        per = max(1, _TABLE_LIMIT // max(1, low.K * d))
        cv, cs = (1.0, 0.0) if what in ("velocity", "cfg") else (0.0, 1.0)
        means, mue, Q, ccls = _device_arrays(low, F, cuda)
        span = max(low.a_range[1], low.b_range[1]) - (
            min(low.a_range[0], low.b_range[0]) if low.b_range[1] > low.b_range[0]
            else low.a_range[0])
        with _quiet():
            for u0 in range(0, uniq.shape[0], per):
                u1 = min(uniq.shape[0], u0 + per)
                sel = (np.nonzero((inv >= u0) & (inv < u1))[0] if (u0 > 0 or u1 < uniq.shape[0])
                       else np.arange(n))
                m = sel.shape[0]
                tabs = low.tables(uniq[u0:u1], np.full(u1 - u0, cv), np.full(u1 - u0, cs))
                d_out = cuda.device_array((m, d), dtype=F)
                args = (cuda.to_device(np.ascontiguousarray(x[sel], dtype=F)),
                        cuda.to_device((inv[sel] - u0).astype(np.int64)),
                        cuda.to_device(low.lab_a[sel]), cuda.to_device(low.lab_b[sel]),
                        *_to_device(tabs, F, cuda), means, mue, Q, ccls,
                        low.a_range[0], low.a_range[1], low.b_range[0], low.b_range[1],
                        cuda.to_device(low.ca[sel].astype(F)),
                        cuda.to_device(low.cb[sel].astype(F)), d_out)
                blk = _block(m)
                self.chunks.append((sel, (m + blk - 1) // blk, blk, args, d_out))
                self.n_pairs += m * span

    def launch(self):
        with _quiet():
            for _, grid, blk, args, _ in self.chunks:
                self.ns.evaluate[grid, blk](*args)
            self.cuda.synchronize()

    def result(self) -> np.ndarray:
        for sel, _, _, _, d_out in self.chunks:
            self.out[sel] = d_out.copy_to_host()
        return self.out


def _seed_int(seed) -> int:
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        return int(seed) % (1 << 64)
    return int(as_generator(seed).integers(0, 1 << 63))


def sample(field, x_init, t_grid, sampler, sigma_values=None, noise=None, seed=None,
           dtype="float64", trajectory_every=None):
    """Integrate ``field`` from x_init over t_grid on the GPU (or the CUDA simulator).

    sampler: "euler" (x += h u), "heun" (explicit trapezoid: x' = x + h u(x, t_i),
    x += h/2 (u(x, t_i) + u(x', t_{i+1}))) or "euler_maruyama" (the SDE of notes eq. 44:
    x += h (u~ + sigma_i^2/2 score~) + sigma_i sqrt(h) z_i, guided score = the same combination of
    scores). x_init (n, d); t_grid (T,) monotone; sigma_values (T-1,) or (T,) (sigma at t_i, used for
    i < T-1); noise: (T-1, n, d) standard normals (so runs can be compared on identical noise) or
    None, then each particle draws from its own xoroshiro128p stream seeded by ``seed``.
    Returns x (n, d), or (x, trajectory (S, n, d), times (S,)) when trajectory_every = k is given:
    the states at t_grid[0], every k-th grid time and the last (as ``refcfg.sampling.reference``).
    The xoroshiro128p streams differ from the CPU backend's counter-based noise: the same seed gives
    different (equally valid) SDE samples on "cpu" and "cuda"; pass ``noise`` to compare them."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    dt = _dtype(dtype)
    d = int(field.d)
    x = as_points(x_init, d, "x_init")
    n = x.shape[0]
    tg = as_float_array(t_grid, "t_grid", ndim=1)
    if tg.shape[0] < 2:
        raise ValueError(f"t_grid must hold at least 2 times, got shape {tg.shape}")
    if tg.min() < 0.0 or tg.max() > 1.0:
        raise ValueError(f"t_grid must lie in [0, 1], got [{tg.min()!r}, {tg.max()!r}]")
    h = np.diff(tg)
    if not (np.all(h > 0) or np.all(h < 0)):
        raise ValueError("t_grid must be strictly monotone")
    steps = h.shape[0]
    every = 0
    if trajectory_every is not None:
        if isinstance(trajectory_every, bool) or not isinstance(trajectory_every, numbers.Integral) \
                or trajectory_every < 1:
            raise ValueError(f"trajectory_every must be a positive int, got {trajectory_every!r}")
        every = int(trajectory_every)
    low = _lower(field, n)
    cv = np.ones(tg.shape[0])
    cs = np.zeros(tg.shape[0])
    noise_scale = np.zeros(steps)
    method = {"euler": 0, "heun": 1, "euler_maruyama": 2}[sampler]
    mode = 0
    if sampler == "euler_maruyama":
        if sigma_values is None:
            raise ValueError("sigma_values is required for sampler='euler_maruyama'")
        sig = as_float_array(sigma_values, "sigma_values", ndim=1)
        if sig.shape[0] not in (steps, steps + 1):
            raise ValueError(f"sigma_values has shape {sig.shape} but t_grid implies ({steps},) or "
                             f"({steps + 1},)")
        sig = sig[:steps]
        if not np.all(np.isfinite(sig)) or np.any(sig < 0):
            raise ValueError("sigma_values must be finite and >= 0")
        cs[:steps] = 0.5 * sig * sig
        noise_scale = sig * np.sqrt(np.abs(h))
        if noise is not None:
            nz = as_float_array(noise, "noise")
            if nz.shape != (steps, n, d):
                raise ValueError(f"noise has shape {nz.shape} but ({steps}, {n}, {d}) is required")
            mode = 1
        else:
            mode = 2
    elif noise is not None:
        raise ValueError(f"noise is only used by sampler='euler_maruyama', got sampler={sampler!r}")
    ns, _ = _kernels(d, dt, low.Q is not None)
    from numba import cuda
    F = ns.dtype
    if n == 0:
        empty = np.empty((0, d), dtype=F)
        if every:
            keep = [i for i in range(steps + 1) if i % every == 0 or i == steps]
            return empty, np.empty((len(keep), 0, d), dtype=F), tg[keep]
        return empty
    tabs = low.tables(tg, cv, cs)
    means, mue, Q, ccls = _device_arrays(low, F, cuda)
    d_x = cuda.to_device(np.ascontiguousarray(x, dtype=F))
    n_saved = 1 + -(-steps // every) if every else 1   # x_init, every k-th step, the last
    d_traj = cuda.device_array((n_saved, n if every else 1, d), dtype=F)
    with _quiet():
        if mode == 1:
            d_noise = cuda.to_device(np.ascontiguousarray(nz, dtype=F))
        else:
            d_noise = cuda.device_array((1, 1, 1), dtype=F)
        if mode == 2:
            from numba.cuda.random import create_xoroshiro128p_states
            states = create_xoroshiro128p_states(n, seed=_seed_int(seed))
        else:  # unused placeholder of the right type (no RNG initialisation)
            from numba.cuda.random import xoroshiro128p_dtype
            states = cuda.to_device(np.zeros(1, dtype=xoroshiro128p_dtype))
        blk = _block(n)
        ns.sample[(n + blk - 1) // blk, blk](
            d_x, d_traj, every, cuda.to_device(low.lab_a), cuda.to_device(low.lab_b),
            *_to_device(tabs, F, cuda), means, mue, Q, ccls,
            low.a_range[0], low.a_range[1], low.b_range[0], low.b_range[1],
            cuda.to_device(low.ca.astype(F)), cuda.to_device(low.cb.astype(F)),
            cuda.to_device(h.astype(F)), cuda.to_device(noise_scale.astype(F)), method, mode,
            d_noise, states)
        out = d_x.copy_to_host()
        traj = d_traj.copy_to_host() if every else None
    if every:
        keep = [i for i in range(steps + 1) if i % every == 0 or i == steps]
        return out, traj, tg[keep]
    return out


def draw_normals(n: int, steps: int, d: int, seed: int, dtype="float64") -> np.ndarray:
    """The (steps, n, d) standard normals that ``sample(..., noise=None, seed=seed)`` draws (per
    particle p, step i: d successive draws of xoroshiro128p stream p). For tests and comparisons."""
    dt = _dtype(dtype)
    ns, _ = _kernels(d, dt)
    from numba import cuda
    from numba.cuda.random import create_xoroshiro128p_states
    with _quiet():
        states = create_xoroshiro128p_states(n, seed=_seed_int(seed))
        out = cuda.device_array((steps, n, d), dtype=ns.dtype)
        blk = _block(n)
        ns.draw_normals[(n + blk - 1) // blk, blk](states, out)
        return out.copy_to_host()
