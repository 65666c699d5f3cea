"""Same-noise references: where the exact field takes the noise a pipeline drew.

- :func:`library_time`: refcfg's time t and scale c (x_t = c x') of another library's state x'
  at a noise level given as an EDM sigma, a training timestep with its ``alphas_cumprod``, or a
  (signal, noise) pair; the one map (``time_from_signal_noise``) used by every adapter.
- :func:`ode_endpoint`: the exact probability-flow ODE endpoint from x(t_start) = x_init to t_end
  (settable: a sampler that stops at its grid's last timestep is compared with a reference that
  stops there), by refcfg's RK4 with step doubling until two successive solutions agree to ``tol``
  (the result is the finer one; its stated error is the RMS change of the last doubling, an upper
  estimate for RK4's error, which falls 16-fold per doubling).
- :func:`sde_reference`: draws of the exact SDE law (eq. 44, sigma_t^2 = 2 a_t by default: the
  reverse-time diffusion that ancestral samplers discretise) from the given starts, by refcfg's
  Euler-Maruyama with ``steps`` steps (weak error O(1/steps): measured on a Gaussian from a fixed
  start at t = 0.3, the endpoint mean is off by about 0.11 at 50 steps, 0.013 at 200 and is within
  the sampling noise of 20000 paths at 800); test a stochastic sampler's samples against them with
  ``refcfg.sample_checks.two_sample_test``.
"""

from __future__ import annotations

import dataclasses
import numbers

import numpy as np

from .._validation import _describe, as_float_array, as_positive_int
from ._core import (
    _field_object,
    as_shape,
    flat_shape,
    signal_noise_from_alphas_cumprod,
    time_from_signal_noise,
)

__all__ = ["library_time", "ODEEndpoint", "ode_endpoint", "sde_reference"]


def _level(v, name) -> float:
    """One noise-level number; TypeError/ValueError naming ``name`` otherwise."""
    a = as_float_array(v, name)
    if a.ndim != 0 and a.shape != (1,):
        raise ValueError(
            f"{name} must be one number (library_time maps one noise level), got shape {a.shape}"
        )
    return float(a.reshape(()))


def library_time(
    schedule, *, sigma=None, timestep=None, alphas_cumprod=None, signal=None, noise=None
) -> tuple[float, float]:
    """(t, c): refcfg's time and the scale with x_t = c x' for a library state x' at one noise
    level, given as exactly one of: ``sigma`` (EDM / k-diffusion, x' = x0 + sigma eps), ``timestep``
    with ``alphas_cumprod`` (x' = sqrt(acp) x0 + sqrt(1 - acp) eps), or ``signal`` and ``noise``.
    schedule: refcfg's schedule (a Schedule, or a field / GMMPath: its schedule)."""
    sched = getattr(schedule, "schedule", schedule)
    if not hasattr(sched, "alpha") or not hasattr(sched, "beta"):
        raise TypeError(
            f"schedule must be a refcfg Schedule, a field or a GMMPath, got {_describe(schedule)}"
        )
    given = [sigma is not None, timestep is not None, signal is not None or noise is not None]
    if sum(given) != 1:
        raise ValueError(
            "give exactly one of sigma=, timestep= (with alphas_cumprod=), or signal= and noise="
        )
    if sigma is not None:
        s = _level(sigma, "sigma")
        if s < 0:
            raise ValueError(f"sigma must be >= 0, got {s!r}")
        a, s = 1.0, s
    elif timestep is not None:
        if alphas_cumprod is None:
            raise ValueError("timestep= needs alphas_cumprod= (the schedule it indexes)")
        aa, ss = signal_noise_from_alphas_cumprod(alphas_cumprod, timestep)
        if aa.shape != (1,):
            raise ValueError(f"timestep must be one number, got {aa.shape[0]} values")
        a, s = float(aa[0]), float(ss[0])
    else:
        if signal is None or noise is None:
            raise ValueError("signal= and noise= go together")
        a, s = _level(signal, "signal"), _level(noise, "noise")
    t, c = time_from_signal_noise(sched, a, s)
    return float(t[0]), float(c[0])


@dataclasses.dataclass
class ODEEndpoint:
    """x: the exact ODE endpoint at t_end (x_init's shape); error: RMS over rows of the change of
    the last step doubling (an upper estimate of x's error: RK4's error at the finer step is about
    1/15 of that change); steps: RK4 steps of x; coarse: the solution with steps / 2 steps (to
    state the error of a quantity computed from x: its change between coarse and x)."""

    x: np.ndarray
    error: float
    steps: int
    t_start: float
    t_end: float
    coarse: np.ndarray | None = None


def _rms(a, b) -> float:
    return float(np.sqrt(np.mean(np.sum((a - b) ** 2, axis=1)))) if a.size else 0.0


def _time(v, name):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a float in [0, 1], got {_describe(v)}")
    v = float(v)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {v!r}")
    return v


def ode_endpoint(
    field,
    x_init,
    t_start=0.0,
    t_end=1.0,
    *,
    tol=1e-10,
    steps=64,
    max_steps=65536,
    shape=None,
    backend="auto",
) -> ODEEndpoint:
    """The exact probability-flow ODE solution at ``t_end`` of ``field`` (a field object, e.g.
    ``path.cfg(y, w)``, or a GMMPath) from x(t_start) = ``x_init`` ((N, d) or (N, *shape), refcfg's
    coordinates: convert a library's latents with :func:`library_time`'s c). RK4 from ``steps``
    steps, doubled until two solutions differ by <= ``tol`` (RMS over rows) or ``max_steps`` is
    reached (then a ValueError names the error reached); ``tol=None``: one doubling (x from
    2 ``steps`` steps, its error the change from ``steps``). Returns an :class:`ODEEndpoint`."""
    from ..sampling import sample

    field = _field_object(field)
    t0, t1 = _time(t_start, "t_start"), _time(t_end, "t_end")
    if not t0 < t1:
        raise ValueError(f"t_start must be < t_end, got t_start={t0!r}, t_end={t1!r}")
    x = as_float_array(x_init, "x_init")
    n, d = flat_shape(x.shape, field.d, as_shape(shape, field.d), "x_init")
    if tol is not None:
        tol = float(as_float_array(tol, "tol"))
        if not tol > 0:
            raise ValueError(f"tol must be > 0 or None, got {tol!r}")
    k = as_positive_int(steps, "steps")
    max_steps = as_positive_int(max_steps, "max_steps")
    if 2 * k > max_steps:
        raise ValueError(
            f"max_steps must be >= 2 * steps (one doubling), got steps={k}, max_steps={max_steps}"
        )
    x2 = x.reshape(n, d)

    def solve(m):
        return sample(
            field, n, sampler="rk4", steps=m, t_start=t0, t_end=t1, x_init=x2, backend=backend
        )

    prev = solve(k)
    while True:
        k *= 2
        cur = solve(k)
        err = _rms(cur, prev)
        if tol is None or err <= tol:
            return ODEEndpoint(cur.reshape(x.shape), err, k, t0, t1, prev.reshape(x.shape))
        if k * 2 > max_steps:
            raise ValueError(
                f"ode_endpoint: RK4 with {k} steps still changes by {err:.3g} > "
                f"tol = {tol:g} from {k // 2} steps; raise max_steps or tol"
            )
        prev = cur


def sde_reference(
    field,
    x_init,
    t_start=0.0,
    t_end=1.0,
    *,
    sigma="ddpm",
    steps=2000,
    seed=0,
    shape=None,
    backend="auto",
) -> np.ndarray:
    """Draws of the exact SDE law (eq. 44 with diffusion ``sigma``, default "ddpm":
    sigma_t^2 = 2 a_t) at ``t_end`` from x(t_start) = ``x_init`` (one independent path per row),
    by refcfg's Euler-Maruyama with ``steps`` steps (weak error O(1/steps)). Compare a stochastic
    sampler's samples from the same starts with ``refcfg.sample_checks.two_sample_test``."""
    from ..sampling import sample

    field = _field_object(field)
    t0, t1 = _time(t_start, "t_start"), _time(t_end, "t_end")
    if not t0 < t1:
        raise ValueError(f"t_start must be < t_end, got t_start={t0!r}, t_end={t1!r}")
    x = as_float_array(x_init, "x_init")
    n, d = flat_shape(x.shape, field.d, as_shape(shape, field.d), "x_init")
    out = sample(
        field,
        n,
        sampler="euler_maruyama",
        sigma=sigma,
        steps=steps,
        seed=seed,
        t_start=t0,
        t_end=t1,
        x_init=x.reshape(n, d),
        backend=backend,
    )
    return out.reshape(x.shape)
