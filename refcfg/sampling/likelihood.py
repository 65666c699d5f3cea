"""Log-likelihood along the probability-flow ODE (instantaneous change of variables).

For the ODE dX/dt = u_t(X) from X_0 ~ N(0, I), the density of X_t along a trajectory obeys
d/dt log p_t(X_t) = -div u_t(X_t) (the continuity equation, eq. 23 of the notes, in Lagrangian form), so

    log p_1(x) = log N(X_0; 0, I) - int_0^1 div u_t(X_t) dt,     X_1 = x,

obtained by integrating the augmented system (X, l)' = (u, div u) from t = 1 back to t = 0. With the
exact divergence of an exact (or linearly guided) field this has no Hutchinson noise: the only error
is the integrator's (the order of the sampler's tableau). For the unguided field (w = 1) the result
converges to the exact log p_1(x|y) of the data law; for w != 1 it is the log-density of what the
guided ODE samples, which no closed formula gives. The initial law is N(0, I) at t = 0 whatever the
schedule (for "vp", alpha_0 != 0, that is the law the samplers start from, not p_0).
"""

from __future__ import annotations

import numpy as np

from .._limits import require_memory
from .._validation import (
    _describe,
    as_float_array,
    as_points,
    as_positive_int,
    require_bounded_state,
    require_finite_result,
)
from .api import field_size, require_field, resolve_backend, sample_memory, time_grid, with_labels
from .reference import rk_step
from .steppers import TABLEAUS, stage_times

__all__ = ["log_likelihood"]


def _log_normal01(x):
    d = x.shape[1]
    return -0.5 * (d * np.log(2 * np.pi) + np.einsum("nd,nd->n", x, x))


def _numpy_logdet(field, x, ts, sampler):
    """Reference: the augmented ODE (x, l)' = (u, div u) with field.velocity and field.divergence
    (NumPy), stepped by the sampler's tableau."""
    tab = TABLEAUS[sampler]
    tst = stage_times(ts, tab)
    state = (np.array(x, dtype=np.float64), np.zeros(x.shape[0]))

    def slope(z, t):
        require_bounded_state(z[0], "the likelihood's integration")
        return field.velocity(z[0], t), field.divergence(z[0], t)

    for i in range(len(ts) - 1):
        state = rk_step(slope, state, ts[i + 1] - ts[i], tst[i], tab)
    return state


def log_likelihood(
    field,
    x,
    steps=100,
    sampler="heun",
    *,
    t_grid=None,
    backend="auto",
    y=None,
    w=None,
    return_noise=False,
):
    """log-density at t = 1 of the points x (N, d) under the ODE flow of ``field`` from N(0, I).

    Parameters
    ----------
    field : a field with velocity(x, t) and divergence(x, t) (exact fields, guided combinations of
        them, or a GMMPath for its unconditional field); ``y``/``w`` as in ``refcfg.sample``.
    x : (N, d) points.
    steps, t_grid : a uniform grid of ``steps`` steps on [0, 1], or an explicit increasing grid
        (from 0 to 1; it is run backwards).
    sampler : an ODE sampler, any name in ``refcfg.sampling.steppers.TABLEAUS`` (the error falls
        at its order).
    backend : "auto" | "numpy" | "cpu". "auto" runs the CPU kernels for every field that lowers,
        whatever the size (no size rule here: a first call on a new machine compiles), else NumPy.
    return_noise : also return X_0, the preimage of x in the noise space.

    Returns (N,) log-densities (and X_0 (N, d) with return_noise).
    """
    from ..guidance import ExactField
    from ..paths import GMMPath

    require_field(field)
    if isinstance(field, GMMPath) and y is None and w is None:
        field = ExactField(field, None)
    field = with_labels(field, y, w)
    if sampler not in TABLEAUS:
        raise ValueError(
            f"sampler must be one of the ODE samplers {tuple(TABLEAUS)} for the "
            f"likelihood, got {sampler!r}"
        )
    if not callable(getattr(field, "velocity", None)):
        raise TypeError(
            f"field must have velocity(x, t) and divergence(x, t), got {_describe(field)}"
        )
    xx = as_float_array(x, "x", ndim=2)
    d = getattr(field, "d", None)
    if d is not None and xx.shape[1] != d:
        raise ValueError(f"x has shape {xx.shape} but (N, {d}) is required")
    xx = as_points(xx, xx.shape[1], "x", copy=False)
    n_steps = (
        as_float_array(t_grid, "t_grid", ndim=1).shape[0] - 1
        if t_grid is not None
        else as_positive_int(steps, "steps")
    )
    be = resolve_backend(backend, field)
    K, dd = field_size(field)
    require_memory(
        sample_memory(
            xx.shape[0],
            xx.shape[1],
            max(n_steps, 1),
            sampler,
            K=K,
            dd=dd,
            backend=be,
            divergence=True,
        ),
        f"the likelihood of {xx.shape[0]} points over {n_steps} steps",
        "x's N or steps",
    )
    ts = time_grid(steps, 0.0, 1.0, t_grid)
    if ts[0] != 0.0 or ts[-1] != 1.0:
        raise ValueError(
            f"t_grid must run from 0 to 1 (the likelihood starts at N(0, I) at t = 0), "
            f"got [{ts[0]!r}, {ts[-1]!r}]"
        )
    if be == "cuda":
        raise ValueError("backend='cuda' is not available for the likelihood; use 'cpu' or 'numpy'")
    back = np.ascontiguousarray(ts[::-1])
    if be == "cpu":
        from . import cpu

        x0, ell = cpu.integrate_logdet(field, xx, back, sampler)
    else:
        if not callable(getattr(field, "divergence", None)):
            raise TypeError(
                f"field must provide divergence(x, t) for the likelihood, got {_describe(field)}"
            )
        x0, ell = _numpy_logdet(field, xx, back, sampler)
    # ell = int_1^0 div u dt = -int_0^1 div u dt
    require_bounded_state(x0, "the likelihood's integration")  # every backend, as in sampling
    logp = _log_normal01(x0) + ell
    require_finite_result(logp, "log-likelihood")
    return (logp, x0) if return_noise else logp
