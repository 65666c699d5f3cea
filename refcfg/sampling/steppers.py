"""The samplers as data: explicit Runge-Kutta methods (Butcher tableaus) and Euler-Maruyama.

An explicit s-stage Runge-Kutta step of size h from (x, t) for dx/dt = F(x, t) is

    k_j = F(x + h sum_{l < j} a_jl k_l,  t + c_j h),   j = 0 .. s - 1,
    x'  = x + h sum_j b_j k_j,

so a method is the triple (a, b, c) with a strictly lower triangular, sum_j b_j = 1 and
c_j = sum_l a_jl (consistency). ``TABLEAUS`` holds the ODE samplers of the probability-flow ODE
dX = u_t(X) dt; ``SDE_SAMPLERS`` the stochastic one, Euler-Maruyama on the SDE of eq. 44 of the
notes, dX = [u + sigma_t^2/2 score] dt + sigma_t dW (one stage at c = 0, the Euler tableau on the
drift, plus sigma_t sqrt(h) xi).

Every integrator of refcfg reads these tables: the NumPy reference (``refcfg.sampling.reference``),
the likelihood integrator (``refcfg.sampling.likelihood``) and the CPU and CUDA kernels. Adding an
explicit Runge-Kutta sampler is one entry in ``TABLEAUS``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Tableau", "TABLEAUS", "SDE_SAMPLERS", "SAMPLERS", "tableau", "stage_times"]


class Tableau(NamedTuple):
    """An explicit Runge-Kutta method: its Butcher tableau (a (s, s) strictly lower triangular,
    b (s,), c (s,), float64) and its order of convergence."""

    name: str
    order: int
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray

    @property
    def stages(self) -> int:
        """The number of field evaluations per step."""
        return len(self.b)


def _tab(name, order, a, b):
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    b = np.array(b, dtype=np.float64)
    b.setflags(write=False)
    c = a.sum(axis=1)
    c.setflags(write=False)
    return Tableau(name, order, a, b, c)


TABLEAUS: dict[str, Tableau] = {
    # forward Euler, order 1: x' = x + h F(x, t)
    "euler": _tab("euler", 1, [[0.0]], [1.0]),
    # Heun's method (explicit trapezoid), order 2: the average of the slopes at t and t + h (the
    # second at the Euler predictor)
    "heun": _tab("heun", 2, [[0.0, 0.0], [1.0, 0.0]], [0.5, 0.5]),
    # explicit midpoint rule, order 2: the slope at t + h/2 at the half Euler step
    "midpoint": _tab("midpoint", 2, [[0.0, 0.0], [0.5, 0.0]], [0.0, 1.0]),
    # the classical Runge-Kutta method, order 4
    "rk4": _tab(
        "rk4",
        4,
        [[0.0, 0.0, 0.0, 0.0], [0.5, 0.0, 0.0, 0.0], [0.0, 0.5, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]],
        [1 / 6, 1 / 3, 1 / 3, 1 / 6],
    ),
}

SDE_SAMPLERS = ("euler_maruyama",)
SAMPLERS = tuple(TABLEAUS) + SDE_SAMPLERS


def tableau(sampler: str) -> Tableau:
    """The tableau a sampler evaluates its field with: its own for an ODE sampler, Euler's for
    Euler-Maruyama (one stage at c = 0, on the SDE drift). ValueError for unknown names."""
    if sampler in TABLEAUS:
        return TABLEAUS[sampler]
    if sampler in SDE_SAMPLERS:
        return TABLEAUS["euler"]
    raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")


def stage_times(ts, tableau: Tableau) -> np.ndarray:
    """(S, s) stage times ts[i] + c_j h_i of the S = len(ts) - 1 steps of the grid ts for ``tableau``; c_j = 1
    gives exactly ts[i + 1] (not a rounded ts[i] + h_i, which could miss an endpoint). The per-time
    tables of a run are evaluated at ``stage_times(ts, tab).ravel()``: step i, stage j is row
    i * s + j."""
    ts = np.asarray(ts, dtype=np.float64)
    h = np.diff(ts)
    c = tableau.c[None, :]
    st = ts[:-1, None] + c * h[:, None]
    return np.ascontiguousarray(np.where(c == 1.0, ts[1:, None], st))
