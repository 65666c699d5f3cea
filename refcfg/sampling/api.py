"""``refcfg.sample``: integrate a field from p_init = N(0, I) at t = 0 to t = 1."""

from __future__ import annotations

import numbers

import numpy as np

from .._validation import _describe, as_float_array, as_generator, as_positive_int
from . import reference

__all__ = ["sample", "SAMPLERS", "time_grid", "sigma_values"]

SAMPLERS = ("euler", "heun", "euler_maruyama")


def time_grid(steps=100, t_start=0.0, t_end=1.0, t_grid=None) -> np.ndarray:
    """The integration grid: ``t_grid`` (strictly increasing, in [0, 1]) or ``steps`` uniform steps
    from t_start to t_end."""
    if t_grid is not None:
        ts = as_float_array(t_grid, "t_grid", ndim=1)
        if ts.size < 2 or np.any(np.diff(ts) <= 0) or ts[0] < 0 or ts[-1] > 1:
            raise ValueError(f"t_grid must be strictly increasing in [0, 1] with >= 2 points, got "
                             f"{_describe(ts)}")
        return ts
    steps = as_positive_int(steps, "steps")
    for name, v in (("t_start", t_start), ("t_end", t_end)):
        if not isinstance(v, numbers.Real) or not 0.0 <= v <= 1.0:
            raise ValueError(f"{name} must be a float in [0, 1], got {v!r}")
    if not t_start < t_end:
        raise ValueError(f"t_start must be < t_end, got t_start={t_start!r}, t_end={t_end!r}")
    return np.linspace(float(t_start), float(t_end), steps + 1)


def sigma_values(sigma, ts, schedule) -> np.ndarray:
    """sigma_t at the grid points ts[:-1] (the Euler-Maruyama evaluation times).

    sigma: a float >= 0, a callable sigma(t), or "ddpm" meaning sigma_t^2 = 2 a_t (a_t of eq. 41),
    which diverges at t = 0 when alpha_0 = 0: start at t_start > 0 then."""
    t_eval = ts[:-1]
    if sigma is None:
        raise ValueError("sigma is required for sampler='euler_maruyama' (a float, a callable "
                         "sigma(t), or 'ddpm' for sigma_t^2 = 2 a_t)")
    if isinstance(sigma, str):
        if sigma != "ddpm":
            raise ValueError(f"sigma must be a float, a callable or 'ddpm', got {sigma!r}")
        if schedule is None:
            raise ValueError("sigma='ddpm' needs a field with a schedule (sigma_t^2 = 2 a_t)")
        try:
            a = np.asarray(schedule.a(t_eval))
        except ValueError as exc:
            raise ValueError(f"sigma='ddpm': {exc}; start the SDE at t_start > 0") from None
        return np.sqrt(2.0 * np.maximum(a, 0.0))
    if callable(sigma):
        s = np.broadcast_to(np.asarray([sigma(float(t)) for t in t_eval], dtype=np.float64),
                            t_eval.shape)
    else:
        s = np.broadcast_to(as_float_array(sigma, "sigma"), t_eval.shape)
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError("sigma must be finite and >= 0 on the time grid")
    return np.array(s)


def sample(field, n, sampler="heun", steps=100, seed=None, *, t_grid=None, t_start=0.0, t_end=1.0,
           sigma=None, backend="auto", x_init=None, noise=None, return_trajectory=False,
           trajectory_every=1):
    """Samples at t_end from x(t_start) ~ N(0, I) (or ``x_init``) by integrating ``field``.

    Parameters
    ----------
    field : any object with velocity(x, t) (and score(x, t) for the SDE): exact, guided or learned.
    n : number of particles.
    sampler : "euler" (order 1), "heun" (order 2) or "euler_maruyama" (SDE eq. 44 with
        dX = [u + sigma_t^2/2 score] dt + sigma_t dW, which has the ODE's marginals for any sigma_t).
    steps, t_start, t_end, t_grid : a uniform grid of ``steps`` steps, or an explicit increasing grid.
    seed : int, None or np.random.Generator: the initial noise and the SDE noise.
    sigma : SDE diffusion: float, callable sigma(t), or "ddpm" (sigma_t^2 = 2 a_t).
    backend : "auto" | "numpy" (this reference implementation works for every field).
    x_init : (n, d) initial points instead of N(0, I) draws; noise : (steps, n, d) standard normals.
    return_trajectory : also return the states every ``trajectory_every`` steps and their times.

    Returns (n, d) samples, or (samples, trajectory (T, n, d), times (T,)).
    """
    if not callable(getattr(field, "velocity", None)):
        raise TypeError(f"field must have a velocity(x, t) method, got {_describe(field)}")
    n = as_positive_int(n, "n")
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if backend not in ("auto", "numpy"):
        raise ValueError(f"backend must be 'auto' or 'numpy', got {backend!r}")
    ts = time_grid(steps, t_start, t_end, t_grid)
    rng = as_generator(seed)
    d = getattr(field, "d", None)
    if x_init is not None:
        x0 = as_float_array(x_init, "x_init", ndim=2)
        if x0.shape[0] != n or (d is not None and x0.shape[1] != d):
            raise ValueError(f"x_init has shape {x0.shape} but ({n}, {d}) is required")
    else:
        if d is None:
            raise ValueError("field has no attribute d: pass x_init to fix the dimension")
        x0 = rng.standard_normal((n, d))
    sig = None
    if sampler == "euler_maruyama":
        if not callable(getattr(field, "score", None)):
            raise TypeError("sampler='euler_maruyama' needs a field with a score(x, t) method")
        sig = sigma_values(sigma, ts, getattr(field, "schedule", None))
        if noise is not None:
            noise = as_float_array(noise, "noise")
            if noise.shape != (len(ts) - 1,) + x0.shape:
                raise ValueError(f"noise has shape {noise.shape} but ({len(ts) - 1}, {n}, "
                                 f"{x0.shape[1]}) is required")
    elif sigma is not None:
        raise ValueError(f"sigma is only used by sampler='euler_maruyama', got sampler={sampler!r}")
    every = None
    if return_trajectory:
        every = as_positive_int(trajectory_every, "trajectory_every")
    return reference.integrate(field, x0, ts, sampler, sig, noise, rng, every)
