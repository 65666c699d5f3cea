"""Guidance variants as field combinations: interval, rescale, APG, CFG-Zero*, autoguidance, w(t).

Each variant combines two fields with ``velocity(x, t)`` -- a "conditional" prediction c and a
"reference" prediction u (the unconditional field, or a weaker model for autoguidance) -- into one
field with ``velocity(x, t)``, so it runs with ``refcfg.sample`` on exact fields (``ExactField``,
``GMMPath.field``) and on learned ones alike.

Convention (notes arXiv 2506.02070 v3, eq. 65): plain CFG is u~ = w c + (1 - w) u = u + w (c - u);
w = 1 is no guidance, w = 0 unconditional. Ho-Salimans' omega (c + omega (c - u)) maps to w = 1 + omega;
diffusers' ``guidance_scale`` in its default formulation (``uncond + scale * (cond - uncond)``) is w
itself, and with ``use_original_formulation=True`` it is omega (w = 1 + guidance_scale).

Spaces. A variant acts on predictions in one space: "velocity" (u_t), "x0" (E[z | x_t], the data /
denoiser prediction) or "eps" (E[eps | x_t]). Velocity predictions are mapped to the space and back by
``refcfg.convert``, i.e. the affine maps of x_t = alpha z + beta eps, u = dalpha z + dbeta eps:

    x0  = (beta u - dbeta x) / D,    eps = (dalpha x - alpha u) / D,    D = beta dalpha - alpha dbeta,
    u   = (dbeta x + D x0) / beta  = (dalpha x - D eps) / alpha.

These are affine in the prediction with a coefficient that does not depend on it, so every combination
with weights summing to one (plain CFG, interval, w(t), autoguidance) gives the same velocity in every
space; the nonlinear variants (rescale, APG, CFG-Zero*'s optimised scale) do not. The back map is
singular where beta_t = 0 (x0, t = 1) or alpha_t = 0 (eps, t = 0): there the variant's velocity is
defined as its limit in t at fixed x, computed by quadratic extrapolation from t -+ h, 2h, 3h
(h = 1e-4, truncation O(h^3)); see ``ENDPOINT_H``.

State. ``refcfg.sample`` calls ``field.velocity(x, t)`` once per Euler step and twice per Heun step
(at t_i, then the corrector at t_{i+1}), times increasing. Stateful variants are keyed on t:
- APG's momentum keeps one running average per distinct time: a call at a time t larger than the last
  one commits the previous average and updates it (avg(t) = Delta(t) + beta avg(t_prev)); a repeated
  call at the same t (Heun's corrector at t_{i+1} followed by the next predictor at t_{i+1}) recomputes
  avg(t) from the same avg(t_prev), so each grid time counts once whatever the sampler. A call at a
  time smaller than the last one starts a new trajectory (automatic reset; ``auto_reset=False`` makes
  it an error); ``reset()`` clears the state explicitly. Such variants need one scalar time per call.
- CFG-Zero*'s zero-init is a time threshold: the velocity is 0 for t < t_zero. With a grid t_0 < t_1 <
  ... and t_zero = t_K (``CFGZeroStar.zero_init_from_grid``) the Euler sampler leaves x unchanged for its
  first K steps, as in the paper (flow-matching Euler). With Heun the corrector of step K - 1, at t_K,
  is not zeroed, so that step moves x by dt/2 v(t_K).
"""

from __future__ import annotations

import math
import numbers
from typing import Callable

import numpy as np

from ._validation import as_float_array

__all__ = [
    "SPACES", "ENDPOINT_H", "to_space", "from_space",
    "cfg_combine", "rescale_combine", "apg_combine", "cfg_zero_star_scale", "cfg_zero_star_combine",
    "weight_schedule", "noise_level",
    "VariantField", "PlainCFG", "GuidanceInterval", "GuidanceRescale", "APG", "CFGZeroStar",
    "Autoguidance", "ScheduledCFG", "weaker_mixture", "VARIANTS", "make_variant",
]

SPACES = ("velocity", "x0", "eps")
ENDPOINT_H = 1e-4
"""Step of the quadratic extrapolation used where a space's back map is singular."""


# ---------------------------------------------------------------------------------------------
# Validation helpers (local: they name the argument, what it got and what was required)
# ---------------------------------------------------------------------------------------------


def _real(value, name: str, *, lo: float | None = None, hi: float | None = None,
          allow_inf: bool = False) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if math.isnan(v) or (math.isinf(v) and not allow_inf):
        raise ValueError(f"{name} must be finite, got {v!r}")
    if lo is not None and v < lo:
        raise ValueError(f"{name} must be >= {lo}, got {v!r}")
    if hi is not None and v > hi:
        raise ValueError(f"{name} must be <= {hi}, got {v!r}")
    return v


def _space(space) -> str:
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    return space


def _pair(c, u, name_c: str = "c", name_u: str = "u") -> tuple[np.ndarray, np.ndarray]:
    c = as_float_array(c, name_c, ndim=2)
    u = as_float_array(u, name_u, ndim=2)
    if c.shape != u.shape:
        raise ValueError(f"{name_c} has shape {c.shape} but {name_u} has shape {u.shape}; "
                         f"equal (N, d) shapes are required")
    return c, u


def _weight_rows(w, n: int, name: str = "w") -> np.ndarray:
    """w as an (n, 1) column (a float broadcast, or an (n,) array)."""
    if isinstance(w, (bool, np.bool_)):
        raise TypeError(f"{name} must be a float or an (N,) array, got {w!r}")
    arr = as_float_array(w, name)
    if arr.ndim == 0:
        return np.full((n, 1), float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{name} has shape {arr.shape} but the predictions imply a float or ({n},)")
    return arr[:, None]


# ---------------------------------------------------------------------------------------------
# Spaces: affine maps between velocity and x0 / eps predictions
# ---------------------------------------------------------------------------------------------


def _coeffs(schedule, t: np.ndarray):
    """(alpha, beta, dalpha, dbeta, D) as (N, 1) columns; D = beta dalpha - alpha dbeta."""
    v = schedule.values(t)
    alpha, beta, dalpha, dbeta = (np.asarray(a, dtype=np.float64).reshape(-1, 1)
                                  for a in (v.alpha, v.beta, v.dalpha, v.dbeta))
    with np.errstate(invalid="ignore", over="ignore"):
        D = beta * dalpha - alpha * dbeta
    return alpha, beta, dalpha, dbeta, D


def _singular(schedule, t: np.ndarray, space: str) -> np.ndarray:
    """(N,) bool: rows where the map between velocity and ``space`` is not finite and invertible."""
    if space == "velocity":
        return np.zeros(t.shape, dtype=bool)
    alpha, beta, dalpha, dbeta, D = _coeffs(schedule, t)
    bad = ~np.isfinite(D[:, 0]) | (D[:, 0] == 0.0) | ~np.isfinite(dbeta[:, 0])
    return bad | ((beta[:, 0] == 0.0) if space == "x0" else (alpha[:, 0] == 0.0))


def _rows_t(t, n: int) -> np.ndarray:
    arr = as_float_array(t, "t")
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"t has shape {arr.shape} but x implies a float or shape ({n},)")
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise ValueError(f"t must lie in [0, 1], got values in [{float(arr.min())!r}, {float(arr.max())!r}]")
    return arr


def to_space(u, x, t, space: str, schedule) -> np.ndarray:
    """Map velocity predictions u (N, d) at (x, t) to ``space`` ("velocity", "x0", "eps") with
    ``refcfg.convert``: x0 = (beta u - dbeta x) / D, eps = (dalpha x - alpha u) / D,
    D = dalpha beta - dbeta alpha (x = alpha z + beta eps, u = dalpha z + dbeta eps; notes arXiv
    2506.02070 v3, sec. 4). ValueError where D or dbeta is not finite (t = 1 of "sqrt" and "vp")."""
    from . import convert

    space = _space(space)
    if space == "velocity":
        return as_float_array(u, "u", ndim=2).copy()
    f = convert.velocity_to_x0 if space == "x0" else convert.velocity_to_eps
    return f(u, x, t, schedule)


def from_space(p, x, t, space: str, schedule) -> np.ndarray:
    """Inverse of ``to_space`` with ``refcfg.convert``: u = dalpha x0 + dbeta (x - alpha x0) / beta
    (needs beta_t > 0) or u = dalpha (x - beta eps) / alpha + dbeta eps (needs alpha_t > 0);
    ValueError where that coefficient is zero (x0 at t = 1, eps at t = 0)."""
    from . import convert

    space = _space(space)
    if space == "velocity":
        return as_float_array(p, "p", ndim=2).copy()
    f = convert.x0_to_velocity if space == "x0" else convert.eps_to_velocity
    return f(p, x, t, schedule)


# ---------------------------------------------------------------------------------------------
# Combination rules (pure functions of the two predictions; row n is one particle)
# ---------------------------------------------------------------------------------------------


def cfg_combine(c, u, w) -> np.ndarray:
    """Plain CFG, u + w (c - u) = w c + (1 - w) u (notes eq. 65). w: float or (N,)."""
    c, u = _pair(c, u)
    return u + _weight_rows(w, c.shape[0]) * (c - u)


def rescale_combine(c, u, w, phi: float = 0.7) -> np.ndarray:
    """Guidance rescale (Lin et al., arXiv 2305.08891, sec. 3.4).

    g = u + w (c - u);  g_r = g * std(c) / std(g);  out = phi g_r + (1 - phi) g, with std over the
    coordinates of each row (diffusers: over all non-batch dims; its unbiased std gives the same ratio).
    phi = 0 is plain CFG. Rows where std(g) = 0 are left as g. Needs d >= 2."""
    c, u = _pair(c, u)
    phi = _real(phi, "phi")
    if c.shape[1] < 2:
        raise ValueError(f"guidance rescale needs d >= 2 (a std over coordinates), got d = {c.shape[1]}")
    g = u + _weight_rows(w, c.shape[0]) * (c - u)
    sc = c.std(axis=1, keepdims=True)
    sg = g.std(axis=1, keepdims=True)
    ratio = np.divide(sc, sg, out=np.ones_like(sg), where=sg > 0)
    return phi * (g * ratio) + (1.0 - phi) * g


def apg_combine(c, u, w, eta: float = 0.0, norm_threshold: float = math.inf, momentum: float = 0.0,
                running=None) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive projected guidance (Sadat, Hilliges, Weber, arXiv 2410.02416).

    Delta = c - u;  A = Delta + momentum * running (running = previous average, 0 at the start);
    D = A * min(1, r / |A|) (r = norm_threshold);  D_par = (<D, c> / |c|^2) c, D_perp = D - D_par;
    out = c + (w - 1) (D_perp + eta D_par). Returns (out, A); A is the new running average.
    eta = 1, r = inf, momentum = 0 is plain CFG. Rows with c = 0 have D_par = 0."""
    c, u = _pair(c, u)
    eta = _real(eta, "eta")
    r = _real(norm_threshold, "norm_threshold", allow_inf=True)
    if not r > 0:
        raise ValueError(f"norm_threshold must be > 0 (math.inf disables the clip), got {r!r}")
    beta = _real(momentum, "momentum")
    delta = c - u
    if running is not None:
        running = as_float_array(running, "running", ndim=2)
        if running.shape != delta.shape:
            raise ValueError(f"running has shape {running.shape} but c has shape {delta.shape}")
        avg = delta + beta * running
    else:
        avg = delta
    D = avg
    if math.isfinite(r):
        nrm = np.linalg.norm(avg, axis=1, keepdims=True)
        scale = np.minimum(1.0, np.divide(r, nrm, out=np.ones_like(nrm), where=nrm > 0))
        D = avg * scale
    cc = np.sum(c * c, axis=1, keepdims=True)
    coef = np.divide(np.sum(D * c, axis=1, keepdims=True), cc, out=np.zeros_like(cc), where=cc > 0)
    par = coef * c
    perp = D - par
    out = c + (_weight_rows(w, c.shape[0]) - 1.0) * (perp + eta * par)
    return out, avg


def cfg_zero_star_scale(c, u, eps: float = 1e-8) -> np.ndarray:
    """CFG-Zero*'s optimised scale s* = <c, u> / (|u|^2 + eps) per row, (N, 1) (Fan et al.,
    arXiv 2503.18886, the optimised scale; the official code and diffusers add eps = 1e-8 to the denominator)."""
    c, u = _pair(c, u)
    eps = _real(eps, "eps", lo=0.0)
    return np.sum(c * u, axis=1, keepdims=True) / (np.sum(u * u, axis=1, keepdims=True) + eps)


def cfg_zero_star_combine(c, u, w, eps: float = 1e-8) -> np.ndarray:
    """CFG-Zero* without zero-init: s* u + w (c - s* u) (arXiv 2503.18886)."""
    c, u = _pair(c, u)
    s = cfg_zero_star_scale(c, u, eps)
    su = s * u
    return su + _weight_rows(w, c.shape[0]) * (c - su)


def noise_level(schedule, t) -> np.ndarray:
    """EDM noise level sigma(t) = beta_t / alpha_t of x_t / alpha_t = z + sigma eps (inf at alpha = 0).

    The guidance-interval paper (arXiv 2404.07724) states its intervals in this sigma."""
    tt = np.atleast_1d(as_float_array(t, "t"))
    v = schedule.values(tt)
    alpha = np.asarray(v.alpha, dtype=np.float64)
    beta = np.asarray(v.beta, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(alpha > 0, beta / np.where(alpha > 0, alpha, 1.0), np.inf)


def weight_schedule(kind, w: float) -> Callable[[np.ndarray], np.ndarray]:
    """A time-dependent weight w(t) = 1 + (w - 1) g(t) with mean_t g = 1 (so mean_t w(t) = w):
    "constant" g = 1; "linear" g = 2 t; "cosine" g = 1 - cos(pi t) (t = 0 noise, t = 1 data).

    These are the increasing "linear" and "cosine" schedulers of Wang et al., arXiv 2404.13040
    (sec. 3, written there in diffusion time T -> 0, here in flow time t = 1 - t_diff / T), applied to
    the guidance strength omega = w - 1 so that w(t) >= 1; a callable g(t) is also accepted."""
    w = _real(w, "w")
    if callable(kind):
        g = kind
    elif kind == "constant":
        def g(t):
            return np.ones_like(t)
    elif kind == "linear":
        def g(t):
            return 2.0 * t
    elif kind == "cosine":
        def g(t):
            return 1.0 - np.cos(np.pi * t)
    else:
        raise ValueError(f"kind must be 'constant', 'linear', 'cosine' or a callable g(t), got {kind!r}")

    def w_of_t(t):
        t = np.asarray(t, dtype=np.float64)
        return 1.0 + (w - 1.0) * np.broadcast_to(np.asarray(g(t), dtype=np.float64), t.shape)

    return w_of_t


# ---------------------------------------------------------------------------------------------
# Field objects
# ---------------------------------------------------------------------------------------------


def _velocity(field, x, t) -> np.ndarray:
    """field.velocity(x, t), by the Numba kernels when the field is an exact (lowerable) one:
    the same values to ~1e-14, much faster on large mixtures such as the tree."""
    from .sampling import cpu
    if cpu.supports(field):
        return cpu.velocity(field, x, t)
    return field.velocity(x, t)


class VariantField:
    """Base class: a guided field combining ``cond`` and ``ref`` (unconditional or weaker) fields.

    Subclasses implement ``_combine(c, u, x, t, state) -> (out, new_state)`` on predictions in
    ``self.space``. ``velocity(x, t)`` converts both fields' velocities to the space (``to_space``),
    combines them and maps back (``from_space``); where the back map is singular it takes the limit by
    quadratic extrapolation in t (module docstring). ``reset()`` clears per-trajectory state."""

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
            raise ValueError(f"space {space!r} needs a schedule: pass schedule= or use a field with a "
                             f".schedule attribute")
        if sched is not None and not callable(getattr(sched, "values", None)):
            raise TypeError(f"schedule must be a refcfg Schedule, got {sched!r}")
        self.schedule = sched
        self.d = getattr(cond, "d", None)
        self._state = None

    # -- public -----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget per-trajectory state (APG momentum); stateless variants ignore it."""
        self._state = None

    def velocity(self, x, t) -> np.ndarray:
        x = as_float_array(x, "x", ndim=2)
        if self.d is not None and x.shape[1] != self.d:
            raise ValueError(f"x has shape {x.shape} but the fields have d = {self.d}")
        n = x.shape[0]
        scalar_t = np.ndim(t) == 0
        tt = _rows_t(t, n)
        if self.stateful and not (scalar_t or np.all(tt == tt[0])):
            raise ValueError(f"{self.name} keeps per-step state and needs one time per call: t must be a "
                             f"float or a constant array, got values in [{float(tt.min())}, {float(tt.max())}]")
        state_in = self._state_before(float(tt[0]), x) if self.stateful else None
        sing = (_singular(self.schedule, tt, self.space) if self.space != "velocity"
                else np.zeros(n, dtype=bool))
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
    def _velocity_rows(self, x, t, state_in, rows):
        # a float time when all rows share it (cheaper for exact fields), else the (N,) array
        tf = float(t[0]) if np.all(t == t[0]) else t
        c = _velocity(self.cond, x, tf)
        u = _velocity(self.ref, x, tf)
        c = np.asarray(c, dtype=np.float64)
        u = np.asarray(u, dtype=np.float64)
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


class PlainCFG(VariantField):
    """Plain CFG w c + (1 - w) u (notes eq. 65) evaluated in ``space``; the same velocity in every
    space (the maps are affine), which the tests check. Baseline of the comparison."""

    name = "cfg"

    def __init__(self, cond, ref, w: float, *, space: str = "velocity", schedule=None):
        super().__init__(cond, ref, space=space, schedule=schedule)
        self.w = _real(w, "w")

    def _combine(self, c, u, x, t, state):
        return cfg_combine(c, u, self.w), None


class GuidanceInterval(VariantField):
    """Guidance only in a noise interval (Kynkaanniemi et al., arXiv 2404.07724):
    w where sigma_lo < sigma(t) <= sigma_hi, else 1 (the conditional field alone), with the EDM noise
    level sigma(t) = beta_t / alpha_t (``noise_level``). None means no bound on that side, so
    ``sigma_lo=None, sigma_hi=None`` (the interval covers [0, 1]) is plain CFG.

    Defaults (0.28, 2.9]: the paper's FID-optimal interval for EDM2-XXL on ImageNet-512 (data scaled
    to std 0.5; the paper's SD-XL interval is (0.28, 5.42]). Linear in the predictions: space-free."""

    name = "interval"

    def __init__(self, cond, ref, w: float, *, sigma_lo: float | None = 0.28,
                 sigma_hi: float | None = 2.9, schedule=None):
        super().__init__(cond, ref, space="velocity", schedule=schedule)
        if self.schedule is None:
            raise ValueError("GuidanceInterval needs a schedule (to map sigma to t): pass schedule=")
        self.w = _real(w, "w")
        self.sigma_lo = None if sigma_lo is None else _real(sigma_lo, "sigma_lo", lo=0.0)
        self.sigma_hi = None if sigma_hi is None else _real(sigma_hi, "sigma_hi", lo=0.0,
                                                            allow_inf=True)
        if self.sigma_lo is not None and self.sigma_hi is not None and self.sigma_hi <= self.sigma_lo:
            raise ValueError(f"sigma_hi must be > sigma_lo, got ({self.sigma_lo}, {self.sigma_hi}]")

    def active(self, t) -> np.ndarray:
        """(N,) bool: where guidance is on (sigma_lo < sigma(t) <= sigma_hi)."""
        s = noise_level(self.schedule, t)
        on = np.ones(s.shape, dtype=bool)
        if self.sigma_lo is not None:
            on &= s > self.sigma_lo
        if self.sigma_hi is not None:
            on &= s <= self.sigma_hi
        return on

    def _combine(self, c, u, x, t, state):
        w = np.where(self.active(t), self.w, 1.0)
        return cfg_combine(c, u, w), None


class ScheduledCFG(VariantField):
    """CFG with a time-dependent weight w(t) (``weight_schedule``; Wang et al., arXiv 2404.13040):
    u + w(t) (c - u). ``kind="constant"`` is plain CFG. Linear in the predictions: space-free."""

    name = "schedule"

    def __init__(self, cond, ref, w: float, *, kind="linear", schedule=None):
        super().__init__(cond, ref, space="velocity", schedule=schedule)
        self.w = _real(w, "w")
        self.kind = kind
        self.w_of_t = weight_schedule(kind, self.w)

    def _combine(self, c, u, x, t, state):
        return cfg_combine(c, u, self.w_of_t(t)), None


class GuidanceRescale(VariantField):
    """Guidance rescale (Lin et al., arXiv 2305.08891, sec. 3.4; ``rescale_combine``) in ``space``.

    phi: the paper uses 0.7 (default here); diffusers' ``guidance_rescale`` defaults to 0.0 (off).
    space: diffusers applies it to the model's output, eps for eps-prediction pipelines (default here);
    the paper's models predict v. Nonlinear: the result depends on the space."""

    name = "rescale"

    def __init__(self, cond, ref, w: float, *, phi: float = 0.7, space: str = "eps", schedule=None):
        super().__init__(cond, ref, space=space, schedule=schedule)
        self.w = _real(w, "w")
        self.phi = _real(phi, "phi")

    def _combine(self, c, u, x, t, state):
        return rescale_combine(c, u, self.w, self.phi), None


class APG(VariantField):
    """Adaptive projected guidance (Sadat et al., arXiv 2410.02416; ``apg_combine``) in ``space``.

    Defaults: space "x0" (the paper applies the update to the denoised prediction D(x_t)), eta = 0
    (the paper's recommendation: drop the parallel part), norm_threshold = 15 (diffusers'
    ``adaptive_projected_guidance_rescale`` default; the paper tunes r per model and data scale),
    momentum = 0 (diffusers' default is no momentum; the paper's reverse momentum is negative, e.g.
    -0.5). Stateful: the running average is keyed on t (module docstring), ``reset()`` clears it."""

    name = "apg"

    def __init__(self, cond, ref, w: float, *, eta: float = 0.0, norm_threshold: float = 15.0,
                 momentum: float = 0.0, space: str = "x0", schedule=None, auto_reset: bool = True):
        super().__init__(cond, ref, space=space, schedule=schedule)
        self.w = _real(w, "w")
        self.eta = _real(eta, "eta")
        self.norm_threshold = _real(norm_threshold, "norm_threshold", allow_inf=True)
        if not self.norm_threshold > 0:
            raise ValueError(f"norm_threshold must be > 0 (math.inf disables it), got {norm_threshold}")
        self.momentum = _real(momentum, "momentum")
        self.auto_reset = bool(auto_reset)
        self.stateful = self.momentum != 0.0

    # state: (t_last, avg_prev_used_at_t_last, avg_at_t_last)
    def _state_before(self, t, x):
        if self._state is None:
            return None
        t_last, prev_used, avg_last = self._state
        if t < t_last:
            if not self.auto_reset:
                raise ValueError(f"APG momentum: t = {t} is before the last time {t_last}; call reset() "
                                 f"between trajectories (or use auto_reset=True)")
            self._state = None
            return None
        if avg_last.shape != x.shape:
            raise ValueError(f"APG momentum state has shape {avg_last.shape} but x has shape {x.shape}; "
                             f"call reset() before sampling a different batch")
        return avg_last if t > t_last else prev_used

    def _commit(self, t, new_state, state_in):
        self._state = (t, state_in, new_state)

    def _combine(self, c, u, x, t, state):
        return apg_combine(c, u, self.w, self.eta, self.norm_threshold, self.momentum, state)


class CFGZeroStar(VariantField):
    """CFG-Zero* (Fan et al., arXiv 2503.18886): optimised scale s* u + w (c - s* u) in
    ``space`` (default velocity: the paper is about flow matching) plus zero-init: velocity 0 for
    t < ``zero_until`` (sec. 4.2; paper and diffusers zero the first step, ``zero_init_steps=1``).
    Use ``zero_init_from_grid(t_grid, K)`` to get the threshold t_K that zeroes the first K steps of an
    Euler grid. ``optimized_scale=False, zero_until=None`` is plain CFG."""

    name = "cfg-zero-star"

    def __init__(self, cond, ref, w: float, *, zero_until: float | None = None,
                 optimized_scale: bool = True, eps: float = 1e-8, space: str = "velocity",
                 schedule=None):
        super().__init__(cond, ref, space=space, schedule=schedule)
        self.w = _real(w, "w")
        self.zero_until = None if zero_until is None else _real(zero_until, "zero_until", lo=0.0,
                                                                hi=1.0)
        self.optimized_scale = bool(optimized_scale)
        self.eps = _real(eps, "eps", lo=0.0)

    @staticmethod
    def zero_init_from_grid(t_grid, zero_init_steps: int = 1) -> float | None:
        """The threshold t_K of a sampling grid t_0 < t_1 < ...: velocities at t < t_K are zeroed, so
        the first K Euler steps leave x unchanged. K = 0 gives None (no zeroing)."""
        if isinstance(zero_init_steps, (bool, np.bool_)) or not isinstance(zero_init_steps,
                                                                            numbers.Integral):
            raise TypeError(f"zero_init_steps must be an int, got {zero_init_steps!r}")
        grid = as_float_array(t_grid, "t_grid", ndim=1)
        if zero_init_steps < 0 or zero_init_steps >= grid.size:
            raise ValueError(f"zero_init_steps must be in 0..{grid.size - 1}, got {zero_init_steps}")
        if np.any(np.diff(grid) <= 0):
            raise ValueError("t_grid must be strictly increasing")
        return None if zero_init_steps == 0 else float(grid[zero_init_steps])

    def velocity(self, x, t):
        out = super().velocity(x, t)
        if self.zero_until is not None:
            tt = _rows_t(t, out.shape[0])
            out[tt < self.zero_until] = 0.0
        return out

    def _combine(self, c, u, x, t, state):
        if not self.optimized_scale:
            return cfg_combine(c, u, self.w), None
        return cfg_zero_star_combine(c, u, self.w, self.eps), None


class Autoguidance(VariantField):
    """Autoguidance (Karras et al., arXiv 2406.02507, sec. 3): w c + (1 - w) c_weak, guiding the
    conditional field with a weaker version of itself under the same condition instead of the
    unconditional field. Exact here with ``weaker_mixture`` (the same mixture with inflated
    covariances). Linear in the predictions: space-free. The paper's EDM2 guidance weights are ~2-3."""

    name = "autoguidance"

    def __init__(self, cond, weak, w: float, *, schedule=None):
        super().__init__(cond, weak, space="velocity", schedule=schedule)
        self.w = _real(w, "w")

    def _combine(self, c, u, x, t, state):
        return cfg_combine(c, u, self.w), None


def weaker_mixture(mixture, cov_scale: float = 2.0):
    """The same labelled mixture with every covariance multiplied by ``cov_scale`` (> 0): an exact
    "weaker model" for autoguidance (a wider, blurrier density, as in arXiv 2406.02507 fig. 1/App. C
    where the weak model is a smaller, shorter-trained network). refcfg's choice, not the paper's."""
    from .mixture import GMM, LabeledGMM

    k = _real(cov_scale, "cov_scale")
    if not k > 0:
        raise ValueError(f"cov_scale must be > 0, got {k}")
    classes = [GMM(g.weights, g.means, g.covs * k) for g in mixture.classes]
    return LabeledGMM(classes, mixture.class_probs)


# ---------------------------------------------------------------------------------------------
# Registry: build every variant on exact fields of a path
# ---------------------------------------------------------------------------------------------

VARIANTS = ("cfg", "interval", "rescale", "apg", "cfg-zero-star", "autoguidance", "schedule")
"""Names accepted by ``make_variant``."""


def make_variant(name: str, path, y, w: float, *, t_grid=None, weak_path=None, **params):
    """Build variant ``name`` on exact fields of ``path`` (a GMMPath) for class ``y`` and weight w.

    cond = path.field(y), ref = path.field(None) (autoguidance: ``weak_path.field(y)``, by default a
    path of ``weaker_mixture(path.mixture)``). ``t_grid`` sets CFG-Zero*'s zero-init threshold from
    ``zero_init_steps`` (default 1). Other keyword arguments go to the variant's constructor."""
    if name not in VARIANTS:
        raise ValueError(f"name must be one of {VARIANTS}, got {name!r}")
    cond = path.field(y)
    if name == "autoguidance":
        if weak_path is None:
            from .paths import GMMPath
            weak_path = GMMPath(weaker_mixture(path.mixture, params.pop("cov_scale", 2.0)),
                                path.schedule)
        return Autoguidance(cond, weak_path.field(y), w, schedule=path.schedule)
    ref = path.field(None)
    if name == "cfg":
        return PlainCFG(cond, ref, w, schedule=path.schedule, **params)
    if name == "interval":
        return GuidanceInterval(cond, ref, w, schedule=path.schedule, **params)
    if name == "rescale":
        return GuidanceRescale(cond, ref, w, schedule=path.schedule, **params)
    if name == "apg":
        return APG(cond, ref, w, schedule=path.schedule, **params)
    if name == "schedule":
        return ScheduledCFG(cond, ref, w, schedule=path.schedule, **params)
    k = params.pop("zero_init_steps", 1)
    if "zero_until" not in params:
        params["zero_until"] = (None if t_grid is None or k == 0
                                else CFGZeroStar.zero_init_from_grid(t_grid, k))
    return CFGZeroStar(cond, ref, w, schedule=path.schedule, **params)
