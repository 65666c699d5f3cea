"""Exact conversions among the four parametrisations of a Gaussian-path field.

With x = alpha_t z + beta_t eps (t = 0 noise, t = 1 data), write x0 = E[z|x] (data prediction),
eps = E[eps|x] (noise prediction), s = grad log p_t(x) (score), u = the velocity. Then

    x   = alpha x0 + beta eps            (posterior mean of the path identity)
    u   = dalpha x0 + dbeta eps          (eq. 21 with eq. 20)
    s   = -eps / beta                    (Tweedie)
    u   = a_t s + b_t x,  a_t = beta^2 dalpha / alpha - beta dbeta,  b_t = dalpha / alpha   (eq. 41/42)

Each converter is named ``source_to_target(value, x, t, schedule)``; value and x are (N, d), t a float
or (N,). Where a conversion divides by zero (alpha_t = 0 at t = 0, beta_t = 0 at t = 1, or
dalpha beta - dbeta alpha = 0) it raises ValueError naming t instead of returning inf or NaN. Only exact zeros are rejected: near them the conversions lose accuracy like
machine epsilon / alpha_t (or / beta_t), see docs/numerics.md.
"""

from __future__ import annotations

import numpy as np

from ._validation import as_float_array, as_points, as_times
from .schedules import Schedule, schedule as _make_schedule

__all__ = ["convert", "QUANTITIES", "velocity_to_score", "score_to_velocity", "score_to_eps",
           "eps_to_score", "x0_to_eps", "eps_to_x0", "velocity_to_x0", "velocity_to_eps",
           "x0_to_velocity", "eps_to_velocity", "x0_to_score", "score_to_x0"]

QUANTITIES = ("velocity", "score", "x0", "eps")


def _prep(value, x, t, schedule, name):
    xa = as_float_array(x, "x")
    if xa.ndim != 2:
        raise ValueError(f"x has shape {xa.shape} but a conversion requires (N, d)")
    x = as_points(xa, xa.shape[1], "x", context="a conversion")
    v = as_points(value, x.shape[1], name, context="x's shape")
    if v.shape != x.shape:
        raise ValueError(f"{name} has shape {v.shape} but x has shape {x.shape}")
    t = as_times(t, x.shape[0])
    sched = _make_schedule(schedule)
    vals = [np.reshape(q, (-1, 1)) for q in sched.values(t)]
    return v, x, t, vals


def _nonzero(q, t, what):
    q = np.asarray(q)
    if np.any(q == 0):
        tt = np.atleast_1d(t)
        bad = tt[np.nonzero(np.broadcast_to(q.ravel(), tt.shape) == 0)[0][0]]
        raise ValueError(f"t = {float(bad)!r}: this conversion divides by {what} = 0 there "
                         f"and is undefined")


def _alpha_beta_ok(al, be, t, need_alpha: bool, need_beta: bool):
    if need_alpha:
        _nonzero(al, t, "alpha_t")
    if need_beta:
        _nonzero(be, t, "beta_t")


def score_to_eps(score, x, t, schedule="linear"):
    """eps = -beta_t score (Tweedie). Defined for all t."""
    s, x, t, (al, be, da, db, bdb) = _prep(score, x, t, schedule, "score")
    return -be * s


def eps_to_score(eps, x, t, schedule="linear"):
    """score = -eps / beta_t; undefined at beta_t = 0 (t = 1)."""
    e, x, t, (al, be, da, db, bdb) = _prep(eps, x, t, schedule, "eps")
    _alpha_beta_ok(al, be, t, False, True)
    return -e / be


def eps_to_x0(eps, x, t, schedule="linear"):
    """x0 = (x - beta_t eps) / alpha_t; undefined at alpha_t = 0 (t = 0)."""
    e, x, t, (al, be, da, db, bdb) = _prep(eps, x, t, schedule, "eps")
    _alpha_beta_ok(al, be, t, True, False)
    return (x - be * e) / al


def x0_to_eps(x0, x, t, schedule="linear"):
    """eps = (x - alpha_t x0) / beta_t; undefined at beta_t = 0 (t = 1)."""
    z, x, t, (al, be, da, db, bdb) = _prep(x0, x, t, schedule, "x0")
    _alpha_beta_ok(al, be, t, False, True)
    return (x - al * z) / be


def x0_to_velocity(x0, x, t, schedule="linear"):
    """u = dalpha x0 + dbeta (x - alpha x0) / beta; undefined at beta_t = 0 (t = 1)."""
    z, x, t, (al, be, da, db, bdb) = _prep(x0, x, t, schedule, "x0")
    _alpha_beta_ok(al, be, t, False, True)
    return da * z + (bdb / (be * be)) * (x - al * z)


def eps_to_velocity(eps, x, t, schedule="linear"):
    """u = dalpha (x - beta eps) / alpha + dbeta eps; undefined at alpha_t = 0 (t = 0)."""
    e, x, t, (al, be, da, db, bdb) = _prep(eps, x, t, schedule, "eps")
    _alpha_beta_ok(al, be, t, True, False)
    if np.any(be == 0) and not np.all(np.isfinite(db)):
        _nonzero(be, t, "beta_t")
    return da * (x - be * e) / al + db * e


def _velocity_system(v, x, t, al, be, da, db, bdb):
    """Solve u = dalpha x0 + dbeta eps, x = alpha x0 + beta eps for (x0, eps).

    The determinant is D1 = dalpha beta - dbeta alpha (1 for "linear"). Where dbeta_t is infinite
    (t = 1 for "sqrt", "linear-vp", "vp") the system is multiplied through by beta_t, giving
    D2 = dalpha beta^2 - alpha beta dbeta with the finite product beta dbeta: x0 = (beta^2 u -
    beta dbeta x) / D2 and eps = beta (dalpha x - alpha u) / D2."""
    with np.errstate(invalid="ignore"):
        d1 = da * be - db * al
    d2 = da * be * be - al * bdb
    first = np.isfinite(d1) & (d1 != 0)
    if not np.all(first | (d2 != 0)):
        _nonzero(np.where(first, 1.0, d2), t, "dalpha_t beta_t - dbeta_t alpha_t")
    with np.errstate(invalid="ignore", divide="ignore"):
        x0 = np.where(first, (be * v - db * x) / np.where(first, d1, 1.0),
                      (be * be * v - bdb * x) / np.where(first, 1.0, d2))
        eps = np.where(first, (da * x - al * v) / np.where(first, d1, 1.0),
                       be * (da * x - al * v) / np.where(first, 1.0, d2))
    return x0, eps


def velocity_to_x0(u, x, t, schedule="linear"):
    """x0 = (beta u - dbeta x) / (dalpha beta - dbeta alpha) (multiplied through by beta where
    dbeta_t is infinite)."""
    v, x, t, (al, be, da, db, bdb) = _prep(u, x, t, schedule, "velocity")
    return _velocity_system(v, x, t, al, be, da, db, bdb)[0]


def velocity_to_eps(u, x, t, schedule="linear"):
    """eps = (dalpha x - alpha u) / (dalpha beta - dbeta alpha) (multiplied through by beta where
    dbeta_t is infinite)."""
    v, x, t, (al, be, da, db, bdb) = _prep(u, x, t, schedule, "velocity")
    return _velocity_system(v, x, t, al, be, da, db, bdb)[1]


def score_to_velocity(score, x, t, schedule="linear"):
    """u = a_t score + b_t x (eq. 41/42); undefined at alpha_t = 0 (t = 0)."""
    s, x, t, (al, be, da, db, bdb) = _prep(score, x, t, schedule, "score")
    _alpha_beta_ok(al, be, t, True, False)
    return (be * be * da / al - bdb) * s + (da / al) * x


def velocity_to_score(u, x, t, schedule="linear"):
    """score = (u - b_t x) / a_t; undefined where alpha_t = 0 or a_t = 0 (t = 1 for "linear")."""
    v, x, t, (al, be, da, db, bdb) = _prep(u, x, t, schedule, "velocity")
    _alpha_beta_ok(al, be, t, True, False)
    a = be * be * da / al - bdb
    _nonzero(a, t, "a_t")
    return (v - (da / al) * x) / a


def x0_to_score(x0, x, t, schedule="linear"):
    """score = -(x - alpha x0) / beta^2; undefined at beta_t = 0 (t = 1)."""
    z, x, t, (al, be, da, db, bdb) = _prep(x0, x, t, schedule, "x0")
    _alpha_beta_ok(al, be, t, False, True)
    return -(x - al * z) / (be * be)


def score_to_x0(score, x, t, schedule="linear"):
    """x0 = (x + beta^2 score) / alpha; undefined at alpha_t = 0 (t = 0)."""
    s, x, t, (al, be, da, db, bdb) = _prep(score, x, t, schedule, "score")
    _alpha_beta_ok(al, be, t, True, False)
    return (x + be * be * s) / al


_TABLE = {
    ("score", "velocity"): score_to_velocity, ("velocity", "score"): velocity_to_score,
    ("score", "eps"): score_to_eps, ("eps", "score"): eps_to_score,
    ("x0", "eps"): x0_to_eps, ("eps", "x0"): eps_to_x0,
    ("velocity", "x0"): velocity_to_x0, ("velocity", "eps"): velocity_to_eps,
    ("x0", "velocity"): x0_to_velocity, ("eps", "velocity"): eps_to_velocity,
    ("x0", "score"): x0_to_score, ("score", "x0"): score_to_x0,
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
