"""Prediction spaces, and the base class of guidance rules evaluated in one.

A rule acts on predictions in one space: "velocity" (u_t), "x0" (E[z | x_t], the data / denoiser
prediction), "eps" (E[eps | x_t]) or "v" (alpha eps - beta x0, the v-prediction of Salimans and Ho
with their (alpha, sigma) read as refcfg's (alpha_t, beta_t)). Velocity predictions are mapped to the
space and back by ``refcfg.convert`` (x0, eps), i.e. the affine maps of x_t = alpha z + beta eps,
u = dalpha z + dbeta eps:

    x0  = (beta u - dbeta x) / D,    eps = (dalpha x - alpha u) / D,    D = dalpha beta - dbeta alpha,
    u   = (dbeta x + D x0) / beta  = (dalpha x - D eps) / alpha        (D: ``Schedule.D``),

and v = alpha eps - beta x0 (``v_prediction``, the one place v is formed; the interop adapters use
it too), with the inverse

    u   = ((alpha dalpha + beta dbeta) x - D v) / (alpha^2 + beta^2),

both regular wherever D is finite and non-zero (alpha^2 + beta^2 > 0 on every schedule): at both
endpoints of "linear" and "cosine", but not at t = 1 of "sqrt", "linear-vp" and "vp", where dbeta
and D are infinite (there ``RuleField`` extrapolates, as for x0 and eps).

These are affine in the prediction with a coefficient that does not depend on it, so every combination
with weights summing to one (plain CFG, interval, w(t), autoguidance) gives the same velocity in every
space; the nonlinear rules (rescale, APG, CFG-Zero*'s optimised scale) do not. The back map is
singular where beta_t = 0 (x0, t = 1) or alpha_t = 0 (eps, t = 0): there the rule's velocity is
defined as its limit in t at fixed x, computed by quadratic extrapolation from t -+ h, 2h, 3h
(h = 1e-4, truncation O(h^3)); see ``ENDPOINT_H``.

State. ``refcfg.sample`` calls ``field.velocity(x, t)`` once per stage of a step, times increasing
along a trajectory. Stateful rules (APG with momentum) are keyed on t: ``RuleField`` passes the state
in force before time t to ``_combine`` and commits what it returns (``_state_before``/``_commit``);
``reset()`` clears it.
"""

from __future__ import annotations

import numpy as np

from .._validation import as_choice, as_float_array, as_row_times
from .base import Field

__all__ = ["SPACES", "ENDPOINT_H", "to_space", "from_space", "v_prediction", "RuleField"]

SPACES = ("velocity", "x0", "eps", "v")
ENDPOINT_H = 1e-4
"""Step of the quadratic extrapolation used where a space's back map is singular."""


def _space(space) -> str:
    return as_choice(space, "space", SPACES)


def _singular(schedule, t: np.ndarray, space: str) -> np.ndarray:
    """(N,) bool: rows where the map between velocity and ``space`` is not finite and invertible."""
    if space == "velocity":
        return np.zeros(t.shape, dtype=bool)
    v = schedule.values(t)
    D = np.broadcast_to(schedule.D(t), t.shape)
    bad = ~np.isfinite(D) | (D == 0.0) | ~np.isfinite(np.broadcast_to(v.dbeta, t.shape))
    if space == "v":
        return bad
    zero = np.broadcast_to(v.beta if space == "x0" else v.alpha, t.shape) == 0.0
    return bad | zero


def _v_coefficients(schedule, t, n):
    """(alpha dalpha + beta dbeta, alpha^2 + beta^2, D) as (n, 1) columns; ValueError naming t where
    D is 0 or not finite (t = 1 of "sqrt", "linear-vp" and "vp": dbeta is infinite there)."""
    tt = as_row_times(t, n)
    v = schedule.values(tt)
    D = np.broadcast_to(np.asarray(schedule.D(tt), dtype=np.float64), (n,))
    bad = ~np.isfinite(D) | (D == 0.0)
    if np.any(bad):
        raise ValueError(
            f"t = {float(tt[bad][0])!r}: the v-space map needs a finite, non-zero "
            f"D = dalpha beta - dbeta alpha there"
        )
    col = lambda q: np.broadcast_to(np.asarray(q, dtype=np.float64), (n,))[:, None]  # noqa: E731
    al, be = col(v.alpha), col(v.beta)
    return col(v.alpha) * col(v.dalpha) + col(v.beta_dbeta), al * al + be * be, D[:, None]


def v_prediction(eps, x0, t, schedule) -> np.ndarray:
    """v = alpha_t eps - beta_t x0 for rows eps, x0 (N, d) at t (a float or (N,)): the
    v-prediction (module docstring); the one place it is formed."""
    n = np.shape(eps)[0]
    v = schedule.values(as_row_times(t, n))
    col = lambda q: np.broadcast_to(np.asarray(q, dtype=np.float64), (n,))[:, None]  # noqa: E731
    return col(v.alpha) * eps - col(v.beta) * x0


def to_space(u, x, t, space: str, schedule) -> np.ndarray:
    """Map velocity predictions u (N, d) at (x, t) to ``space`` ("velocity", "x0", "eps", "v") with
    ``refcfg.convert``: x0 = (beta u - dbeta x) / D, eps = (dalpha x - alpha u) / D,
    D = dalpha beta - dbeta alpha (x = alpha z + beta eps, u = dalpha z + dbeta eps), and
    v = alpha eps - beta x0 (module docstring). ValueError where D or dbeta is not finite (t = 1 of
    "sqrt" and "vp")."""
    from .. import convert

    space = _space(space)
    if space == "velocity":
        return as_float_array(u, "u", ndim=2).copy()
    if space == "v":
        u = as_float_array(u, "u", ndim=2)
        x = as_float_array(x, "x", ndim=2)
        if u.shape != x.shape:
            raise ValueError(f"u has shape {u.shape} but x has shape {x.shape}")
        _v_coefficients(schedule, t, x.shape[0])  # ValueError naming t where D is not usable
        return v_prediction(
            convert.velocity_to_eps(u, x, t, schedule),
            convert.velocity_to_x0(u, x, t, schedule),
            t,
            schedule,
        )
    f = convert.velocity_to_x0 if space == "x0" else convert.velocity_to_eps
    return f(u, x, t, schedule)


def from_space(p, x, t, space: str, schedule) -> np.ndarray:
    """Inverse of ``to_space`` with ``refcfg.convert``: u = dalpha x0 + dbeta (x - alpha x0) / beta
    (needs beta_t > 0) or u = b_t (x - beta eps) + dbeta eps (needs alpha_t > 0), or
    u = ((alpha dalpha + beta dbeta) x - D v) / (alpha^2 + beta^2) (v: regular where D is finite);
    ValueError where that coefficient is zero (x0 at t = 1, eps at t = 0)."""
    from .. import convert

    space = _space(space)
    if space == "velocity":
        return as_float_array(p, "p", ndim=2).copy()
    if space == "v":
        vv = as_float_array(p, "p", ndim=2)
        x = as_float_array(x, "x", ndim=2)
        if vv.shape != x.shape:
            raise ValueError(f"p has shape {vv.shape} but x has shape {x.shape}")
        a, q, D = _v_coefficients(schedule, t, x.shape[0])
        return (a * x - D * vv) / q
    f = convert.x0_to_velocity if space == "x0" else convert.eps_to_velocity
    return f(p, x, t, schedule)


class RuleField(Field):
    """Base class of the guidance rules: a field combining ``cond`` and ``ref`` (unconditional or
    weaker) fields' predictions in ``self.space``.

    Subclasses implement ``_combine(c, u, x, t, state) -> (out, new_state)`` on predictions in the
    space (t an (N,) array). ``velocity(x, t)`` converts both fields' velocities (``_component``) to
    the space (``to_space``), combines them and maps back (``from_space``); where the back map is
    singular it takes the limit by quadratic extrapolation in t (module docstring). ``reset()`` clears
    per-trajectory state. ``score``, ``x0`` and ``eps`` default to the conversions of the velocity
    (``Field``)."""

    stateful = False
    name = "variant"

    def __init__(self, cond, ref, *, space: str = "velocity", schedule=None):
        for nm, f in (("cond", cond), ("ref", ref)):
            if not callable(getattr(f, "velocity", None)):
                raise TypeError(f"{nm} must be a field with a velocity(x, t) method, got {f!r}")
        self.cond, self.ref = cond, ref
        self.space = _space(space)
        sched = schedule if schedule is not None else getattr(cond, "schedule", None)
        if sched is None and self.space != "velocity":
            raise ValueError(
                f"space {space!r} needs a schedule: pass schedule= or use a field with a "
                f".schedule attribute"
            )
        if sched is not None and not callable(getattr(sched, "values", None)):
            raise TypeError(f"schedule must be a refcfg Schedule, got {sched!r}")
        self.schedule = sched
        self.d = getattr(cond, "d", None)  # type: ignore[assignment]  # None: a field without d
        self._state = None

    # -- public -----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget per-trajectory state (APG momentum); stateless rules ignore it."""
        self._state = None

    def velocity(self, x, t) -> np.ndarray:
        """The rule's velocity at (x (N, d), t float or (N,)), (N, d)."""
        x = as_float_array(x, "x", ndim=2)
        if self.d is not None and x.shape[1] != self.d:
            raise ValueError(f"x has shape {x.shape} but the fields have d = {self.d}")
        n = x.shape[0]
        scalar_t = np.ndim(t) == 0
        tt = as_row_times(t, n)
        if self.stateful and not (scalar_t or np.all(tt == tt[0])):
            raise ValueError(
                f"{self.name} keeps per-step state and needs one time per call: t must be a "
                f"float or a constant array, got values in [{float(tt.min())}, {float(tt.max())}]"
            )
        state_in = self._state_before(float(tt[0]), x) if self.stateful else None
        sing = _singular(self.schedule, tt, self.space)
        out = np.empty_like(x)
        new_state = None
        ok = ~sing
        if np.any(ok):
            v, s = self._velocity_rows(x[ok], tt[ok], state_in, ok)
            out[ok] = v
            new_state = s
        if np.any(sing):
            v, s = self._extrapolated(x[sing], tt[sing], state_in, sing)
            out[sing] = v
            if new_state is None:
                new_state = s
        if self.stateful:
            self._commit(float(tt[0]), new_state, state_in)
        return out

    # -- internals ----------------------------------------------------------------------------
    def _component(self, field, x, t):
        """One input field's velocity (NumPy, the field's own method)."""
        return field.velocity(x, t)

    def _velocity_rows(self, x, t, state_in, rows):
        # a float time when all rows share it (cheaper for exact fields), else the (N,) array
        tf = float(t[0]) if np.all(t == t[0]) else t
        c = np.asarray(self._component(self.cond, x, tf), dtype=np.float64)
        u = np.asarray(self._component(self.ref, x, tf), dtype=np.float64)
        if self.space != "velocity":
            c = to_space(c, x, t, self.space, self.schedule)
            u = to_space(u, x, t, self.space, self.schedule)
        st = None if state_in is None else state_in[rows]
        out, new = self._combine(c, u, x, t, st)
        if self.space != "velocity":
            out = from_space(out, x, t, self.space, self.schedule)
        return out, new

    def _extrapolated(self, x, t, state_in, rows):
        # limit at an endpoint where the back map is singular: f(t0) = 3 f1 - 3 f2 + f3,
        # f_k = f(t0 -+ k h) (towards the interior), exact for quadratics, error O(h^3).
        sign = np.where(t >= 0.5, -1.0, 1.0)
        vs, ss = [], []
        for k in (1, 2, 3):
            vk, sk = self._velocity_rows(x, t + sign * k * ENDPOINT_H, state_in, rows)
            vs.append(vk)
            ss.append(sk)
        v = 3.0 * vs[0] - 3.0 * vs[1] + vs[2]
        s = None if ss[0] is None else 3.0 * ss[0] - 3.0 * ss[1] + ss[2]
        return v, s

    def _combine(self, c, u, x, t, state):  # pragma: no cover - abstract
        raise NotImplementedError

    def _state_before(self, t: float, x):
        return None

    def _commit(self, t: float, new_state, state_in) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}(space={self.space!r})"
