"""Nonlinear guidance rules: rescale, APG, CFG-Zero*. Not lowerable (they run on NumPy).

Each combines a conditional prediction c and a reference prediction u (the unconditional field, or a
weaker model) in a prediction space (``spaces``), so it runs with ``refcfg.sample`` on exact fields
and on learned ones alike. The result depends on the space (the combination is not affine).

State (APG momentum): ``refcfg.sample`` calls ``velocity(x, t)`` at increasing times along a
trajectory, and several times at one time for multi-stage steps. APG keeps one running average per
distinct time: a call at a time t larger than the last one commits the previous average and updates it
(avg(t) = Delta(t) + beta avg(t_prev)); a repeated call at the same t recomputes avg(t) from the same
avg(t_prev), so each grid time counts once whatever the sampler. A call at a time smaller than the last
one starts a new trajectory (automatic reset; ``auto_reset=False`` makes it an error); ``reset()``
clears the state explicitly. Such rules need one scalar time per call.

CFG-Zero*'s zero-init is a time threshold: the velocity is 0 for t < t_zero. With a grid t_0 < t_1 <
... and t_zero = t_K (``CFGZeroStar.zero_init_from_grid``) the Euler sampler leaves x unchanged for its
first K steps, as in the paper (flow-matching Euler). With Heun the corrector of step K - 1, at t_K,
is not zeroed, so that step moves x by dt/2 v(t_K).
"""

from __future__ import annotations

import math

import numpy as np

from .._validation import (
    as_float_array,
    as_increasing_grid,
    as_int,
    as_prediction_pair,
    as_real,
    as_row_times,
    as_scalar_weight,
    as_weight_rows,
)
from ..combine import combine
from .linear import cfg_combine
from .spaces import RuleField

__all__ = [
    "rescale_combine",
    "apg_combine",
    "cfg_zero_star_scale",
    "cfg_zero_star_combine",
    "NonlinearRule",
    "GuidanceRescale",
    "APG",
    "CFGZeroStar",
]


def rescale_combine(c, u, w, phi: float = 0.7) -> np.ndarray:
    """Guidance rescale (Lin et al., arXiv 2305.08891, sec. 3.4).

    g = u + w (c - u);  g_r = g * std(c) / std(g);  out = phi g_r + (1 - phi) g, with std over the
    coordinates of each row (diffusers: over all non-batch dims; its unbiased std gives the same ratio).
    phi = 0 is plain CFG. Rows where std(g) = 0 are left as g. Needs d >= 2."""
    c, u = as_prediction_pair(c, u)
    phi = as_real(phi, "phi")
    if c.shape[1] < 2:
        raise ValueError(
            f"guidance rescale needs d >= 2 (a std over coordinates), got d = {c.shape[1]}"
        )
    g = combine(c, u, as_weight_rows(w, c.shape[0]))
    sc = c.std(axis=1, keepdims=True)
    sg = g.std(axis=1, keepdims=True)
    ratio = np.divide(sc, sg, out=np.ones_like(sg), where=sg > 0)
    return phi * (g * ratio) + (1.0 - phi) * g


def apg_combine(
    c, u, w, eta: float = 0.0, norm_threshold: float = math.inf, momentum: float = 0.0, running=None
) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive projected guidance (Sadat, Hilliges, Weber, arXiv 2410.02416).

    Delta = c - u;  A = Delta + momentum * running (running = previous average, 0 at the start);
    D = A * min(1, r / |A|) (r = norm_threshold);  D_par = (<D, c> / |c|^2) c, D_perp = D - D_par;
    out = c + (w - 1) (D_perp + eta D_par). Returns (out, A); A is the new running average.
    eta = 1, r = inf, momentum = 0 is plain CFG. Rows with c = 0 have D_par = 0."""
    c, u = as_prediction_pair(c, u)
    eta = as_real(eta, "eta")
    r = as_real(norm_threshold, "norm_threshold", gt=0.0, allow_inf=True)  # math.inf: no clip
    beta = as_real(momentum, "momentum")
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
    out = c + (as_weight_rows(w, c.shape[0]) - 1.0) * (perp + eta * par)
    return out, avg


def cfg_zero_star_scale(c, u, eps: float = 1e-8) -> np.ndarray:
    """CFG-Zero*'s optimised scale s* = <c, u> / (|u|^2 + eps) per row, (N, 1) (Fan et al.,
    arXiv 2503.18886, the optimised scale; the official code and diffusers add eps = 1e-8 to the denominator)."""
    c, u = as_prediction_pair(c, u)
    eps = as_real(eps, "eps", lo=0.0)
    return np.sum(c * u, axis=1, keepdims=True) / (np.sum(u * u, axis=1, keepdims=True) + eps)


def cfg_zero_star_combine(c, u, w, eps: float = 1e-8) -> np.ndarray:
    """CFG-Zero* without zero-init: w c + (1 - w) s* u = s* u + w (c - s* u) (arXiv 2503.18886):
    the CFG combination with the reference scaled by s*."""
    c, u = as_prediction_pair(c, u)
    s = cfg_zero_star_scale(c, u, eps)
    return combine(c, s * u, as_weight_rows(w, c.shape[0]))


def _own_velocity(field, x, t):
    return field.velocity(x, t)


_input_velocity = _own_velocity


def register_input_velocity(evaluate) -> None:
    """Set how the nonlinear rules evaluate their input fields' velocities: ``evaluate(field, x, t)``
    must return ``field``'s own velocity. ``refcfg.sampling`` registers its kernels here (the same
    values to ~1e-14, much faster on large mixtures such as the tree); guidance sits below sampling
    and does not import it. Without a registration each field's own ``velocity`` is used."""
    global _input_velocity
    if not callable(evaluate):
        raise TypeError(f"evaluate must be callable (field, x, t) -> velocity, got {evaluate!r}")
    _input_velocity = evaluate


class NonlinearRule(RuleField):
    """Base class of the nonlinear rules: ``_combine(c, u, x, t, state)`` on the two input fields'
    predictions, each the field's own velocity, evaluated by the registered evaluator
    (``register_input_velocity``)."""

    def _component(self, field, x, t):
        return _input_velocity(field, x, t)


class GuidanceRescale(NonlinearRule):
    """Guidance rescale (Lin et al., arXiv 2305.08891, sec. 3.4; ``rescale_combine``) in ``space``.

    phi: the paper uses 0.7 (default here); diffusers' ``guidance_rescale`` defaults to 0.0 (off).
    space: diffusers applies it to the model's output, eps for eps-prediction pipelines (default here);
    the paper's models predict v. Nonlinear: the result depends on the space."""

    name = "rescale"

    def __init__(self, cond, ref, w: float, *, phi: float = 0.7, space: str = "eps", schedule=None):
        super().__init__(cond, ref, space=space, schedule=schedule)
        self.w = as_scalar_weight(w)
        self.phi = as_real(phi, "phi")

    def _combine(self, c, u, x, t, state):
        return rescale_combine(c, u, self.w, self.phi), None


class APG(NonlinearRule):
    """Adaptive projected guidance (Sadat et al., arXiv 2410.02416; ``apg_combine``) in ``space``.

    Defaults: space "x0" (the paper applies the update to the denoised prediction D(x_t)), eta = 0
    (the paper's recommendation: drop the parallel part), norm_threshold = 15 (diffusers'
    ``adaptive_projected_guidance_rescale`` default; the paper tunes r per model and data scale),
    momentum = 0 (diffusers' default is no momentum; the paper's reverse momentum is negative, e.g.
    -0.5). Stateful: the running average is keyed on t (module docstring), ``reset()`` clears it."""

    name = "apg"

    def __init__(
        self,
        cond,
        ref,
        w: float,
        *,
        eta: float = 0.0,
        norm_threshold: float = 15.0,
        momentum: float = 0.0,
        space: str = "x0",
        schedule=None,
        auto_reset: bool = True,
    ):
        super().__init__(cond, ref, space=space, schedule=schedule)
        self.w = as_scalar_weight(w)
        self.eta = as_real(eta, "eta")
        self.norm_threshold = as_real(norm_threshold, "norm_threshold", gt=0.0, allow_inf=True)
        self.momentum = as_real(momentum, "momentum")
        self.auto_reset = bool(auto_reset)
        self.stateful = self.momentum != 0.0

    # state: (t_last, avg_prev_used_at_t_last, avg_at_t_last)
    def _state_before(self, t, x):
        if self._state is None:
            return None
        t_last, prev_used, avg_last = self._state
        if t < t_last:
            if not self.auto_reset:
                raise ValueError(
                    f"APG momentum: t = {t} is before the last time {t_last}; call reset() "
                    f"between trajectories (or use auto_reset=True)"
                )
            self._state = None
            return None
        if avg_last.shape != x.shape:
            raise ValueError(
                f"APG momentum state has shape {avg_last.shape} but x has shape {x.shape}; "
                f"call reset() before sampling a different batch"
            )
        return avg_last if t > t_last else prev_used

    def _commit(self, t, new_state, state_in):
        self._state = (t, state_in, new_state)

    def _combine(self, c, u, x, t, state):
        return apg_combine(c, u, self.w, self.eta, self.norm_threshold, self.momentum, state)


class CFGZeroStar(NonlinearRule):
    """CFG-Zero* (Fan et al., arXiv 2503.18886): optimised scale s* u + w (c - s* u) in
    ``space`` (default velocity: the paper is about flow matching) plus zero-init: velocity 0 for
    t < ``zero_until`` (sec. 4.2; paper and diffusers zero the first step, ``zero_init_steps=1``).
    Use ``zero_init_from_grid(t_grid, K)`` to get the threshold t_K that zeroes the first K steps of an
    Euler grid. ``optimized_scale=False, zero_until=None`` is plain CFG."""

    name = "cfg-zero-star"

    def __init__(
        self,
        cond,
        ref,
        w: float,
        *,
        zero_until: float | None = None,
        optimized_scale: bool = True,
        eps: float = 1e-8,
        space: str = "velocity",
        schedule=None,
    ):
        super().__init__(cond, ref, space=space, schedule=schedule)
        self.w = as_scalar_weight(w)
        self.zero_until = (
            None if zero_until is None else as_real(zero_until, "zero_until", lo=0.0, hi=1.0)
        )
        self.optimized_scale = bool(optimized_scale)
        self.scale_eps = as_real(eps, "eps", lo=0.0)  # not `eps`: that is the field method

    @staticmethod
    def zero_init_from_grid(t_grid, zero_init_steps: int = 1) -> float | None:
        """The threshold t_K of a sampling grid t_0 < t_1 < ...: velocities at t < t_K are zeroed, so
        the first K Euler steps leave x unchanged. K = 0 gives None (no zeroing)."""
        grid = as_increasing_grid(t_grid, "t_grid")
        zero_init_steps = as_int(zero_init_steps, "zero_init_steps", lo=0, hi=grid.size - 1)
        return None if zero_init_steps == 0 else float(grid[zero_init_steps])

    def velocity(self, x, t):
        out = super().velocity(x, t)
        if self.zero_until is not None:
            tt = as_row_times(t, out.shape[0])
            out[tt < self.zero_until] = 0.0
        return out

    def _combine(self, c, u, x, t, state):
        if not self.optimized_scale:
            return cfg_combine(c, u, self.w), None
        return cfg_zero_star_combine(c, u, self.w, self.scale_eps), None
