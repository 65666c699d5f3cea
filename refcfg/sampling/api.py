"""``refcfg.sample``: integrate a field from p_init = N(0, I) at t = 0 to t = 1.

Backends: "numpy" (``refcfg.sampling.reference``: works for every field object), "cpu" (fused Numba
kernels, ``refcfg.sampling.cpu``: exact Gaussian-mixture fields and linear guided combinations of
them), "cuda" (``refcfg.sampling.cuda``) and "auto", which picks "numpy" or "cpu" by the field and
the size of the job (``resolve_backend``: "numpy" for fields that do not lower and for jobs of at
most ``AUTO_NUMPY_WORK`` units of ``auto_work``, where NumPy takes at most about 1.1-1.6 s of CPU on
a 2-core machine and the kernels' one-time compile would cost 15-20 s; "cpu" above). The rule reads only the call's
arguments, never what is compiled or cached, so a given call always takes the same path.

Noise. ``seed`` feeds one ``np.random.Generator`` that draws x(t_start) ~ N(0, I) and, for the SDE
on the NumPy backend, the increments step by step; on the CPU backend the SDE increments come from a
counter-based stream keyed by one 63-bit integer drawn from that generator after x(t_start), so that
they do not depend on the number of threads. The two backends therefore give different (equally
valid) SDE samples for one seed (with backend="auto" the job's size decides which, see above); pass
``noise=`` to make them identical up to rounding.

The DDPM-like diffusion sigma_t^2 = 2 a_t (a_t of eq. 41) is infinite where alpha_t = 0 (t = 0 for
every schedule with alpha_0 = 0). There the Euler-Maruyama step is replaced by a probability-flow
ODE Euler step (sigma = 0): the ODE and the SDE have the same marginals (eq. 44), so this first step
is consistent, with local error O(h) like the Euler-Maruyama step it replaces; from t_1 on
sigma_t = sqrt(2 a_t). Alternatively pass ``t_start`` > 0 (then x(t_start) ~ N(0, I) only
approximates p_{t_start}). tests/sampling/test_sde.py bounds the difference between the two.
"""

from __future__ import annotations

import numbers
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np

from .._limits import require_memory
from .._validation import (
    _describe,
    as_float_array,
    as_generator,
    as_points,
    as_positive_int,
    require_bounded_state,
)
from . import reference
from .steppers import SAMPLERS, SDE_SAMPLERS, tableau

__all__ = [
    "AUTO_EVAL_OVERHEAD",
    "AUTO_NUMPY_WORK",
    "BACKENDS",
    "SAMPLERS",
    "auto_work",
    "field_size",
    "resolve_backend",
    "sample",
    "sample_memory",
    "sigma_values",
    "time_grid",
    "with_labels",
]

BACKENDS = ("auto", "numpy", "cpu", "cuda")


def time_grid(steps=100, t_start=0.0, t_end=1.0, t_grid=None) -> np.ndarray:
    """The integration grid: ``t_grid`` (strictly increasing, in [0, 1]) or ``steps`` uniform steps
    from t_start to t_end."""
    if t_grid is not None:
        ts = as_float_array(t_grid, "t_grid", ndim=1)
        if ts.size < 2 or np.any(np.diff(ts) <= 0) or ts[0] < 0 or ts[-1] > 1:
            raise ValueError(
                f"t_grid must be strictly increasing in [0, 1] with >= 2 points, got "
                f"{_describe(ts)}"
            )
        return ts
    steps = as_positive_int(steps, "steps")
    for name, v in (("t_start", t_start), ("t_end", t_end)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{name} must be a float in [0, 1], got {v!r}")
    if not t_start < t_end:
        raise ValueError(f"t_start must be < t_end, got t_start={t_start!r}, t_end={t_end!r}")
    return np.linspace(float(t_start), float(t_end), steps + 1)


def _ddpm_sigma(t, schedule) -> np.ndarray:
    """sqrt(2 a_t) with a_t of eq. 41 (``Schedule.a``); +inf where alpha_t = 0."""
    a = np.asarray(schedule.a(np.asarray(t, dtype=np.float64), strict=False), dtype=np.float64)
    return np.sqrt(2.0 * np.maximum(a, 0.0))


def sigma_values(sigma, ts, schedule) -> np.ndarray:
    """sigma_t at the grid points ts[:-1] (the Euler-Maruyama evaluation times).

    sigma: a float >= 0, a callable sigma(t), or "ddpm" meaning sigma_t^2 = 2 a_t (a_t of eq. 41).
    For "ddpm" the value is +inf where alpha_t = 0; the samplers take an ODE step there (see the
    module docstring)."""
    t_eval = np.asarray(ts)[:-1]
    if sigma is None:
        raise ValueError(
            "sigma is required for sampler='euler_maruyama' (a float, a callable "
            "sigma(t), or 'ddpm' for sigma_t^2 = 2 a_t)"
        )
    if isinstance(sigma, str):
        if sigma != "ddpm":
            raise ValueError(f"sigma must be a float, a callable or 'ddpm', got {sigma!r}")
        if schedule is None:
            raise ValueError("sigma='ddpm' needs a field with a schedule (sigma_t^2 = 2 a_t)")
        return _ddpm_sigma(t_eval, schedule)
    if callable(sigma):
        s = np.broadcast_to(
            np.asarray([sigma(float(t)) for t in t_eval], dtype=np.float64), t_eval.shape
        )
    else:
        s = np.broadcast_to(as_float_array(sigma, "sigma"), t_eval.shape)
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError(
            f"sigma must be finite and >= 0 on the time grid, got values in "
            f"[{float(np.min(s))!r}, {float(np.max(s))!r}]"
        )
    return np.array(s)


def require_field(field, name: str = "field") -> None:
    """TypeError naming ``name`` for a problem name or a mixture passed where a field is expected
    (``as_path``'s message says how to build the path); anything else is duck-typed later."""
    from ..mixture import GMM, LabeledGMM
    from ..paths import path_hint

    if isinstance(field, (str, bytes, GMM, LabeledGMM)):
        raise TypeError(
            f"{name} must be a field (an object with velocity(x, t)) or a GMMPath, got "
            f"{_describe(field)}{path_hint(field)}"
        )


def with_labels(field, y=None, w=None):
    """The field with labels ``y`` and/or guidance weight ``w`` replaced (per call).

    field: a GMMPath (y alone: conditional field u(x|y); y and w: CFG, eq. 65), an ExactField (same),
    a CFGField or a ClassifierGuidedField (y and/or w replace theirs). y may be an (n,) int array of
    per-particle labels (NULL = -1 entries are unconditional); w a float or an (n,) array."""
    if y is None and w is None:
        return field
    from ..guidance import CFGField, ClassifierGuidedField, ExactField
    from ..paths import GMMPath

    tp = type(field)
    if tp is GMMPath or tp is ExactField:
        path = field if tp is GMMPath else field.path
        yy = y if y is not None else (None if tp is GMMPath else field.y)
        if w is None:
            return ExactField(path, yy)
        if yy is None:
            raise ValueError("w needs a label: pass y (the class to guide towards) with w")
        return CFGField(path, yy, w)
    if tp is CFGField or tp is ClassifierGuidedField:
        return tp(field.path, field.y if y is None else y, field.w if w is None else w)
    raise TypeError(
        f"y= and w= need a GMMPath, ExactField, CFGField or ClassifierGuidedField, got "
        f"{_describe(field)}; build the guided field yourself for other fields"
    )


AUTO_NUMPY_WORK = 4.0e6
"""Largest ``auto_work`` that ``backend="auto"`` runs on NumPy. Measured on the 2-core reference
machine (verification/bench_auto_backend.py): NumPy takes 150-400 ns of CPU per unit at d = 2
(the slowest kinds; 60-100 ns at d = 16), so at most about 1.1-1.6 s of CPU at this size, while the
kernels' first compile costs 15-20 s of CPU (verification/bench_compile.py) and, warm, they run
such a job 14-80x faster (docs/performance.md, "Cold start")."""

AUTO_EVAL_OVERHEAD = 1000
"""The NumPy integrator's fixed cost of one field evaluation (its Python and array set-up), in
units of ``auto_work`` (measured: 0.3-0.7 ms of CPU, as much as ~1000 particle-component-
coordinates at d = 2)."""


def auto_work(field, n, steps, sampler, d=None) -> float:
    """The size of a sampling job for the "auto" rule: steps x evals x (n x K x d +
    ``AUTO_EVAL_OVERHEAD``), the particle-component-coordinates of every field evaluation (evals
    per step: the ODE sampler's stages, 2 for Euler-Maruyama, whose step evaluates the velocity
    and the score; K the components the field's lowering tabulates, summed over its distinct
    paths, ``field_size``; d the dimension, the field's unless given) plus the fixed cost of each
    evaluation. The NumPy integrator's time grows with it; its time
    per unit falls as d grows (measured 150-400 ns of CPU at d = 2, 60-100 ns at d = 16), so the
    threshold, set at d = 2, bounds the NumPy time at every d measured."""
    K, _ = field_size(field)
    d = getattr(field, "d", None) if d is None else d
    per_step = 2 if sampler in SDE_SAMPLERS else tableau(sampler).stages
    evals = float(steps) * float(per_step)
    return evals * (float(n) * float(K) * float(d or 1) + AUTO_EVAL_OVERHEAD)


_INPUTS_ON_KERNELS: ContextVar[bool] = ContextVar("refcfg_inputs_on_kernels", default=True)


def inputs_on_kernels() -> bool:
    """Whether a nonlinear rule's exact input fields are evaluated on the CPU kernels (the
    evaluator ``refcfg.sampling`` registers with ``guidance.nonlinear.register_input_velocity``):
    inside ``sample`` as its backend choice says (the "auto" rule on the job's size, input fields'
    components included; never for backend="numpy"), elsewhere yes (a direct ``velocity`` call)."""
    return _INPUTS_ON_KERNELS.get()


def resolve_backend(backend, field, work=None) -> str:
    """The backend a call runs on. The fast backends run only fields that the one lowering
    (``refcfg.sampling.lowering``) accepts.

    "auto" -> "numpy" when the field does not lower, when numba cannot be imported, or when
    ``work`` (``auto_work`` of the call; None: not a sampling job of known size) is at most
    ``AUTO_NUMPY_WORK``; else "cpu". Below that size the NumPy integrator takes at most about
    1.1-1.6 s of CPU on a 2-core machine while the kernels' first compile costs 15-20 s; above it
    the kernels' speed wins (docs/performance.md, "Cold start"). The rule reads the call's arguments
    only, never the cache, so a call's result does not depend on what is compiled.

    "cpu" or "cuda" with a field that does not lower -> TypeError (a ``NotLowerable``) saying why
    and naming backend='numpy'; "cuda" is then checked for availability (RuntimeError naming the
    reason)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "numpy":
        return backend
    from . import lowering

    if backend == "auto":
        if work is not None and work <= AUTO_NUMPY_WORK:
            return "numpy"
        from . import cpu

        return "cpu" if lowering.is_lowerable(field) and cpu.available() else "numpy"
    lowering.require_lowerable(field, backend)
    if backend == "cpu":
        from . import cpu

        if not cpu.available():  # pragma: no cover - numba is a dependency
            raise RuntimeError("backend='cpu' needs numba, which cannot be imported")
    else:
        from . import cuda

        cuda.require()
    return backend


def field_size(field) -> tuple[int, int]:
    """(K, dd) of a field for the memory estimates: the mixture components its lowering tabulates
    (summed over its distinct paths) and dd = 1 when every covariance is isotropic, else d. A field
    that does not lower gives its ``path``'s sizes when it has one, else (1, 1)."""
    from ..guidance.base import NotLowerable, linear_terms

    try:
        paths: list = []
        for term in linear_terms(field):
            if not any(term.path is p for p in paths):
                paths.append(term.path)
    except (NotLowerable, ValueError):
        inputs = [getattr(field, a, None) for a in ("cond", "ref")]
        if all(f is not None for f in inputs):  # a nonlinear rule: its two input fields' sizes
            sizes = [field_size(f) for f in inputs]
            return sum(k for k, _ in sizes), max(dd for _, dd in sizes)
        path = getattr(field, "path", None)
        paths = [path] if hasattr(getattr(path, "mixture", None), "marginal") else []
    if not paths:
        return 1, 1
    K = sum(p.mixture.marginal.K for p in paths)
    iso = all(p.mixture.marginal.cov_type == "isotropic" for p in paths)
    return K, 1 if iso else paths[0].d


_FIELD_CHUNK = (
    1 << 22
)  # elements of the NumPy core's largest (n, K, d) temporary (``refcfg.paths``)
# lanes of the CPU kernels (``cpu._lanes``): 256 where K d <= 32, at most 64 otherwise
_CPU_LANES = (32, 256, 64)


def sample_memory(
    n,
    d,
    steps,
    sampler="heun",
    *,
    K=1,
    dd=1,
    backend="numpy",
    kept=0,
    noise=False,
    divergence=False,
) -> float:
    """Estimated peak memory in bytes of integrating n particles in dimension d over ``steps`` steps
    (an upper bound of the arrays held at once; ``refcfg.sample`` and ``log_likelihood`` refuse, with
    ``refcfg._limits.require_memory``, what cannot fit before any work).

    K, dd: the field's tabulated components and covariance width (``field_size``); backend: "numpy"
    (stage slopes and field temporaries of the reference integrator) or "cpu"/"cuda" (the per-time
    tables of every stage time, T = steps x stages rows of K (1 + 2 dd) values, their temporaries,
    and the kernels' per-thread scratch); kept: trajectory states returned; noise: a given
    (steps, n, d) noise array (copied once); divergence: the likelihood's augmented state."""
    n, d, steps, K, dd = (float(v) for v in (n, d, steps, K, dd))
    s = float(tableau(sampler).stages)
    nd = 8.0 * n * d
    grid = 8.0 * (steps + 1) * (3.0 + s)  # ts, sigma, stage times
    extra = (steps * nd if noise else 0.0) + (8.0 * n * (s + 3) if divergence else 0.0)
    if backend == "numpy":
        # x, the result, s stage slopes and inputs, the field's outputs (CFG: two label sets)
        # and its chunked (n, K, d) temporaries; the trajectory's states and their stacked copy
        field = 8.0 * min(n * K * d, _FIELD_CHUNK) * 6.0
        return grid + extra + (2.0 * s + 12.0) * nd + field + 2.0 * kept * nd
    import os

    tables = steps * _table_bytes_per_step(sampler, K, dd)
    threads = float(os.cpu_count() or 1)
    lanes = _CPU_LANES[1] if K * d <= _CPU_LANES[0] else _CPU_LANES[2]
    scratch = threads * 8.0 * lanes * (6.0 * K + 2.0 * K * d + 8.0 * d + 16.0)
    return grid + extra + 4.0 * nd + kept * nd + tables + scratch


def _table_bytes_per_step(sampler, K, dd) -> float:
    """Bytes of the fast backends' per-time tables for one step: ``stages`` rows of K (1 + 2 dd)
    values (cst, invs, gain), three times over for the temporaries of ``Lowered.tables``."""
    return 8.0 * tableau(sampler).stages * float(K) * (1.0 + 2.0 * float(dd)) * 3.0


def _segment_steps(need, n_steps, sampler, K, dd) -> int | None:
    """Steps per segment for a CPU ODE run whose tables alone keep it from fitting: the largest
    segment whose tables fit beside the rest (None: no segmenting needed, or none would fit)."""
    from .._limits import MEMORY_FRACTION, available_memory

    budget = MEMORY_FRACTION * available_memory()
    if need <= budget:
        return None
    per = _table_bytes_per_step(sampler, K, dd)
    seg = int((budget - (need - n_steps * per)) // per) if per > 0 else 0
    return seg if 1 <= seg < n_steps else None


def _kept(steps: int, every) -> int:
    """Number of states a trajectory keeps (the first, every k-th and the last)."""
    return 0 if not every else steps // every + 2


def sample(
    field,
    n,
    sampler="heun",
    steps=100,
    seed=None,
    *,
    t_grid=None,
    t_start=0.0,
    t_end=1.0,
    sigma=None,
    backend="auto",
    x_init=None,
    noise=None,
    return_trajectory=False,
    trajectory_every=1,
    y=None,
    w=None,
    dtype="float64",
):
    """Samples at t_end from x(t_start) ~ N(0, I) (or ``x_init``) by integrating ``field``.

    Parameters
    ----------
    field : any object with velocity(x, t) (and score(x, t) for the SDE): exact, guided or learned;
        a GMMPath means its unconditional field.
    n : number of particles.
    sampler : an explicit Runge-Kutta method on the probability-flow ODE (any name in
        ``refcfg.sampling.steppers.TABLEAUS``, e.g. "euler", order 1, or "rk4", order 4), or
        "euler_maruyama" (SDE eq. 44, dX = [u + sigma_t^2/2 score] dt + sigma_t dW, which has the
        ODE's marginals for any sigma_t; a guided SDE uses the guided score). The methods are the
        tables of ``refcfg.sampling.steppers``.
    steps, t_start, t_end, t_grid : a uniform grid of ``steps`` steps, or an explicit increasing grid.
    seed : int, None or np.random.Generator (see the module docstring for how noise is drawn).
    sigma : SDE diffusion: float, callable sigma(t), or "ddpm" (sigma_t^2 = 2 a_t; ODE step where
        alpha_t = 0).
    backend : "auto" | "numpy" | "cpu" | "cuda". "auto" runs NumPy for fields that do not lower and
        for small jobs (``auto_work`` <= ``AUTO_NUMPY_WORK``, e.g. 1000 particles x 100 Heun steps
        on a 2-d problem with a few components), the CPU kernels otherwise (``resolve_backend``).
    x_init : (n, d) initial points instead of N(0, I) draws; noise : (steps, n, d) standard normals.
    return_trajectory : also return the states every ``trajectory_every`` steps (and the last).
    y, w : per-call labels ((n,) array allowed) and guidance weight (CFG eq. 65, w = 1 + omega for
        Ho-Salimans' omega); see ``with_labels``.
    dtype : "float64" (all backends) or "float32" (cuda only).

    Returns (n, d) samples, or (samples, trajectory (T, n, d), times (T,)).

    Limits (every backend): a run whose estimated peak memory (``sample_memory``: n, d, steps, the
    trajectory, the field's components) cannot fit is refused before any work; |w| <= 1e6 and
    |x_init| <= 1e100 (``refcfg._validation.W_MAX``, ``X_MAX``); a run whose state leaves
    |x| <= 1e100 raises "sampling diverged" instead of returning inf or NaN.
    """
    field = _as_field(field, y, w)
    job = _check_job(
        field, n, sampler, steps, t_grid, x_init, dtype, return_trajectory, trajectory_every
    )
    work = auto_work(field, job.n, job.n_steps, sampler, job.d)
    be = resolve_backend(backend, field, work=work)
    if job.dtype == "float32" and be != "cuda":
        raise ValueError(f"dtype='float32' is only supported by backend='cuda', got backend={be!r}")
    seg = _reserve_memory(field, job, sampler, be, noise is not None)
    ts = time_grid(steps, t_start, t_end, t_grid)
    rng = as_generator(seed)
    x0 = rng.standard_normal((job.n, job.d)) if job.x0 is None else job.x0
    sig, noise = _sde_inputs(field, sampler, be, sigma, noise, ts, x0.shape)
    # a nonlinear rule's exact inputs go to the CPU kernels only where "auto" would run a lowerable
    # field of this size there: backend="numpy" and small jobs stay on NumPy (compile nothing)
    token = _INPUTS_ON_KERNELS.set(backend == "auto" and work > AUTO_NUMPY_WORK)
    try:
        out = _dispatch(be, field, x0, ts, sampler, sig, noise, rng, job.every, seg, job.dtype)
    finally:
        _INPUTS_ON_KERNELS.reset(token)
    # the compiled integrators do not stop on the way: the NumPy backend's error, from the result
    for part in out[:2] if job.every else (out,):
        require_bounded_state(part)
    return out


def _as_field(field, y, w):
    """The field a call integrates: a GMMPath is its unconditional exact field, ``y``/``w``
    replace the labels and weight (``with_labels``); TypeError for what has no velocity."""
    from ..paths import GMMPath

    require_field(field)
    if isinstance(field, GMMPath) and y is None and w is None:
        from ..guidance import ExactField

        field = ExactField(field, None)
    field = with_labels(field, y, w)
    if not callable(getattr(field, "velocity", None)):
        raise TypeError(f"field must have a velocity(x, t) method, got {_describe(field)}")
    return field


@dataclass(frozen=True)
class _Job:
    """The checked sizes of one ``sample`` call."""

    n: int
    d: int
    n_steps: int
    every: int | None  # trajectory_every when the trajectory is returned
    x0: np.ndarray | None  # the given x_init, checked
    dtype: str


def _check_job(
    field, n, sampler, steps, t_grid, x_init, dtype, return_trajectory, trajectory_every
) -> _Job:
    """Every size argument of ``sample`` checked (ValueError naming it) before any work."""
    n = as_positive_int(n, "n")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if dtype not in ("float64", "float32", np.float64, np.float32):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    every = as_positive_int(trajectory_every, "trajectory_every") if return_trajectory else None
    d = getattr(field, "d", None)
    x0 = None
    if x_init is not None:
        x0 = as_float_array(x_init, "x_init", ndim=2)
        if x0.shape[0] != n or (d is not None and x0.shape[1] != d):
            raise ValueError(f"x_init has shape {x0.shape} but ({n}, {d}) is required")
        x0 = as_points(x0, x0.shape[1], "x_init", copy=False)
        d = x0.shape[1]
    elif d is None:
        raise ValueError("field has no attribute d: pass x_init to fix the dimension")
    n_steps = (
        as_float_array(t_grid, "t_grid", ndim=1).shape[0] - 1
        if t_grid is not None
        else as_positive_int(steps, "steps")
    )
    return _Job(n, d, n_steps, every, x0, np.dtype(dtype).name)


def _reserve_memory(field, job: _Job, sampler, be, noise: bool):
    """Refuse (``require_memory``) a run that cannot fit, from the arguments alone, before any grid
    or state is allocated. Returns the steps per time segment of a long CPU ODE run whose per-time
    tables alone would not fit (None: one piece)."""
    K, dd = field_size(field)
    n_steps = job.n_steps
    need = sample_memory(
        job.n,
        job.d,
        max(n_steps, 1),
        sampler,
        K=K,
        dd=dd,
        backend=be,
        kept=_kept(n_steps, job.every),
        noise=noise,
    )
    seg = None
    if be == "cpu" and sampler not in SDE_SAMPLERS and job.every is None:
        # each segment has its own tables, the state carried between them
        seg = _segment_steps(need, n_steps, sampler, K, dd)
        if seg is not None:
            need -= (n_steps - seg) * _table_bytes_per_step(sampler, K, dd)
    require_memory(
        need,
        f"sampling {job.n} particles over {n_steps} steps"
        + (" keeping the trajectory" if job.every else ""),
        "n or steps" + (" (or raise trajectory_every)" if job.every else ""),
    )
    return seg


def _sde_inputs(field, sampler, be, sigma, noise, ts, shape):
    """(sigma_t on the grid, the checked noise) for the SDE; (None, None) for the ODE samplers,
    which refuse sigma= and noise=."""
    if sampler not in SDE_SAMPLERS:
        if sigma is not None:
            raise ValueError(
                f"sigma is only used by sampler='euler_maruyama', got sampler={sampler!r}"
            )
        if noise is not None:
            raise ValueError(
                f"noise is only used by sampler='euler_maruyama', got sampler={sampler!r}"
            )
        return None, None
    if be == "numpy" and not callable(getattr(field, "score", None)):
        raise TypeError("sampler='euler_maruyama' needs a field with a score(x, t) method")
    sig = sigma_values(sigma, ts, getattr(field, "schedule", None))
    sig = np.where(np.isfinite(sig), sig, 0.0)  # "ddpm" at alpha_t = 0: ODE step (docstring)
    if noise is not None:
        noise = as_float_array(noise, "noise")
        if noise.shape != (len(ts) - 1,) + tuple(shape):
            raise ValueError(
                f"noise has shape {noise.shape} but ({len(ts) - 1}, {shape[0]}, "
                f"{shape[1]}) is required"
            )
    return sig, noise


def _dispatch(be, field, x0, ts, sampler, sig, noise, rng, every, seg, dtype):
    """Run the integrator of backend ``be``. The SDE's counter-stream key of the compiled backends
    is drawn from ``rng`` after x(t_start) (module docstring)."""
    if be == "numpy":
        # checks the state before every field evaluation and at the end (require_bounded_state)
        return reference.integrate(field, x0, ts, sampler, sig, noise, rng, every)
    sde_key = sampler in SDE_SAMPLERS and noise is None
    if be == "cpu":
        from . import cpu

        key = int(rng.integers(0, 1 << 63)) if sde_key else 0
        if seg is None:
            return cpu.integrate(field, x0, ts, sampler, sig, noise, key, every)
        out = x0
        for a in range(0, len(ts) - 1, seg):
            out = cpu.integrate(field, out, ts[a : a + seg + 1], sampler)
        return out
    from . import cuda

    return cuda.sample(
        field,
        x0,
        ts,
        sampler,
        sigma_values=sig,
        noise=noise,
        seed=int(rng.integers(0, 1 << 63)) if sde_key else None,
        dtype=dtype,
        trajectory_every=every,
    )
