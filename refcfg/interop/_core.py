"""The framework-free part of the adapters: exact predictions of a field in NumPy, the opt-in clamp
for adaptive solvers, and the map from another library's (signal, noise) convention to refcfg's t.

Predictions of a field at (x, t) on refcfg's path x = alpha_t z + beta_t eps (t = 0 noise, t = 1
data), with x0 = E[z|x] and eps = E[eps|x]:

- "velocity": the field's velocity (eq. 18; a guided field: its combination, e.g. eq. 65);
- "score":    its score (Tweedie: score = -eps / beta_t);
- "x0":       the data prediction;
- "eps":      the noise prediction;
- "v":        alpha_t eps - beta_t x0, the v-prediction of Salimans and Ho with their (alpha, sigma)
              read as refcfg's (alpha_t, beta_t).

Backends: "numpy" calls the field's own closed forms (``field.velocity/score/x0/eps``; any field);
"cpu" evaluates velocity and score with the Numba kernels (``refcfg.sampling.cpu``; lowerable
fields) and gets x0 and eps from them through ``refcfg.convert``; "auto" takes "cpu" when the field
lowers and "numpy" otherwise.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .._validation import _describe, as_float_array
from ..guidance.spaces import v_prediction

__all__ = [
    "PREDICTIONS",
    "BACKENDS",
    "OUTPUTS",
    "resolve_field",
    "as_shape",
    "flat_shape",
    "clamp_times",
    "predict",
    "predict_many",
    "predict_signal_noise",
    "output_coefficients",
    "time_from_signal_noise",
    "signal_noise_from_alphas_cumprod",
    "edm_denoise",
]

PREDICTIONS = ("velocity", "eps", "x0", "score", "v")
BACKENDS = ("auto", "cpu", "numpy")
OUTPUTS = ("epsilon", "sample", "v_prediction", "flow")
"""Outputs in the (signal, noise) convention x' = signal x0 + noise eps of diffusion libraries:
eps, x0, v = signal eps - noise x0, and the flow eps - x0 (``output_coefficients``)."""


def output_coefficients(output, signal, noise) -> tuple[np.ndarray, np.ndarray]:
    """(c_eps, c_x0), arrays of signal's and noise's broadcast shape: the library output
    ``output`` (one of ``OUTPUTS``) is c_eps eps + c_x0 x0. The one table of the outputs, used for
    their values (:func:`predict_signal_noise`) and their vector-Jacobian products
    (``refcfg.interop._jacobian.signal_noise_vjp``)."""
    check_prediction(output, OUTPUTS, "output")
    a, s = np.broadcast_arrays(
        np.asarray(signal, dtype=np.float64), np.asarray(noise, dtype=np.float64)
    )
    one, zero = np.ones_like(a), np.zeros_like(a)
    return {
        "epsilon": (one, zero),
        "sample": (zero, one),
        "v_prediction": (a, -s),
        "flow": (one, -one),
    }[output]


def check_prediction(prediction, choices=PREDICTIONS, name: str = "prediction") -> str:
    """``prediction`` if it is one of ``choices``; TypeError for a non-string, ValueError else."""
    if not isinstance(prediction, str):
        raise TypeError(f"{name} must be one of {choices}, got {_describe(prediction)}")
    if prediction not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {prediction!r}")
    return prediction


def as_shape(shape, d: int, name: str = "shape"):
    """``shape`` (None, or a tuple of positive ints, e.g. a latent's (channels, height, width)) checked
    against the field's dimension: prod(shape) must equal d. Returns None or a tuple of ints."""
    if shape is None:
        return None
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__iter__"):
        raise TypeError(f"{name} must be None or a tuple of positive ints, got {_describe(shape)}")
    out = []
    for n in shape:
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, numbers.Integral) or n < 1:
            raise TypeError(
                f"{name} must be None or a tuple of positive ints, got {_describe(shape)}"
            )
        out.append(int(n))
    if not out:
        raise ValueError(f"{name} must have at least one entry, got ()")
    if math.prod(out) != d:
        raise ValueError(
            f"{name} {tuple(out)} has {math.prod(out)} entries but the field has "
            f"d = {d}; prod({name}) = d is required"
        )
    return tuple(out)


def flat_shape(xshape, d: int, shape=None, name: str = "x") -> tuple[int, int]:
    """(N, d) for an input of shape ``xshape`` = (N, *s): s must be (d,), or ``shape`` when one is
    declared, or (without ``shape``) any s with prod(s) = d. ValueError naming ``name`` otherwise.
    The adapters evaluate the flattened (N, d) points and give the result back as (N, *s)."""
    xshape = tuple(int(n) for n in xshape)
    s = xshape[1:]
    ok = len(xshape) >= 2 and (
        s == (d,) or (s == shape if shape is not None else math.prod(s) == d)
    )
    if not ok:
        want = (
            f"(N, {d}) or (N, {', '.join(map(str, shape))})"
            if shape is not None
            else f"(N, {d}) or (N, *shape) with prod(shape) = {d}"
        )
        raise ValueError(f"{name} has shape {xshape} but the field (d = {d}) requires {want}")
    return xshape[0], d


def resolve_field(field, y=None, w=None):
    """The field object the adapters evaluate: ``field`` is a GMMPath, a problem name (linear
    schedule), or a field object (anything with ``velocity(x, t)`` and ``d``); y and/or w replace
    its labels / guidance weight (``refcfg.sampling.api.with_labels``: y alone gives u(x|y), y and w
    the CFG field w u(x|y) + (1 - w) u(x|null), eq. 65)."""
    from ..paths import GMMPath
    from ..sampling.api import with_labels

    if isinstance(field, str):
        from ..problems import resolve

        field = resolve(field).path
    if isinstance(field, GMMPath) and y is None and w is None:
        return field.field(None)
    if not hasattr(field, "velocity") or not hasattr(field, "d"):
        raise TypeError(
            f"field must be a GMMPath, a problem name or a field object with "
            f"velocity(x, t) and d, got {_describe(field)}"
        )
    return with_labels(field, y, w)


def _field_object(field):
    """``predict``'s field: a field object (or a GMMPath: its unconditional field); a problem name
    or anything else is a TypeError naming the argument."""
    from ..paths import GMMPath

    if isinstance(field, GMMPath):
        return field.field(None)
    if isinstance(field, (str, bytes)) or not hasattr(field, "velocity") or not hasattr(field, "d"):
        raise TypeError(
            f"field must be a field object (e.g. path.field(y), path.cfg(y, w)) or a "
            f"GMMPath, got {_describe(field)}; the adapters (ExactModule ...) also "
            f"take problem names"
        )
    return field


def clamp_times(t, clamp):
    """t as float64, checked against [0, 1]. ``clamp`` None (the default everywhere): any t outside
    [0, 1] raises ValueError. ``clamp`` = a tolerance tol in (0, 0.5]: times in [-tol, 0) and
    (1, 1 + tol] are set to 0 and 1 (adaptive solvers that step past the end of the interval and
    interpolate back, as torchdiffeq's dopri5 does, evaluate stages there: up to 0.10 past the end
    measured, verification/solver_overshoot.py); times further out still raise. The exact fields
    are never evaluated outside [0, 1]."""
    if isinstance(t, (bool, np.bool_)):
        raise TypeError(f"t must be a float or an array of floats, got {t!r}")
    t = as_float_array(t, "t")
    if clamp is not None:
        if isinstance(clamp, bool) or not isinstance(clamp, numbers.Real):
            raise TypeError(
                f"clamp must be None or a tolerance in (0, 0.5], got {_describe(clamp)}"
            )
        if not 0 < clamp <= 0.5:
            raise ValueError(f"clamp must be None or a tolerance in (0, 0.5], got {clamp!r}")
    tol = 0.0 if clamp is None else float(clamp)
    bad = (t < -tol) | (t > 1.0 + tol)
    if np.any(bad):
        worst = float(np.asarray(t)[bad].flat[0])
        hint = (
            "; pass clamp=tol to accept an adaptive solver's overshoot"
            if clamp is None
            else f" (clamp={clamp} accepts [{-tol}, {1 + tol}])"
        )
        raise ValueError(f"t must lie in [0, 1], got {worst!r}{hint}")
    return np.clip(t, 0.0, 1.0)


def _backend(field, backend):
    """The backend that evaluates ``field``: "numpy" or "cpu"; ValueError naming ``backend`` for an
    unknown name, NotLowerable for "cpu" on a field that does not lower. The adapters call it at
    construction, so a bad backend fails before the first evaluation."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "numpy":
        return "numpy"
    from ..sampling import cpu

    if backend == "auto":
        return "cpu" if cpu.supports(field) else "numpy"
    if not cpu.supports(field):
        from ..sampling.lowering import require_lowerable

        require_lowerable(field, "cpu")  # raises NotLowerable naming backend='numpy'
    return "cpu"


def predict(
    field, x, t, prediction="velocity", *, backend="auto", clamp=None, shape=None
) -> np.ndarray:
    """The exact ``prediction`` (one of ``PREDICTIONS``) of ``field`` (a field object or a GMMPath)
    at x, t (a float or (N,)), float64 of x's shape. x is (N, d), or (N, *shape) with prod(shape) = d
    (image-shaped latents; ``shape`` declares the one accepted, see :func:`flat_shape`). ``clamp``:
    see :func:`clamp_times` (None: strict)."""
    return predict_many(field, x, t, (prediction,), backend=backend, clamp=clamp, shape=shape)[
        prediction
    ]


def predict_many(field, x, t, predictions, *, backend="auto", clamp=None, shape=None) -> dict:
    """Several predictions from one evaluation of the field: {name: float64 array of x's shape}."""
    field = _field_object(field)
    if isinstance(predictions, str):
        raise TypeError(
            f"predictions must be a sequence of names from {PREDICTIONS}, got {predictions!r}"
        )
    for p in predictions:
        check_prediction(p)
    x = as_float_array(x, "x")
    shape = as_shape(shape, field.d)
    xshape = x.shape
    flat_shape(xshape, field.d, shape)
    x = x.reshape(xshape[0], field.d)
    out = _predict_flat(field, x, t, predictions, backend, clamp)
    return {p: v.reshape(xshape) for p, v in out.items()}


def _predict_flat(field, x, t, predictions, backend, clamp) -> dict:
    t = clamp_times(t, clamp)
    if t.ndim not in (0, 1) or (t.ndim == 1 and t.shape != (x.shape[0],)):
        raise ValueError(f"t must be a float or shape ({x.shape[0]},), got shape {t.shape}")
    t = float(t) if t.ndim == 0 else t
    how = _backend(field, backend)
    if how == "numpy":
        out = {}
        for p in predictions:
            if p == "v":
                out[p] = v_prediction(field.eps(x, t), field.x0(x, t), t, field.schedule)
            else:
                out[p] = np.asarray(getattr(field, p)(x, t), dtype=np.float64)
        return out
    from ..sampling import cpu

    return from_velocity_score(
        field.schedule,
        x,
        t,
        predictions,
        lambda: cpu.velocity(field, x, t),
        lambda: cpu.score(field, x, t),
        exact=lambda rows: _predict_flat(
            field, x[rows], _rows(t, rows), predictions, "numpy", None
        ),
    )


def _rows(t, rows):
    return t if np.ndim(t) == 0 else np.asarray(t)[rows]


CONVERSION_RTOL = 1e-9
"""Largest rounding error, relative to 1 + |x0|, that x0 from the velocity may carry on the fast
backends; rows beyond it (|x| far beyond the data, where beta u and dbeta x cancel: at t = 0,
x0 = u + x for the linear schedule) are computed by the NumPy core instead."""


def _ill_conditioned(sched, x, t, u, x0, eps) -> np.ndarray:
    """Rows whose x0 = (beta u - dbeta x) / D, or eps = (dalpha x - alpha u) / D where beta_t = 0
    (``refcfg.convert``), may be off by more than CONVERSION_RTOL: the bound is the float64
    rounding of the two products, e.g. eps (|beta u| + |dbeta x|) / |D|, with max norms
    (non-finite coefficients count as ill-conditioned)."""

    def coef(f):
        return np.abs(np.asarray(f(t), dtype=np.float64))

    with np.errstate(all="ignore"):
        al, be, da, db, D = (
            coef(f) for f in (sched.alpha, sched.beta, sched.dalpha, sched.dbeta, sched.D)
        )
        un, xn = np.max(np.abs(u), axis=1), np.max(np.abs(x), axis=1)
        tiny = np.finfo(np.float64).eps
        ok = tiny * (be * un + db * xn) / D <= CONVERSION_RTOL * (1.0 + np.max(np.abs(x0), axis=1))
        ok_eps = tiny * (da * xn + al * un) / D <= CONVERSION_RTOL * (
            1.0 + np.max(np.abs(eps), axis=1)
        )
        ok &= np.where(be > 0, True, ok_eps)  # eps comes from the velocity only where beta_t = 0
    return ~ok


def from_velocity_score(sched, x, t, predictions, velocity, score, exact=None) -> dict:
    """{prediction: (N, d)} from kernels that give the velocity and the score: ``velocity()`` and
    ``score()`` are called at most once each, only when needed; x0 from the velocity
    (``refcfg.convert``), eps = -beta s (Tweedie) where beta_t > 0 and from the velocity where
    beta_t = 0, v from them (``refcfg.guidance.spaces.v_prediction``). Shared by the CPU and
    CUDA backends. Where that conversion is ill-conditioned (``_ill_conditioned``), x0, eps and v
    of those rows come from ``exact(rows) -> {prediction: array}`` (the NumPy core), so a fast
    backend never returns a finite but wrong prediction."""
    from .. import convert

    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = velocity() if name == "u" else score()
        return cache[name]

    out = {}
    for p in predictions:
        if p == "velocity":
            out[p] = get("u")
        elif p == "score":
            out[p] = get("s")
    need = {"x0", "eps", "v"} & set(predictions)
    if need:
        x0 = convert.velocity_to_x0(get("u"), x, t, sched)
        eps = _eps(sched, x, t, lambda: get("u"), lambda: get("s"))
        for p in need:
            out[p] = {"x0": x0, "eps": eps}[p] if p != "v" else v_prediction(eps, x0, t, sched)
        bad = _ill_conditioned(sched, x, t, get("u"), x0, eps) if exact is not None else None
        if bad is not None and np.any(bad):
            rows = np.flatnonzero(bad)
            fixed = exact(rows)
            for p in need:
                out[p][rows] = fixed[p]
    return out


def _eps(sched, x, t, u, score):
    """eps from the score (-beta s, Tweedie) where beta_t > 0, else from the velocity."""
    from .. import convert

    be = np.broadcast_to(np.asarray(sched.beta(t), dtype=np.float64), np.shape(t))
    if np.all(be > 0):
        return -np.reshape(be, (-1, 1)) * score()
    out = convert.velocity_to_eps(u(), x, t, sched)
    if np.any(be > 0):
        pos = be > 0
        s = score()
        out[pos] = -be[pos, None] * s[pos]
    return out


def time_from_signal_noise(schedule, signal, noise):
    """refcfg's t and the scale c for another library's x' = signal x0 + noise eps: t solves
    alpha_t / beta_t = signal / noise (the same signal-to-noise ratio) and x = c x' with
    c = alpha_t / signal (or beta_t / noise where signal = 0) is refcfg's x_t. Closed form for the
    "linear" schedule (t = signal / (signal + noise)); bisection on the ratio otherwise (to 1 ulp
    of t). signal, noise: arrays >= 0, not both 0. Returns (t, c) as float64 arrays."""
    if not all(hasattr(schedule, k) for k in ("alpha", "beta", "name")):
        raise TypeError(
            f"schedule must be a refcfg Schedule (e.g. refcfg.schedule('linear') or "
            f"path.schedule), got {_describe(schedule)}"
        )
    a = np.atleast_1d(as_float_array(signal, "signal"))
    s = np.atleast_1d(as_float_array(noise, "noise"))
    try:
        a, s = np.broadcast_arrays(a, s)
    except ValueError:
        raise ValueError(
            f"signal and noise must broadcast, got shapes {a.shape} and {s.shape}"
        ) from None
    if (
        np.any(~np.isfinite(a))
        or np.any(~np.isfinite(s))
        or np.any(a < 0)
        or np.any(s < 0)
        or np.any(a + s == 0)
    ):
        raise ValueError("signal and noise coefficients must be finite, >= 0 and not both 0")
    if schedule.name == "linear":
        t = a / (a + s)
    else:
        # alpha/beta increases in t: bisect on alpha_t s - beta_t a (sign change over [0, 1])
        lo, hi = np.zeros_like(a), np.ones_like(a)
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            f = schedule.alpha(mid) * s - schedule.beta(mid) * a
            lo, hi = np.where(f < 0, mid, lo), np.where(f < 0, hi, mid)
        t = 0.5 * (lo + hi)
    al = np.asarray(schedule.alpha(t), dtype=np.float64)
    be = np.asarray(schedule.beta(t), dtype=np.float64)
    c = np.where(a > 0, al / np.where(a > 0, a, 1.0), be / np.where(s > 0, s, 1.0))
    return t, c


def signal_noise_from_alphas_cumprod(alphas_cumprod, timestep) -> tuple[np.ndarray, np.ndarray]:
    """(signal, noise) of a discrete-time diffusion x' = sqrt(acp) x0 + sqrt(1 - acp) eps at
    ``timestep`` k (a number or array in [0, T - 1]) with acp = alphas_cumprod[k] (T entries, in
    (0, 1]). A fractional k interpolates the noise level sigma = sqrt((1 - acp) / acp) linearly in k
    (as diffusers' Euler-type schedulers do) with signal = 1 / sqrt(1 + sigma^2), noise = sigma
    signal. The one map from a training timestep to (signal, noise)."""
    acp = as_float_array(alphas_cumprod, "alphas_cumprod", ndim=1)
    T = acp.shape[0]
    if T < 1 or np.any(acp <= 0) or np.any(acp > 1):
        raise ValueError(
            f"alphas_cumprod must be a non-empty 1-D array with entries in (0, 1], got "
            f"values in [{float(acp.min()) if T else 0!r}, "
            f"{float(acp.max()) if T else 0!r}]"
        )
    if isinstance(timestep, (bool, np.bool_)):
        raise TypeError(f"timestep must be a number or an array of numbers, got {timestep!r}")
    k = np.atleast_1d(as_float_array(timestep, "timestep"))
    if k.ndim != 1:
        raise ValueError(f"timestep must be a number or a 1-D array, got shape {k.shape}")
    if np.any(k < 0) or np.any(k > T - 1):
        raise ValueError(
            f"timestep must lie in [0, {T - 1}] (the length of alphas_cumprod), got "
            f"{k[(k < 0) | (k > T - 1)][0]!r}"
        )
    whole = k == np.round(k)
    a = np.empty_like(k)
    s = np.empty_like(k)
    ki = np.round(k[whole]).astype(np.int64)
    a[whole], s[whole] = np.sqrt(acp[ki]), np.sqrt(1.0 - acp[ki])
    if not np.all(whole):
        sig = np.interp(k[~whole], np.arange(T), np.sqrt((1.0 - acp) / acp))
        a[~whole] = 1.0 / np.sqrt(1.0 + sig * sig)
        s[~whole] = sig * a[~whole]
    return a, s


def _levels(v, name, n) -> np.ndarray:
    """A noise-level coefficient (signal or noise) as a 1-D float64 array of 1 or n entries."""
    a = np.atleast_1d(as_float_array(v, name))
    if a.ndim != 1 or a.shape[0] not in (1, n):
        raise ValueError(
            f"{name} must have 1 or {n} entries (one per row of x), got shape {np.shape(v)}"
        )
    return a


def predict_signal_noise(field, x, signal, noise, output, *, backend="auto", shape=None):
    """The exact ``output`` (one of ``OUTPUTS``) of ``field`` in another library's convention
    x' = signal x0 + noise eps, at x' = ``x`` ((N, d) or (N, *shape)); signal, noise: arrays of
    1 or N entries (:func:`time_from_signal_noise` maps them to refcfg's t and x_t = c x'). x0 and
    eps are the same posterior means in both conventions; v = signal eps - noise x0 and the flow
    eps - x0 are formed with the library's coefficients. float64 of x's shape."""
    check_prediction(output, OUTPUTS, "output")
    field = _field_object(field)
    x = as_float_array(x, "x")
    xshape = x.shape
    n, d = flat_shape(xshape, field.d, as_shape(shape, field.d))
    a, s = (_levels(v, name, n) for v, name in ((signal, "signal"), (noise, "noise")))
    t, c = time_from_signal_noise(field.schedule, a, s)
    t = clamp_times(t, None)
    xr = x.reshape(n, d) * c[:, None]
    ce, cx = (np.broadcast_to(k, (n,))[:, None] for k in output_coefficients(output, a, s))
    need = tuple(p for p, c in (("eps", ce), ("x0", cx)) if np.any(c != 0))
    got = _predict_flat(field, xr, float(t[0]) if t.shape[0] == 1 else t, need, backend, None)
    out = sum(c * got[p] for p, c in (("eps", ce), ("x0", cx)) if p in got)
    return out.reshape(xshape)


def edm_denoise(field, x, sigma, *, backend="auto", shape=None) -> np.ndarray:
    """The EDM denoiser D(x; sigma) = E[x0 | x = x0 + sigma eps] of ``field`` (Karras et al. 2022's
    convention, k-diffusion's): :func:`predict_signal_noise` with signal 1 and noise sigma (a float
    or N entries >= 0; sigma = 0 gives D(x; 0) = x). x: (N, d) or (N, *shape)."""
    sig = np.atleast_1d(as_float_array(sigma, "sigma"))
    if sig.ndim != 1:
        raise ValueError(f"sigma must be a float or a 1-D array, got shape {sig.shape}")
    if np.any(sig < 0):
        raise ValueError(f"sigma must be >= 0, got {float(sig.min())!r}")
    return predict_signal_noise(
        field, x, np.ones_like(sig), sig, "sample", backend=backend, shape=shape
    )
