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

import numbers

import numpy as np

from .._validation import as_float_array

__all__ = ["PREDICTIONS", "BACKENDS", "resolve_field", "clamp_times", "predict", "predict_many",
           "time_from_signal_noise"]

PREDICTIONS = ("velocity", "eps", "x0", "score", "v")
BACKENDS = ("auto", "cpu", "numpy")


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
    if not hasattr(field, "velocity"):
        raise TypeError(f"field must be a GMMPath, a problem name or a field object with "
                        f"velocity(x, t), got {type(field).__name__}")
    return with_labels(field, y, w)


def clamp_times(t, clamp):
    """t as float64, checked against [0, 1]. ``clamp`` None (the default everywhere): any t outside
    [0, 1] raises ValueError. ``clamp`` = a tolerance tol in (0, 0.1]: times in [-tol, 0) and
    (1, 1 + tol] are set to 0 and 1 (adaptive solvers such as dopri5 or solve_ivp evaluate a stage
    slightly past the end of the interval); times further out still raise. The exact fields are
    never evaluated outside [0, 1]."""
    t = np.asarray(t, dtype=np.float64)
    if clamp is not None:
        if isinstance(clamp, bool) or not isinstance(clamp, numbers.Real) or not 0 < clamp <= 0.1:
            raise ValueError(f"clamp must be None or a tolerance in (0, 0.1], got {clamp!r}")
    if not np.all(np.isfinite(t)):
        raise ValueError("t must be finite")
    tol = 0.0 if clamp is None else float(clamp)
    bad = (t < -tol) | (t > 1.0 + tol)
    if np.any(bad):
        worst = float(np.asarray(t)[bad].flat[0])
        hint = ("; pass clamp=tol to accept an adaptive solver's overshoot" if clamp is None else
                f" (clamp={clamp} accepts [{-tol}, {1 + tol}])")
        raise ValueError(f"t must lie in [0, 1], got {worst!r}{hint}")
    return np.clip(t, 0.0, 1.0)


def _backend(field, backend):
    if backend not in BACKENDS:
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


def predict(field, x, t, prediction="velocity", *, backend="auto", clamp=None) -> np.ndarray:
    """The exact ``prediction`` (one of ``PREDICTIONS``) of ``field`` at x (N, d), t (a float or
    (N,)), float64 (N, d). ``clamp``: see :func:`clamp_times` (None: strict)."""
    return predict_many(field, x, t, (prediction,), backend=backend, clamp=clamp)[prediction]


def predict_many(field, x, t, predictions, *, backend="auto", clamp=None) -> dict:
    """Several predictions from one evaluation of the field: {name: (N, d) float64}."""
    for p in predictions:
        if p not in PREDICTIONS:
            raise ValueError(f"prediction must be one of {PREDICTIONS}, got {p!r}")
    x = as_float_array(x, "x", ndim=2)
    t = clamp_times(t, clamp)
    if t.ndim not in (0, 1) or (t.ndim == 1 and t.shape != (x.shape[0],)):
        raise ValueError(f"t must be a float or shape ({x.shape[0]},), got shape {t.shape}")
    t = float(t) if t.ndim == 0 else t
    how = _backend(field, backend)
    out = {}
    if how == "numpy":
        for p in predictions:
            if p == "v":
                out[p] = _v(field.schedule, x, t, field.eps(x, t), field.x0(x, t))
            else:
                out[p] = np.asarray(getattr(field, p)(x, t), dtype=np.float64)
        return out
    from .. import convert
    from ..sampling import cpu
    sched = field.schedule
    u = cpu.velocity(field, x, t)
    cache = {}

    def score():
        if "s" not in cache:
            cache["s"] = cpu.score(field, x, t)
        return cache["s"]

    for p in predictions:
        if p == "velocity":
            out[p] = u
        elif p == "score":
            out[p] = score()
    need = {"x0", "eps", "v"} & set(predictions)
    if need:
        x0 = convert.velocity_to_x0(u, x, t, sched)
        eps = _eps(sched, x, t, u, score)
        for p in need:
            out[p] = {"x0": x0, "eps": eps}[p] if p != "v" else _v(sched, x, t, eps, x0)
    return out


def _eps(sched, x, t, u, score):
    """eps from the score (-beta s, Tweedie) where beta_t > 0, else from the velocity."""
    from .. import convert
    be = np.broadcast_to(np.asarray(sched.beta(t), dtype=np.float64), np.shape(t))
    if np.all(be > 0):
        return -np.reshape(be, (-1, 1)) * score()
    out = convert.velocity_to_eps(u, x, t, sched)
    if np.any(be > 0):
        pos = be > 0
        s = score()
        out[pos] = -be[pos, None] * s[pos]
    return out


def _v(sched, x, t, eps, x0):
    al = np.reshape(sched.alpha(t), (-1, 1))
    be = np.reshape(sched.beta(t), (-1, 1))
    return al * eps - be * x0


def time_from_signal_noise(schedule, signal, noise):
    """refcfg's t and the scale c for another library's x' = signal x0 + noise eps: t solves
    alpha_t / beta_t = signal / noise (the same signal-to-noise ratio) and x = c x' with
    c = alpha_t / signal (or beta_t / noise where signal = 0) is refcfg's x_t. Closed form for the
    "linear" schedule (t = signal / (signal + noise)); bisection on the ratio otherwise (to 1 ulp
    of t). signal, noise: arrays >= 0, not both 0. Returns (t, c) as float64 arrays."""
    a = np.atleast_1d(np.asarray(signal, dtype=np.float64))
    s = np.atleast_1d(np.asarray(noise, dtype=np.float64))
    a, s = np.broadcast_arrays(a, s)
    if np.any(~np.isfinite(a)) or np.any(~np.isfinite(s)) or np.any(a < 0) or np.any(s < 0) \
            or np.any(a + s == 0):
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
