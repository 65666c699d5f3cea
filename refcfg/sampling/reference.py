"""NumPy reference integrators: Euler, Heun (probability-flow ODE) and Euler-Maruyama (SDE eq. 44).

They call ``field.velocity(x, t)`` (and ``field.score(x, t)`` for the SDE) once per stage, so they
work for any field object, exact or learned, and serve as the baseline for the Numba kernels.
Private layer: arguments are validated by ``refcfg.sampling.api.sample``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["integrate"]


def integrate(field, x, ts, sampler, sigma=None, noise=None, rng=None, trajectory_every=None):
    """Integrate from ts[0] to ts[-1] starting at x (n, d) (copied).

    sampler: "euler" | "heun" | "euler_maruyama". ``sigma`` is an array of sigma_t at ts[:-1] (SDE
    only). Noise for step i is ``noise[i]`` when given, otherwise drawn from ``rng`` step by step.
    Returns x at ts[-1], and with ``trajectory_every`` = k also the states at every k-th grid time
    (always including the first and the last) as (T, n, d) with their times (T,).
    """
    x = np.array(x, dtype=np.float64)
    traj, times = ([x.copy()], [ts[0]]) if trajectory_every else (None, None)
    n_steps = len(ts) - 1
    for i in range(n_steps):
        t, h = ts[i], ts[i + 1] - ts[i]
        if sampler == "euler":      # x_{i+1} = x_i + h u(x_i, t_i)
            x = x + h * field.velocity(x, t)
        elif sampler == "heun":     # trapezoidal corrector on the Euler predictor (2nd order)
            k1 = field.velocity(x, t)
            k2 = field.velocity(x + h * k1, ts[i + 1])
            x = x + 0.5 * h * (k1 + k2)
        else:                       # Euler-Maruyama on dX = [u + sigma^2/2 score] dt + sigma dW
            s = sigma[i]
            drift = field.velocity(x, t)
            if s != 0.0:
                drift = drift + 0.5 * s * s * field.score(x, t)
            dw = noise[i] if noise is not None else rng.standard_normal(x.shape)
            x = x + h * drift + s * np.sqrt(h) * dw
        if trajectory_every and ((i + 1) % trajectory_every == 0 or i + 1 == n_steps):
            traj.append(x.copy())
            times.append(ts[i + 1])
    if trajectory_every:
        return x, np.stack(traj), np.asarray(times)
    return x
