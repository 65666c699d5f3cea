"""Exact conversions among the four parametrisations of a Gaussian-path field.

With x = alpha_t z + beta_t eps (t = 0 noise, t = 1 data), write x0 = E[z|x] (data prediction),
eps = E[eps|x] (noise prediction), s = grad log p_t(x) (score), u = the velocity. Then

    x   = alpha x0 + beta eps            (posterior mean of the path identity)
    u   = dalpha x0 + dbeta eps          (eq. 18 with eq. 20)
    s   = -eps / beta                    (Tweedie)
    u   = a_t s + b_t x,  a_t = beta^2 dalpha / alpha - beta dbeta,  b_t = dalpha / alpha   (eq. 41/42)

a_t, b_t and the determinant D_t = dalpha beta - dbeta alpha come from the schedule
(``Schedule.a``, ``Schedule.b``, ``Schedule.D``, ``Schedule.beta_D``); nothing here re-derives them.

Each converter is named ``source_to_target(value, x, t, schedule)``; value and x are (N, d), t a float
or (N,). Where a conversion divides by zero (alpha_t = 0 at t = 0, beta_t = 0 at t = 1, or
dalpha beta - dbeta alpha = 0) and no limit exists it raises ValueError naming t instead of returning
inf or NaN. Endpoint-safe forms, used wherever the limit exists:

- velocity -> score: score = (alpha u - dalpha x) / (beta D), the conversion multiplied through by
  alpha_t (beta D = alpha a_t = beta^2 dalpha - alpha beta dbeta); where alpha_t = 0,
  score = -x / beta_t^2 (p_t = N(0, beta_t^2 I) whatever the data law). Undefined only where
  beta D = 0 with alpha_t > 0 (t = 1 of "linear": the data law's score is not in a velocity).
- velocity -> x0, eps: the linear system with determinant D, multiplied through by beta_t where dbeta_t
  is infinite (t = 1 of "sqrt", "linear-vp", "vp").

Only exact zeros are rejected: near them the conversions lose accuracy like machine epsilon / alpha_t
(or / beta_t), see docs/numerics.md.
"""

from __future__ import annotations

import functools

import numpy as np

from ._validation import as_float_array, as_points, as_times, require_finite_result, require_nonzero
from .schedules import Schedule
from .schedules import schedule as _make_schedule

__all__ = [
    "convert",
    "QUANTITIES",
    "velocity_to_score",
    "score_to_velocity",
    "score_to_eps",
    "eps_to_score",
    "x0_to_eps",
    "eps_to_x0",
    "velocity_to_eps",
    "velocity_to_x0",
    "x0_to_velocity",
    "eps_to_velocity",
    "x0_to_score",
    "score_to_x0",
]

QUANTITIES = ("velocity", "score", "x0", "eps")


def _col(q):
    return np.reshape(q, (-1, 1))


def _prep(value, x, t, schedule, name):
    """Checked (value, x, t, schedule, (alpha, beta, dalpha, dbeta, beta_dbeta) as (N|1, 1) columns)."""
    xa = as_float_array(x, "x")
    if xa.ndim != 2:
        raise ValueError(f"x has shape {xa.shape} but a conversion requires (N, d)")
    x = as_points(xa, xa.shape[1], "x", context="a conversion", allow_empty=True)
    # a field's value may exceed X_MAX where x does not (u ~ x / (1 - t) near t = 1): the
    # conversions are linear, so any finite value is accepted and the result is checked instead
    v = as_float_array(value, name)
    if v.shape != x.shape:
        raise ValueError(f"{name} has shape {v.shape} but x has shape {x.shape}")
    t = as_times(t, x.shape[0])
    sched = _make_schedule(schedule)
    vals = [_col(q) for q in sched.values(t)]
    return v, x, t, sched, vals


def _finite(target):
    """The converter's result checked finite (``require_finite_result``): a value so large that the
    conversion overflows float64 is an error naming the target, never inf or NaN."""

    def wrap(fn):
        @functools.wraps(fn)
        def call(*args, **kwargs):
            out = fn(*args, **kwargs)
            require_finite_result(out, target)
            return out

        return call

    return wrap


@_finite("eps")
def score_to_eps(score, x, t, schedule="linear"):
    """eps = -beta_t score (Tweedie). Defined for all t."""
    s, x, t, sched, (al, be, da, db, bdb) = _prep(score, x, t, schedule, "score")
    return -be * s


@_finite("score")
def eps_to_score(eps, x, t, schedule="linear"):
    """score = -eps / beta_t; undefined at beta_t = 0 (t = 1)."""
    e, x, t, sched, (al, be, da, db, bdb) = _prep(eps, x, t, schedule, "eps")
    require_nonzero(be, t, "beta_t")
    return -e / be


@_finite("x0")
def eps_to_x0(eps, x, t, schedule="linear"):
    """x0 = (x - beta_t eps) / alpha_t; undefined at alpha_t = 0 (t = 0)."""
    e, x, t, sched, (al, be, da, db, bdb) = _prep(eps, x, t, schedule, "eps")
    require_nonzero(al, t, "alpha_t")
    return (x - be * e) / al


@_finite("eps")
def x0_to_eps(x0, x, t, schedule="linear"):
    """eps = (x - alpha_t x0) / beta_t; undefined at beta_t = 0 (t = 1)."""
    z, x, t, sched, (al, be, da, db, bdb) = _prep(x0, x, t, schedule, "x0")
    require_nonzero(be, t, "beta_t")
    return (x - al * z) / be


@_finite("velocity")
def x0_to_velocity(x0, x, t, schedule="linear"):
    """u = dalpha x0 + dbeta (x - alpha x0) / beta; undefined at beta_t = 0 (t = 1)."""
    z, x, t, sched, (al, be, da, db, bdb) = _prep(x0, x, t, schedule, "x0")
    require_nonzero(be, t, "beta_t")
    return da * z + (bdb / (be * be)) * (x - al * z)


@_finite("velocity")
def eps_to_velocity(eps, x, t, schedule="linear"):
    """u = b_t (x - beta eps) + dbeta eps; undefined at alpha_t = 0 (t = 0)."""
    e, x, t, sched, (al, be, da, db, bdb) = _prep(eps, x, t, schedule, "eps")
    require_nonzero(al, t, "alpha_t")
    if np.any(be == 0) and not np.all(np.isfinite(db)):
        require_nonzero(be, t, "beta_t")
    return _col(sched.b(t)) * (x - be * e) + db * e


def _velocity_system(v, x, t, sched, al, be, da, bdb):
    """Solve u = dalpha x0 + dbeta eps, x = alpha x0 + beta eps for (x0, eps).

    The determinant is D = dalpha beta - dbeta alpha (``Schedule.D``; 1 for "linear"). Where dbeta_t
    is infinite (t = 1 for "sqrt", "linear-vp", "vp") the system is multiplied through by beta_t,
    with determinant beta D (``Schedule.beta_D``) and the finite product beta dbeta:
    x0 = (beta^2 u - beta dbeta x) / (beta D) and eps = beta (dalpha x - alpha u) / (beta D)."""
    d1, d2 = _col(sched.D(t)), _col(sched.beta_D(t))
    db = _col(sched.dbeta(t))
    first = np.isfinite(d1) & (d1 != 0)
    if not np.all(first | (d2 != 0)):
        require_nonzero(np.where(first, 1.0, d2), t, "dalpha_t beta_t - dbeta_t alpha_t")
    with np.errstate(invalid="ignore", divide="ignore"):
        x0 = np.where(
            first,
            (be * v - db * x) / np.where(first, d1, 1.0),
            (be * be * v - bdb * x) / np.where(first, 1.0, d2),
        )
        eps = np.where(
            first,
            (da * x - al * v) / np.where(first, d1, 1.0),
            be * (da * x - al * v) / np.where(first, 1.0, d2),
        )
    return x0, eps


@_finite("x0")
def velocity_to_x0(u, x, t, schedule="linear"):
    """x0 = (beta u - dbeta x) / (dalpha beta - dbeta alpha) (multiplied through by beta where
    dbeta_t is infinite)."""
    v, x, t, sched, (al, be, da, db, bdb) = _prep(u, x, t, schedule, "velocity")
    return _velocity_system(v, x, t, sched, al, be, da, bdb)[0]


@_finite("eps")
def velocity_to_eps(u, x, t, schedule="linear"):
    """eps = (dalpha x - alpha u) / (dalpha beta - dbeta alpha) (multiplied through by beta where
    dbeta_t is infinite)."""
    v, x, t, sched, (al, be, da, db, bdb) = _prep(u, x, t, schedule, "velocity")
    return _velocity_system(v, x, t, sched, al, be, da, bdb)[1]


@_finite("velocity")
def score_to_velocity(score, x, t, schedule="linear"):
    """u = a_t score + b_t x (eq. 41/42); undefined at alpha_t = 0 (t = 0)."""
    s, x, t, sched, _ = _prep(score, x, t, schedule, "score")
    return _col(sched.a(t)) * s + _col(sched.b(t)) * x


@_finite("score")
def velocity_to_score(u, x, t, schedule="linear"):
    """score = (u - b_t x) / a_t (eq. 41/42) in its endpoint-safe form (module docstring):
    (alpha u - dalpha x) / (beta D), and -x / beta_t^2 where alpha_t = 0. Undefined (ValueError)
    where beta D = 0 with alpha_t > 0 (t = 1 for "linear")."""
    v, x, t, sched, (al, be, da, db, bdb) = _prep(u, x, t, schedule, "velocity")
    aa = _col(sched.beta_D(t))  # alpha_t a_t
    origin = al == 0
    require_nonzero(np.where(origin, 1.0, aa), t, "a_t")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            origin,
            -x / np.where(origin, be * be, 1.0),
            (al * v - da * x) / np.where(origin, 1.0, aa),
        )


@_finite("score")
def x0_to_score(x0, x, t, schedule="linear"):
    """score = -(x - alpha x0) / beta^2; undefined at beta_t = 0 (t = 1)."""
    z, x, t, sched, (al, be, da, db, bdb) = _prep(x0, x, t, schedule, "x0")
    require_nonzero(be, t, "beta_t")
    return -(x - al * z) / (be * be)


@_finite("x0")
def score_to_x0(score, x, t, schedule="linear"):
    """x0 = (x + beta^2 score) / alpha; undefined at alpha_t = 0 (t = 0)."""
    s, x, t, sched, (al, be, da, db, bdb) = _prep(score, x, t, schedule, "score")
    require_nonzero(al, t, "alpha_t")
    return (x + be * be * s) / al


_TABLE = {
    ("score", "velocity"): score_to_velocity,
    ("velocity", "score"): velocity_to_score,
    ("score", "eps"): score_to_eps,
    ("eps", "score"): eps_to_score,
    ("x0", "eps"): x0_to_eps,
    ("eps", "x0"): eps_to_x0,
    ("velocity", "x0"): velocity_to_x0,
    ("velocity", "eps"): velocity_to_eps,
    ("x0", "velocity"): x0_to_velocity,
    ("eps", "velocity"): eps_to_velocity,
    ("x0", "score"): x0_to_score,
    ("score", "x0"): score_to_x0,
}


def convert(value, source: str, target: str, x, t, schedule: Schedule | str = "linear"):
    """Convert a field value from ``source`` to ``target`` parametrisation, each one of
    "velocity", "score", "x0", "eps"."""
    for name, q in (("source", source), ("target", target)):
        if q not in QUANTITIES:
            raise ValueError(f"{name} must be one of {QUANTITIES}, got {q!r}")
    if source == target:
        _prep(value, x, t, schedule, source)
        return np.array(value, dtype=np.float64)
    return _TABLE[(source, target)](value, x, t, schedule)
