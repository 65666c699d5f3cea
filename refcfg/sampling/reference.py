"""NumPy reference integrators: every explicit Runge-Kutta sampler of ``steppers.TABLEAUS`` on the
probability-flow ODE, and Euler-Maruyama on the SDE of eq. 44.

They call ``field.velocity(x, t)`` (and ``field.score(x, t)`` for the SDE) once per stage, so they
work for any field object, exact or learned, and serve as the baseline for the Numba and CUDA
kernels. Private layer: arguments are validated by ``refcfg.sampling.api.sample``.
"""

from __future__ import annotations

import numpy as np

from .._validation import require_bounded_state
from .steppers import SDE_SAMPLERS, stage_times, tableau

__all__ = ["integrate", "rk_step"]


def rk_step(fn, x, h, times, tab):
    """One explicit Runge-Kutta step of size h from x with the tableau ``tab``: the stage slopes
    k_j = fn(x + h sum_l a_jl k_l, times[j]) and x + h sum_j b_j k_j (zero coefficients skipped,
    as in the kernels). ``fn`` may return a tuple of arrays (an augmented system, e.g. the state and
    the divergence); each stage state is then ``x`` (a tuple) advanced componentwise. Returns the
    new state (same structure as x)."""
    tup = isinstance(x, tuple)
    xs = x if tup else (x,)
    ks = []
    for j in range(len(tab.b)):
        st = xs
        for l in range(j):
            if tab.a[j, l] != 0.0:
                st = tuple(s + (h * tab.a[j, l]) * k for s, k in zip(st, ks[l]))
        k = fn(st if tup else st[0], times[j])
        ks.append(k if tup else (k,))
    out = xs
    for j in range(len(tab.b)):
        if tab.b[j] != 0.0:
            out = tuple(s + (h * tab.b[j]) * k for s, k in zip(out, ks[j]))
    return out if tup else out[0]


def integrate(field, x, ts, sampler, sigma=None, noise=None, rng=None, trajectory_every=None):
    """Integrate from ts[0] to ts[-1] starting at x (n, d) (copied).

    sampler: a name of ``steppers.SAMPLERS``. ``sigma`` is an array of sigma_t at ts[:-1] (SDE
    only). Noise for step i is ``noise[i]`` when given, otherwise drawn from ``rng`` step by step.
    Returns x at ts[-1], and with ``trajectory_every`` = k also the states at every k-th grid time
    (always including the first and the last) as (T, n, d) with their times (T,).
    """
    x = np.array(x, dtype=np.float64)
    velocity = _bounded(field.velocity)
    score = _bounded(field.score) if sampler in SDE_SAMPLERS else None
    traj, times = ([x.copy()], [ts[0]]) if trajectory_every else (None, None)
    n_steps = len(ts) - 1
    sde = sampler in SDE_SAMPLERS
    tab = tableau(sampler)
    tst = stage_times(ts, tab)
    for i in range(n_steps):
        h = ts[i + 1] - ts[i]
        if sde:  # Euler-Maruyama on dX = [u + sigma^2/2 score] dt + sigma dW
            s = sigma[i]

            def drift(z, t, s=s):
                v = velocity(z, t)
                return v + (0.5 * s * s) * score(z, t) if s != 0.0 else v

            x = rk_step(drift, x, h, tst[i], tab)
            dw = noise[i] if noise is not None else rng.standard_normal(x.shape)
            x = x + (s * np.sqrt(h)) * dw
        else:
            x = rk_step(velocity, x, h, tst[i], tab)
        if trajectory_every and ((i + 1) % trajectory_every == 0 or i + 1 == n_steps):
            traj.append(x.copy())
            times.append(ts[i + 1])
    require_bounded_state(x)
    if trajectory_every:
        return x, np.stack(traj), np.asarray(times)
    return x


def _bounded(fn):
    """``fn`` (a field method) called only on states with |x| <= X_MAX: beyond, the integration has
    diverged (``require_bounded_state``: the same error on every backend)."""

    def call(z, t):
        require_bounded_state(z)
        return fn(z, t)

    return call
