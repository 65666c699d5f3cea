"""CUDA backend: lowered Gaussian-mixture fields and their samplers as numba CUDA kernels.

``backend="cuda"`` of ``refcfg.sample`` and batched field evaluation land here. The kernels come from
the ``numba-cuda`` package (``pip install refcfg[cuda]``; ``from numba import cuda``,
``cuda.implementation == "NVIDIA"``). Without a GPU they run under numba's CUDA simulator when
``NUMBA_ENABLE_CUDASIM=1`` is set before numba is imported (slow: ~ms per particle; for tests).

Fields. This backend runs exactly the fields that ``refcfg.sampling.lowering.lower`` accepts (the
one lowering of every fast backend): linear combinations sum_g coef_g tcoef_g(t) u(x | path_g, y_g)
of exact Gaussian-mixture fields -- exact fields, CFG (eq. 65), classifier guidance with the exact
classifier (eqs. 59-62), guided trees, autoguidance, guidance intervals and weight profiles -- with
any number of groups. Any other field, including a subclass that changes the mathematics of a
lowerable class without declaring how it lowers, raises ``NotLowerable`` (a TypeError) before any
work: it runs on ``backend="numpy"``, never as another field.

This module copies the lowering's records (``Components``, ``Groups``, ``TimeTables``) to the
device as they are laid out (the layouts of ``refcfg.sampling._cuda_kernels``: int32 ranges, the
chosen float type); it computes no field quantity itself. Per-time tables are
evaluated on the host (``Lowered.tables``), so kernels never call Python.

Samplers: ``refcfg.sampling.steppers.SAMPLERS``, every explicit Runge-Kutta tableau of ``TABLEAUS``
and Euler-Maruyama.

Precision: float64 by default and agrees with the NumPy core to ~1e-13 relative; ``dtype="float32"``
on request (agreement ~1e-5 relative on well-conditioned problems; tested to 1e-4).

This module imports nothing from numba at import time; ``available()`` / ``require()`` do.
"""

from __future__ import annotations

import contextlib
import numbers
import warnings

import numpy as np

from .._validation import as_float_array, as_generator, as_points, as_times
from .lowering import MODE_FULL, MODE_ISOTROPIC
from .steppers import SAMPLERS, SDE_SAMPLERS, TABLEAUS, stage_times

__all__ = [
    "CudaUnavailableError",
    "available",
    "require",
    "simulator_enabled",
    "evaluate",
    "sample",
    "draw_normals",
    "SAMPLERS",
]

_TABLE_LIMIT = 1 << 24
"""Largest number of elements (T x K x dd) of one per-time table; evaluations at more distinct
times are split into several launches."""


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
        return (
            f"the numba-cuda package is not installed (numba.cuda.implementation is {impl!r}, "
            f"'NVIDIA' is required; install it with `pip install refcfg[cuda]`)"
        )
    try:
        ok = bool(cuda.is_available())
    except Exception as exc:  # noqa: BLE001 -- driver errors surface here, as any type
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
            f"before numba is imported to run the kernels in numba's CUDA simulator (slow)."
        )


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


def _kernel_module():
    """``refcfg.sampling._cuda_kernels`` (imports numba.cuda); raises unless ``available()``."""
    require()
    with _quiet():  # numba-cuda's RNG module warns about deprecated jit flags under the simulator
        from . import _cuda_kernels
    return _cuda_kernels


# ------------------------------------------------------------------------------------------------
# lowering and device layout
# ------------------------------------------------------------------------------------------------


def _lower(field, n: int | None):
    """``lowering.lower(field, n)``; a field that does not lower is refused (NotLowerable, a
    TypeError) with the lowering's reason and the backend that runs it."""
    from .lowering import NotLowerable, lower, require_lowerable

    require_lowerable(field, "cuda")
    try:
        return lower(field, n)
    except NotLowerable as exc:  # e.g. terms on paths with different schedules
        raise NotLowerable(
            f"backend='cuda' cannot run this field: {exc}. Use backend='numpy' "
            f"(or 'auto') for this field"
        ) from None


def _points_and_lowering(field, x, name: str):
    """(x as (n, d) float64, the field lowered for n particles); the field's dimension d fixes
    the shape of x. A field without an integer ``d`` is not lowerable."""
    d = getattr(field, "d", None)
    if isinstance(d, bool) or not isinstance(d, numbers.Integral):
        _lower(field, None)  # raises NotLowerable for non-field objects
        raise TypeError(f"field must have an integer dimension d, got d={d!r}")
    x = as_points(x, int(d), name)
    return x, _lower(field, x.shape[0])


def butcher(sampler: str) -> tuple:
    """(a row-major, b) of ``TABLEAUS[sampler]`` as tuples of floats: how the CUDA kernels take a
    Runge-Kutta method (constants of the compiled kernel; hashable for their cache)."""
    tab = TABLEAUS[sampler]
    a = tuple(float(v) for v in np.asarray(tab.a, dtype=np.float64).ravel())
    return a, tuple(float(v) for v in np.asarray(tab.b, dtype=np.float64))


def _dtype(dtype) -> str:
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return name


class _Device:
    """The lowered field's static arrays on the device: ``comp`` (DevComponents) and ``groups``
    (DevGroups), plus ``tables(times, kind, diffusion)`` -> DevTables."""

    def __init__(self, low, dtype_name: str):
        self.km = _kernel_module()
        from numba import cuda

        self.cuda = cuda
        self.F = np.float32 if dtype_name == "float32" else np.float64
        self.low = low
        c = low.comp
        self.mode, self.d, self.K, self.G = int(c.mode), int(low.d), int(low.K), int(low.G)
        # the layout as the kernels take it (compile-time flags)
        self.layout = (self.mode == MODE_FULL, self.mode == MODE_ISOTROPIC)
        self.comp = self.km.DevComponents(*(self._put(a) for a in (c.mu, c.mue, c.QT, c.lam)))
        self.groups = self.groups_of()

    def groups_of(self, sel=None):
        """DevGroups of the lowering's Groups, restricted to the particles ``sel`` when given."""
        g = self.low.groups
        lo, hi, coef = np.asarray(g.lo), np.asarray(g.hi), np.asarray(g.coef)
        if sel is not None:
            lo, hi = (a[sel] if a.shape[0] > 1 else a for a in (lo, hi))
            coef = coef[sel] if coef.shape[0] > 1 else coef
        return self.km.DevGroups(self._put(lo, np.int32), self._put(hi, np.int32), self._put(coef))

    def _put(self, a, dtype=None):
        return self.cuda.to_device(np.ascontiguousarray(a, dtype=dtype or self.F))

    def tables(self, times, kind: str, diffusion=None):
        """DevTables of ``Lowered.tables(times, kind, diffusion)`` (diffusion: the SDE's sigma_t
        at ``times``, for the drift)."""
        return self.km.DevTables(*(self._put(a) for a in self.low.tables(times, kind, diffusion)))


# ------------------------------------------------------------------------------------------------
# evaluation
# ------------------------------------------------------------------------------------------------


def evaluate(field, x, t, what: str = "velocity", dtype="float64") -> np.ndarray:
    """Batched evaluation of a lowerable field on the GPU (or the CUDA simulator), shape (N, d).

    what: "velocity" (the marginal velocity, eq. 18 in closed form, combined over the field's
    linear terms, e.g. w u(x|y) + (1 - w) u(x|null) for CFG, eq. 65) or "score" (the same
    combination of scores, eq. 38). x (N, d); t a float or (N,) in [0, 1].
    Returns float64, or float32 with dtype="float32". NotLowerable (a TypeError) for fields the
    lowering refuses."""
    plan = _EvalPlan(field, x, t, what, dtype)
    plan.launch()
    return plan.result()


class _EvalPlan:
    """An evaluation with every array already on the device: ``launch()`` runs the kernel(s) only
    (what ``verification/gpu_check.py`` times), ``result()`` copies back. One launch per chunk of
    at most ``_TABLE_LIMIT / (K dd)`` distinct times."""

    def __init__(self, field, x, t, what="velocity", dtype="float64"):
        if what not in ("velocity", "score"):
            raise ValueError(f"what must be 'velocity' or 'score', got {what!r}")
        dt = _dtype(dtype)
        x, low = _points_and_lowering(field, x, "x")
        n, d = x.shape
        t = as_times(t, n)
        dev = _Device(low, dt)
        cuda, F = dev.cuda, dev.F
        self.kernel = dev.km.evaluate_kernel(d, dt, *dev.layout, dev.G)
        self.cuda, self.out = cuda, np.empty((n, d), dtype=F)
        if isinstance(t, float):
            uniq, inv = np.array([t]), np.zeros(n, dtype=np.int64)
        else:
            uniq, inv = np.unique(t, return_inverse=True)
        dd = np.asarray(low.comp.lam).shape[1]
        per = max(1, _TABLE_LIMIT // max(1, dev.K * dd))
        # particle-component pairs visited by one launch(): the union of each particle's groups
        lo, hi = np.asarray(low.groups.lo), np.asarray(low.groups.hi)
        span = np.broadcast_to(hi.max(axis=1) - lo.min(axis=1), (n,))
        self.n_pairs = int(span.sum())
        self.chunks = []
        with _quiet():
            for u0 in range(0, uniq.shape[0], per):
                u1 = min(uniq.shape[0], u0 + per)
                sel = (
                    np.nonzero((inv >= u0) & (inv < u1))[0]
                    if (u0 > 0 or u1 < uniq.shape[0])
                    else None
                )
                idx = np.arange(n) if sel is None else sel
                m = idx.shape[0]
                groups = dev.groups if sel is None else dev.groups_of(sel)
                tab = dev.tables(uniq[u0:u1], what)
                d_out = cuda.device_array((m, d), dtype=F)
                args = (
                    cuda.to_device(np.ascontiguousarray(x[idx], dtype=F)),
                    cuda.to_device((inv[idx] - u0).astype(np.int32)),
                    dev.comp,
                    groups,
                    tab,
                    d_out,
                )
                blk = _block(m)
                self.chunks.append((idx, (m + blk - 1) // blk, blk, args, d_out))

    def launch(self):
        with _quiet():
            for _, grid, blk, args, _ in self.chunks:
                self.kernel[grid, blk](*args)
            self.cuda.synchronize()

    def result(self) -> np.ndarray:
        for idx, _, _, _, d_out in self.chunks:
            self.out[idx] = d_out.copy_to_host()
        return self.out


# ------------------------------------------------------------------------------------------------
# sampling
# ------------------------------------------------------------------------------------------------


def _seed_int(seed) -> int:
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        return int(seed) % (1 << 64)
    return int(as_generator(seed).integers(0, 1 << 63))


def _kept(steps: int, every: int) -> list:
    """Grid indices a trajectory keeps: 0, every k-th step and the last."""
    return [i for i in range(steps + 1) if i % every == 0 or i == steps]


def sample(
    field,
    x_init,
    t_grid,
    sampler,
    sigma_values=None,
    noise=None,
    seed=None,
    dtype="float64",
    trajectory_every=None,
):
    """Integrate a lowerable ``field`` from x_init over t_grid on the GPU (or the CUDA simulator).

    sampler: one of ``SAMPLERS``: an explicit Runge-Kutta method of
    ``refcfg.sampling.steppers.TABLEAUS`` on the
    probability-flow ODE, or "euler_maruyama" on the SDE of eq. 44,
    x += h (u + sigma_i^2/2 score) + sigma_i sqrt(|h|) z_i (a guided field uses the same
    combination of scores). x_init (n, d); t_grid (T,) strictly monotone in [0, 1];
    sigma_values (T-1,) or (T,) (sigma at t_i, used for i < T-1); noise: (T-1, n, d) standard
    normals (so runs can be compared on identical noise) or None, then each particle draws from its
    own xoroshiro128p stream seeded by ``seed``.
    Returns x (n, d), or (x, trajectory (S, n, d), times (S,)) when trajectory_every = k is given:
    the states at t_grid[0], every k-th grid time and the last (as ``refcfg.sampling.reference``).
    The xoroshiro128p streams differ from the CPU backend's counter-based noise: the same seed gives
    different (equally valid) SDE samples on "cpu" and "cuda"; pass ``noise`` to compare them."""
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    dt = _dtype(dtype)
    x, low = _points_and_lowering(field, x_init, "x_init")
    tg = _checked_grid(t_grid)
    every = _checked_every(trajectory_every)
    steps = tg.shape[0] - 1
    if sampler in SDE_SAMPLERS:
        diffusion, normals = _checked_noise(sampler, sigma_values, noise, steps, x.shape)
    else:
        _refuse_noise(sampler, sigma_values, noise)
    dev = _Device(low, dt)
    cuda, F = dev.cuda, dev.F
    n, d = x.shape
    d_x = cuda.to_device(np.ascontiguousarray(x, dtype=F))
    n_saved = len(_kept(steps, every)) if every else 1
    d_traj = cuda.device_array((n_saved, n if every else 1, d), dtype=F)
    h = np.diff(tg)
    blk = _block(n)
    launch = ((n + blk - 1) // blk, blk)
    with _quiet():
        args = (d_x, d_traj, every, cuda.to_device(h.astype(F)), dev.comp, dev.groups)
        if sampler in SDE_SAMPLERS:
            tab = dev.tables(tg[:-1], "drift", diffusion)
            dev_noise = _device_noise(dev, diffusion * np.sqrt(np.abs(h)), normals, n, seed)
            dev.km.sde_kernel(d, dt, *dev.layout, dev.G)[launch](*args, tab, dev_noise)
        else:
            tab = dev.tables(stage_times(tg, TABLEAUS[sampler]).ravel(), "velocity")
            kernel = dev.km.ode_kernel(d, dt, *dev.layout, dev.G, *butcher(sampler))
            kernel[launch](*args, tab)
        out = d_x.copy_to_host()
        traj = d_traj.copy_to_host() if every else None
    if every:
        return out, traj, tg[_kept(steps, every)]
    return out


def _checked_grid(t_grid) -> np.ndarray:
    """t_grid as float64 (T,), T >= 2, in [0, 1] and strictly monotone, else ValueError."""
    tg = as_float_array(t_grid, "t_grid", ndim=1)
    if tg.shape[0] < 2:
        raise ValueError(f"t_grid must hold at least 2 times, got shape {tg.shape}")
    if tg.min() < 0.0 or tg.max() > 1.0:
        raise ValueError(f"t_grid must lie in [0, 1], got [{tg.min()!r}, {tg.max()!r}]")
    h = np.diff(tg)
    if not (np.all(h > 0) or np.all(h < 0)):
        raise ValueError("t_grid must be strictly monotone")
    return tg


def _checked_every(trajectory_every) -> int:
    """The trajectory stride (0: no trajectory), else ValueError."""
    if trajectory_every is None:
        return 0
    if (
        isinstance(trajectory_every, bool)
        or not isinstance(trajectory_every, numbers.Integral)
        or trajectory_every < 1
    ):
        raise ValueError(f"trajectory_every must be a positive int, got {trajectory_every!r}")
    return int(trajectory_every)


def _checked_noise(sampler, sigma_values, noise, steps, shape):
    """(diffusion (steps,), the SDE's sigma_t at the grid times; normals (steps, n, d) or None)
    of an SDE sampler, else ValueError."""
    if sigma_values is None:
        raise ValueError(f"sigma_values is required for sampler={sampler!r}")
    sig = as_float_array(sigma_values, "sigma_values", ndim=1)
    if sig.shape[0] not in (steps, steps + 1):
        raise ValueError(
            f"sigma_values has shape {sig.shape} but t_grid implies ({steps},) or ({steps + 1},)"
        )
    diffusion = sig[:steps]
    if not np.all(np.isfinite(diffusion)) or np.any(diffusion < 0):
        raise ValueError("sigma_values must be finite and >= 0")
    if noise is None:
        return diffusion, None
    normals = as_float_array(noise, "noise")
    n, d = shape
    if normals.shape != (steps, n, d):
        raise ValueError(f"noise has shape {normals.shape} but ({steps}, {n}, {d}) is required")
    return diffusion, normals


def _refuse_noise(sampler, sigma_values, noise) -> None:
    """ValueError when an ODE sampler is given SDE arguments."""
    if noise is not None:
        raise ValueError(f"noise is only used by sampler='euler_maruyama', got sampler={sampler!r}")
    if sigma_values is not None:
        raise ValueError(
            f"sigma_values is only used by sampler='euler_maruyama', got sampler={sampler!r}"
        )


def _device_noise(dev, amp, normals, n, seed):
    """The DevNoise of an SDE run: amp (steps,) = sigma_i sqrt(|h_i|); the given normals, or the
    xoroshiro128p streams of ``seed`` (one per particle)."""
    cuda, F, km = dev.cuda, dev.F, dev.km
    d_amp = cuda.to_device(amp.astype(F))
    if normals is not None:
        d_normals = cuda.to_device(np.ascontiguousarray(normals, dtype=F))
        return km.DevNoise(d_amp, km.NOISE_ARRAY, d_normals, _no_states(cuda))
    from numba.cuda.random import create_xoroshiro128p_states

    states = create_xoroshiro128p_states(n, seed=_seed_int(seed))
    return km.DevNoise(d_amp, km.NOISE_RNG, cuda.device_array((1, 1, 1), dtype=F), states)


def _no_states(cuda):
    """An unused RNG-state placeholder of the right type (no RNG initialisation)."""
    from numba.cuda.random import xoroshiro128p_dtype

    return cuda.to_device(np.zeros(1, dtype=xoroshiro128p_dtype))


def draw_normals(n: int, steps: int, d: int, seed: int, dtype="float64") -> np.ndarray:
    """The (steps, n, d) standard normals that ``sample(..., noise=None, seed=seed)`` draws with
    sampler="euler_maruyama" (per particle p, step i: d successive draws of xoroshiro128p stream
    p). For tests and comparisons."""
    dt = _dtype(dtype)
    km = _kernel_module()
    from numba import cuda
    from numba.cuda.random import create_xoroshiro128p_states

    with _quiet():
        states = create_xoroshiro128p_states(n, seed=_seed_int(seed))
        out = cuda.device_array((steps, n, d), dtype=np.float32 if dt == "float32" else np.float64)
        blk = _block(n)
        km.normals_kernel(dt)[(n + blk - 1) // blk, blk](states, out)
        return out.copy_to_host()
