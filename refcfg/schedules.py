"""Noise schedules alpha_t, beta_t of Gaussian probability paths x_t = alpha_t z + beta_t eps.

Convention (notes, arXiv 2506.02070, section 3): t = 0 is noise, t = 1 is data, so
alpha_0 = beta_1 = 0 and alpha_1 = beta_0 = 1. The "vp" schedule breaks alpha_0 = 0 (alpha_0 ~ 6.6e-3
with its default parameters), exactly as facebookresearch/flow_matching's VPScheduler does.

Name mapping to flow_matching's schedulers (alpha_t, sigma_t): "linear" = CondOT (t, 1 - t),
"polynomial" = PolynomialConvex(n) (t^n, 1 - t^n), "cosine" = Cosine, "linear-vp" = LinearVP,
"vp" = VP; "sqrt" is the MIT 6.S184 labs' LinearAlpha + SquareRootBeta (t, sqrt(1 - t)).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ._validation import as_real, as_unit_times, require_positive_alpha

__all__ = [
    "Schedule",
    "ScheduleValues",
    "schedule",
    "custom_schedule",
    "SCHEDULES",
    "path_eigenvalues",
    "velocity_numerator",
]


class ScheduleValues(NamedTuple):
    """alpha_t, beta_t, their time derivatives, and beta_t * dbeta_t (finite where dbeta is not)."""

    alpha: np.ndarray | float
    beta: np.ndarray | float
    dalpha: np.ndarray | float
    dbeta: np.ndarray | float
    beta_dbeta: np.ndarray | float


_times = as_unit_times


def _out(value, shape):
    out = np.broadcast_to(np.asarray(value, dtype=np.float64), shape)
    return float(out) if out.ndim == 0 else np.array(out)


class _Product:
    """t -> f(t) g(t): the default beta_t dbeta_t of a schedule (a class, not a closure, so that a
    custom schedule whose callables pickle pickles too)."""

    def __init__(self, f: Callable, g: Callable):
        self.f, self.g = f, g

    def __call__(self, t):
        return self.f(t) * self.g(t)


class Schedule:
    """A schedule (alpha_t, beta_t) with exact derivatives.

    Methods accept a float or an array of times in [0, 1] and return the same shape in float64.
    ``a(t)`` and ``b(t)`` are the coefficients of the conversion u_t = a_t score_t + b_t x
    (notes eq. 41/42; v1 of the notes and the course labs swap the two names).
    """

    def __init__(
        self,
        name: str,
        alpha: Callable,
        beta: Callable,
        dalpha: Callable,
        dbeta: Callable,
        beta_dbeta: Callable | None = None,
        params: dict | None = None,
    ):
        self.name = name
        self.params = dict(params or {})
        self._alpha, self._beta, self._dalpha, self._dbeta = alpha, beta, dalpha, dbeta
        self._beta_dbeta = beta_dbeta if beta_dbeta is not None else _Product(beta, dbeta)
        # (name, params) of the ``schedule`` call that made it, if any
        self._registry_call: tuple[str, dict] | None = None

    def __reduce_ex__(self, protocol):
        """A schedule made by ``schedule(name, **params)`` pickles as that call (its callables are
        closures, which pickle cannot store), so it can be sent to another process; any other
        (``from_callables``) pickles its attributes, which works when its callables pickle."""
        if self._registry_call is not None:
            name, params = self._registry_call
            return (_named_schedule, (name, params))
        return super().__reduce_ex__(protocol)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"schedule({self.name!r}{', ' + params if params else ''})"

    def __eq__(self, other) -> bool:
        if not isinstance(other, Schedule):
            return NotImplemented
        if self.name == "custom" or other.name == "custom":
            return self is other
        return self.name == other.name and self.params == other.params

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.params.items()))))

    def alpha(self, t):
        """alpha_t, the data coefficient."""
        tt = _times(t)
        return _out(self._alpha(tt), tt.shape)

    def beta(self, t):
        """beta_t, the noise coefficient."""
        tt = _times(t)
        return _out(self._beta(tt), tt.shape)

    def dalpha(self, t):
        """d alpha_t / dt."""
        tt = _times(t)
        return _out(self._dalpha(tt), tt.shape)

    def dbeta(self, t):
        """d beta_t / dt (may be -inf at t = 1, e.g. "sqrt"; use ``beta_dbeta`` there)."""
        tt = _times(t)
        with np.errstate(divide="ignore"):
            return _out(self._dbeta(tt), tt.shape)

    def beta_dbeta(self, t):
        """beta_t * dbeta_t = d(beta_t^2)/dt / 2, computed so that it is finite on [0, 1]."""
        tt = _times(t)
        return _out(self._beta_dbeta(tt), tt.shape)

    def values(self, t) -> ScheduleValues:
        """All five quantities at once (float or arrays of t's shape)."""
        tt = _times(t)
        with np.errstate(divide="ignore"):
            return ScheduleValues(
                _out(self._alpha(tt), tt.shape),
                _out(self._beta(tt), tt.shape),
                _out(self._dalpha(tt), tt.shape),
                _out(self._dbeta(tt), tt.shape),
                _out(self._beta_dbeta(tt), tt.shape),
            )

    def _alpha_checked(self, t, strict: bool, what: str):
        """(tt, alpha, zero, safe_alpha) for a quantity divided by alpha_t: ValueError where
        alpha_t = 0 when strict; else those rows are flagged in ``zero`` (safe_alpha = 1 there)."""
        tt = _times(t)
        alpha = np.broadcast_to(np.asarray(self._alpha(tt), dtype=np.float64), tt.shape)
        if strict:
            require_positive_alpha(alpha, tt, what, self.name)
        zero = alpha <= 0.0
        return tt, alpha, zero, np.where(zero, 1.0, alpha)

    def a(self, t, strict: bool = True):
        """a_t = beta_t^2 dalpha_t / alpha_t - beta_t dbeta_t (eq. 41), the score coefficient of
        u = a_t score + b_t x. Where alpha_t = 0: ValueError (strict=True) or +inf (strict=False;
        the limit, alpha_t increasing from 0 while beta_t > 0)."""
        tt, alpha, zero, safe = self._alpha_checked(t, strict, "a_t")
        beta = self._beta(tt)
        return _out(
            np.where(zero, np.inf, beta * beta * self._dalpha(tt) / safe - self._beta_dbeta(tt)),
            tt.shape,
        )

    def b(self, t, strict: bool = True):
        """b_t = dalpha_t / alpha_t (eq. 41). Where alpha_t = 0: ValueError (strict=True) or +inf
        (strict=False)."""
        tt, alpha, zero, safe = self._alpha_checked(t, strict, "b_t")
        return _out(np.where(zero, np.inf, self._dalpha(tt) / safe), tt.shape)

    def D(self, t):
        """D_t = dalpha_t beta_t - dbeta_t alpha_t, the determinant of the map (z, eps) -> (x, u),
        x = alpha z + beta eps, u = dalpha z + dbeta eps. +inf where dbeta_t is infinite (t = 1 of
        "sqrt", "linear-vp", "vp"); ``beta_D`` is finite there."""
        tt = _times(t)
        with np.errstate(divide="ignore", invalid="ignore"):
            return _out(
                self._dalpha(tt) * self._beta(tt) - self._dbeta(tt) * self._alpha(tt), tt.shape
            )

    def beta_D(self, t):
        """beta_t D_t = alpha_t a_t = beta_t^2 dalpha_t - alpha_t beta_t dbeta_t: the determinant
        multiplied through by beta_t (finite where dbeta_t is not) and a_t without its 1/alpha_t
        (finite at alpha_t = 0). Finite on [0, 1]."""
        tt = _times(t)
        return _out(
            self._beta(tt) ** 2 * self._dalpha(tt) - self._alpha(tt) * self._beta_dbeta(tt),
            tt.shape,
        )

    @property
    def alpha0_is_zero(self) -> bool:
        """True when alpha_0 = 0 (the path starts exactly at N(0, I)); False for "vp"."""
        return float(self._alpha(np.float64(0.0))) == 0.0

    @classmethod
    def from_callables(
        cls,
        alpha: Callable,
        beta: Callable,
        dalpha: Callable,
        dbeta: Callable,
        beta_dbeta: Callable | None = None,
        name: str = "custom",
    ) -> Schedule:
        """A user-defined schedule. All four callables are required (exact derivatives) and must
        accept float64 arrays. Checked on a grid of 101 times: finite values, alpha, beta >= 0,
        alpha_1 = 1, beta_1 = 0, beta_0 > 0. Give ``beta_dbeta`` when dbeta is infinite at t = 1."""
        for arg_name, f in (("alpha", alpha), ("beta", beta), ("dalpha", dalpha), ("dbeta", dbeta)):
            if not callable(f):
                raise TypeError(f"{arg_name} must be callable, got {f!r}")
        sched = cls(name, alpha, beta, dalpha, dbeta, beta_dbeta)
        grid = np.linspace(0.0, 1.0, 101)
        vals = sched.values(grid)
        for field_name in ("alpha", "beta", "dalpha", "beta_dbeta"):
            v = getattr(vals, field_name)
            if np.shape(v) != grid.shape or not np.all(np.isfinite(v)):
                raise ValueError(
                    f"{field_name}(t) must return finite values of t's shape on [0, 1]"
                )
        a_t, b_t = np.asarray(vals.alpha), np.asarray(vals.beta)  # arrays: grid is one
        if np.any(a_t < 0) or np.any(b_t < 0):
            raise ValueError("alpha(t) and beta(t) must be >= 0 on [0, 1]")
        if a_t[-1] != 1.0 or b_t[-1] != 0.0:
            raise ValueError(
                f"a schedule must reach the data at t = 1: alpha(1) = 1 and beta(1) = 0 "
                f"are required, got alpha(1) = {a_t[-1]!r}, "
                f"beta(1) = {b_t[-1]!r}"
            )
        if not b_t[0] > 0:
            raise ValueError(f"beta(0) must be > 0, got {b_t[0]!r}")
        return sched


def _linear() -> Schedule:
    return Schedule(
        "linear",
        lambda t: t,
        lambda t: 1.0 - t,
        lambda t: 1.0,
        lambda t: -1.0,
        lambda t: -(1.0 - t),
    )


def _cosine() -> Schedule:
    # beta written as sin(pi (1 - t) / 2) so that beta_1 = 0 and alpha_1 = 1 exactly in float64
    h = math.pi / 2
    return Schedule(
        "cosine",
        lambda t: np.sin(h * t),
        lambda t: np.sin(h * (1.0 - t)),
        lambda t: h * np.sin(h * (1.0 - t)),
        lambda t: -h * np.sin(h * t),
        lambda t: -h * np.sin(h * (1.0 - t)) * np.sin(h * t),
    )


def _sqrt() -> Schedule:
    # MIT 6.S184 labs: LinearAlpha, SquareRootBeta; dbeta = -1 / (2 sqrt(1 - t)) is -inf at t = 1
    return Schedule(
        "sqrt",
        lambda t: t,
        lambda t: np.sqrt(1.0 - t),
        lambda t: 1.0,
        lambda t: -0.5 / np.sqrt(1.0 - t),
        lambda t: -0.5,
    )


def _polynomial(n: float = 2.0) -> Schedule:
    n = as_real(n, "n", gt=0.0, context=" for schedule 'polynomial'")
    if n < 1:
        # dalpha = n t^(n-1) diverges at t = 0 for n < 1
        raise ValueError(
            f"n must be >= 1 for schedule 'polynomial' (dalpha_t = n t^(n-1) diverges "
            f"at t = 0 for n < 1), got {n!r}"
        )
    return Schedule(
        "polynomial",
        lambda t: t**n,
        lambda t: 1.0 - t**n,
        lambda t: n * t ** (n - 1.0),
        lambda t: -n * t ** (n - 1.0),
        lambda t: -(1.0 - t**n) * n * t ** (n - 1.0),
        params={"n": n},
    )


def _linear_vp() -> Schedule:
    # dbeta = -t / sqrt(1 - t^2) is -inf at t = 1; beta dbeta = -t is finite
    return Schedule(
        "linear-vp",
        lambda t: t,
        lambda t: np.sqrt(1.0 - t * t),
        lambda t: 1.0,
        lambda t: -t / np.sqrt(1.0 - t * t),
        lambda t: -t,
    )


def _vp(beta_min: float = 0.1, beta_max: float = 20.0) -> Schedule:
    # beta_min = 0 would make beta_t dbeta_t / beta_t a 0/0 at t = 1
    beta_min = as_real(beta_min, "beta_min", gt=0.0, context=" for schedule 'vp'")
    beta_max = as_real(beta_max, "beta_max", gt=0.0, context=" for schedule 'vp'")
    if not beta_max > beta_min:
        raise ValueError(
            f"beta_max must be > beta_min for schedule 'vp', got beta_min={beta_min!r}, "
            f"beta_max={beta_max!r}"
        )
    bmin, bmax = float(beta_min), float(beta_max)

    # flow_matching's VPScheduler in refcfg's time: T(t) = 0.5 (1-t)^2 (bmax - bmin) + (1-t) bmin,
    # alpha_t = exp(-T/2), beta_t = sqrt(1 - alpha_t^2) (written with expm1 for accuracy near t = 1).
    def T(t):
        s = 1.0 - t
        return 0.5 * s * s * (bmax - bmin) + s * bmin

    def dT(t):
        return -(1.0 - t) * (bmax - bmin) - bmin

    def alpha(t):
        return np.exp(-0.5 * T(t))

    def dalpha(t):
        return -0.5 * dT(t) * alpha(t)

    def beta(t):
        return np.sqrt(-np.expm1(-T(t)))

    def beta_dbeta(t):  # d(beta^2)/2 = d(1 - alpha^2)/2 = -alpha dalpha
        return -alpha(t) * dalpha(t)

    def dbeta(t):
        with np.errstate(divide="ignore"):
            return beta_dbeta(t) / beta(t)

    return Schedule(
        "vp", alpha, beta, dalpha, dbeta, beta_dbeta, params={"beta_min": bmin, "beta_max": bmax}
    )


# ---------------------------------------------------------------------------------------------
# Per-time coefficients of a Gaussian component on the path (read by GMMPath and the lowering)
# ---------------------------------------------------------------------------------------------


def path_eigenvalues(alpha, beta, lam):
    """s = alpha_t^2 lam + beta_t^2: the eigenvalues of S(t) = alpha_t^2 Sigma + beta_t^2 I, the
    covariance at time t of a component with covariance eigenvalues lam (arrays broadcast; no
    checks). The one place this is computed."""
    return alpha * alpha * lam + beta * beta


def velocity_numerator(alpha, dalpha, beta_dbeta, lam):
    """alpha_t dalpha_t lam + beta_t dbeta_t: the numerators of the eigenvalues
    (alpha dalpha lam + beta dbeta) / s of M = d v / d x, the gain of a component's velocity
    v(x) = dalpha mu + M (x - alpha mu) (eq. 20 averaged over the component; s from
    ``path_eigenvalues``). Arrays broadcast; no checks. The one place this is computed."""
    return alpha * dalpha * lam + beta_dbeta


SCHEDULES = {
    "linear": _linear,
    "cosine": _cosine,
    "sqrt": _sqrt,
    "polynomial": _polynomial,
    "linear-vp": _linear_vp,
    "vp": _vp,
}


def schedule(name: str | Schedule = "linear", **params) -> Schedule:
    """A named schedule: "linear" (t, 1-t), "cosine" (sin(pi t/2), cos(pi t/2)), "sqrt" (t, sqrt(1-t)),
    "polynomial" (t^n, 1-t^n; n=2), "linear-vp" (t, sqrt(1-t^2)), "vp" (beta_min=0.1, beta_max=20;
    alpha_0 != 0). A Schedule passes through unchanged."""
    if isinstance(name, Schedule):
        if params:
            raise ValueError(f"params {sorted(params)} given with a Schedule object")
        return name
    if not isinstance(name, str):
        raise TypeError(f"schedule name must be a str or a Schedule, got {name!r}")
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; known: {', '.join(SCHEDULES)}")
    try:
        out = SCHEDULES[name](**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters {params} for schedule {name!r}: {exc}") from None
    out._registry_call = (name, dict(params))
    return out


def _named_schedule(name: str, params: dict) -> Schedule:
    """``schedule(name, **params)``: how a named schedule is rebuilt when unpickled."""
    return schedule(name, **params)


custom_schedule = Schedule.from_callables
