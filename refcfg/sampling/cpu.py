"""CPU backend: exact Gaussian-mixture fields evaluated and integrated by fused Numba kernels.

``refcfg.sample(..., backend="cpu")`` (and ``"auto"`` for lowerable fields) lands here. A field is
lowered to flat arrays (``refcfg.sampling.lowering``); the per-time constants of every grid time
are computed once on the host (never inside the particle loop); the kernels
(``refcfg.sampling._cpu_kernels``) run ``prange`` over blocks of particles, and each particle stays
in a small thread-local buffer across all time steps (fused time loop: no (N, K, d) temporaries, no
per-step round trips through memory).

Samplers (notes arXiv 2506.02070 v3): "euler" (order 1) and "heun" (order 2) on the probability-flow
ODE dX = u_t(X) dt, "euler_maruyama" on the SDE eq. 44, dX = [u + sigma_t^2/2 score] dt + sigma_t dW.
SDE noise is a counter-based stream per (seed, particle, step) (``refcfg.sampling._cpu_math``), so a
seed gives the same samples for every thread count; ``noise=`` (steps, n, d) overrides it.

Nothing here compiles at import: numba and the kernels are imported on the first call.
"""

from __future__ import annotations

import numpy as np

from .._validation import _describe, as_float_array, as_generator
from .lowering import NotLowerable, lower, is_lowerable

__all__ = ["available", "supports", "velocity", "score", "divergence", "integrate",
           "integrate_logdet", "seed_to_int", "normals"]

_TABLE_LIMIT = 1 << 23  # elements of one (T, K, d) table before evaluation at many times is chunked


def _lanes(low):
    """Particles per field evaluation in the blocked kernels (a divisor of their BLOCK = 64): 64
    for isotropic/diagonal mixtures, 32 for full covariances (scratch (K, d, 32) stays in L2).
    Measured on 2 cores: K = 8, d = 2: 64 lanes 1.6-2x faster than 8; K = 64, d = 16: 32 and 16
    faster than 64."""
    return 32 if low.mode == 2 else 64


def available() -> bool:
    """True when numba can be imported (the CPU kernels compile on first use)."""
    try:
        import numba  # noqa: F401
    except ImportError:  # pragma: no cover - numba is a dependency
        return False
    return True


def supports(field) -> bool:
    """True when ``field`` can run on the CPU kernels (exact fields and linear guided trees)."""
    return is_lowerable(field) and available()


def _k():
    from . import _cpu_kernels
    return _cpu_kernels


def _lower(field, n):
    try:
        return lower(field, n)
    except NotLowerable as exc:
        raise TypeError(f"backend='cpu' needs an exact field (ExactField, CFGField, "
                        f"ClassifierGuidedField or GuidedField of them), got {_describe(field)}: "
                        f"{exc}") from None


def _qk(low):
    """(QA, QB) for the particle-blocked kernels: QA[k d + j, i] = QB[i, k d + j] = Q_k[i, j]
    ((1, 1) placeholders unless full covariances)."""
    d, _, K = low.QT.shape
    QA = np.ascontiguousarray(np.transpose(low.QT, (2, 1, 0)).reshape(K * d, d))
    QB = np.ascontiguousarray(np.transpose(low.QT, (0, 2, 1)).reshape(d, K * d))
    return QA, QB


def _points(x, d):
    x = as_float_array(x, "x", ndim=2)
    if x.shape[1] != d:
        raise ValueError(f"x has shape {x.shape} but (N, {d}) is required")
    return np.ascontiguousarray(x)


def _evaluate(field, x, t, kind, with_div=False):
    low = _lower(field, None)
    x = _points(x, low.d)
    N = x.shape[0]
    if low.n is not None and low.n != N:
        raise ValueError(f"x has {N} points but the field holds per-particle labels/weights for "
                         f"{low.n}")
    t_arr = np.asarray(t, dtype=np.float64)
    if t_arr.ndim == 0:
        times, tidx = t_arr.reshape(1), np.zeros(1, dtype=np.int64)
    elif t_arr.shape == (N,):
        times, tidx = np.unique(t_arr, return_inverse=True)
        tidx = tidx.astype(np.int64)
    else:
        raise ValueError(f"t must be a float or shape ({N},), got shape {t_arr.shape}")
    if np.any(~np.isfinite(times)) or np.any(times < 0) or np.any(times > 1):
        raise ValueError("t must lie in [0, 1]")
    k = _k()
    out = np.empty_like(x)
    div = np.empty(N)
    per = max(1, _TABLE_LIMIT // max(1, low.K * low.d))
    if len(times) <= per:
        chunks = [(np.arange(N), times, tidx)]
    else:  # many distinct times: evaluate in chunks of particles with their own tables
        order = np.argsort(tidx, kind="stable")
        chunks = []
        for s in range(0, N, per):
            idx = order[s:s + per]
            tt, ti = np.unique(t_arr[idx], return_inverse=True)
            chunks.append((idx, tt, ti.astype(np.int64)))
    for idx, tt, ti in chunks:
        sub = low if len(chunks) == 1 else low.select(idx)
        xs = x if len(chunks) == 1 else np.ascontiguousarray(x[idx])
        am, dm, cst, invs, gain = sub.tables(tt, kind)
        o = np.empty_like(xs)
        if with_div:
            dv = np.empty(xs.shape[0])
            k.eval_div(xs, ti, sub.lo, sub.hi, sub.coef, sub.mode, am, dm, cst, invs, gain,
                       sub.mu, sub.mue, sub.QT, o, dv)
            div[idx] = dv
        elif len(tt) == 1:  # one time for all particles: the particle-blocked kernel
            k.eval_field_blk(xs, 0, sub.lo, sub.hi, sub.coef, sub.mode, am, dm, cst, invs, gain,
                             sub.mu, sub.mue, *_qk(sub), o, _lanes(sub))
        else:
            k.eval_field(xs, ti, sub.lo, sub.hi, sub.coef, sub.mode, am, dm, cst, invs, gain,
                         sub.mu, sub.mue, sub.QT, o)
        out[idx] = o
    return (out, div) if with_div else out


def velocity(field, x, t) -> np.ndarray:
    """The field's velocity at (x (N, d), t float or (N,)) by the Numba kernel (eq. 21 in closed
    form; guided combinations eq. 62/65)."""
    return _evaluate(field, x, t, "velocity")


def score(field, x, t) -> np.ndarray:
    """The field's score (guided: the same linear combination of exact scores)."""
    return _evaluate(field, x, t, "score")


def divergence(field, x, t) -> np.ndarray:
    """The exact divergence of the field's velocity, (N,)."""
    return _evaluate(field, x, t, "velocity", with_div=True)[1]


def seed_to_int(seed) -> int:
    """A 63-bit integer key for the counter-based SDE noise: an int seed is used as is (mod 2^63);
    a Generator or None draws one."""
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, (bool, np.bool_)):
        return int(seed) % (1 << 63)
    return int(as_generator(seed).integers(0, 1 << 63))


def normals(seed, n, steps, d, first_particle=0) -> np.ndarray:
    """The (steps, n, d) standard normals the CPU SDE kernel uses for ``seed`` (int): normal
    [s, i, j] is a pure function of (seed, first_particle + i, s, j)."""
    from ._cpu_math import normals_table
    if first_particle:
        return normals_table(seed_to_int(seed), n + first_particle, steps, d)[:, first_particle:]
    return normals_table(seed_to_int(seed), n, steps, d)


def integrate(field, x_init, ts, sampler, sigma=None, noise=None, seed=None,
              trajectory_every=None, first_particle=0):
    """Integrate a lowerable field from ts[0] to ts[-1], starting at x_init (n, d).

    sampler "euler" | "heun" | "euler_maruyama" (sigma (S,) = sigma_t at ts[:-1]). Noise: ``noise``
    (S, n, d) standard normals, else the counter-based stream of ``seed`` (an int, or a Generator /
    None from which a key is drawn). Returns x at ts[-1], or (x, trajectory (T, n, d), times (T,))
    with ``trajectory_every`` = k (every k-th grid time, always the first and the last).
    Validation of ts/sigma/noise is the caller's (``refcfg.sample``)."""
    x0 = np.ascontiguousarray(np.asarray(x_init, dtype=np.float64))
    n, d = x0.shape
    low = _lower(field, n)
    ts = np.ascontiguousarray(np.asarray(ts, dtype=np.float64))
    S = len(ts) - 1
    sig = np.zeros(S + 1)
    if sampler == "euler_maruyama":
        sig[:S] = np.asarray(sigma, dtype=np.float64)
        am, dm, cst, invs, gain = low.tables(ts, "drift", sig)
        heun = False
    elif sampler in ("euler", "heun"):
        am, dm, cst, invs, gain = low.tables(ts, "velocity")
        heun = sampler == "heun"
    else:
        raise ValueError(f"sampler must be 'euler', 'heun' or 'euler_maruyama', got {sampler!r}")
    use_noise = noise is not None
    nz = (np.ascontiguousarray(np.asarray(noise, dtype=np.float64)) if use_noise
          else np.zeros((1, 1, 1)))
    key = 0 if use_noise or sampler != "euler_maruyama" else seed_to_int(seed)
    slot = np.full(S + 1, -1, dtype=np.int64)
    if trajectory_every:
        keep = [i for i in range(S + 1) if i % trajectory_every == 0 or i == S]
        slot[keep] = np.arange(len(keep))
        traj = np.empty((len(keep), n, d))
    else:
        keep = None
        traj = np.empty((1, 1, 1))
    out = np.empty_like(x0)
    _k().integrate_blk(x0, ts, heun, low.lo, low.hi, low.coef, low.mode, am, dm, cst, invs,
                       gain, low.mu, low.mue, *_qk(low), sig, use_noise, nz, np.uint64(key),
                       np.int64(first_particle), slot, traj, out, _lanes(low))
    if trajectory_every:
        return out, traj, ts[keep]
    return out


def integrate_logdet(field, x, ts, sampler="heun"):
    """Integrate the augmented ODE (x, l)' = (u, div u) along ``ts`` (any order; from 1 to 0 for
    the likelihood). Returns (x at ts[-1], integral of div u dt along ts)."""
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    low = _lower(field, x.shape[0])
    ts = np.ascontiguousarray(np.asarray(ts, dtype=np.float64))
    am, dm, cst, invs, gain = low.tables(ts, "velocity")
    xout = np.empty_like(x)
    dl = np.empty(x.shape[0])
    _k().integrate_logdet(x, ts, sampler == "heun", low.lo, low.hi, low.coef, low.mode, am, dm,
                          cst, invs, gain, low.mu, low.mue, low.QT, xout, dl)
    return xout, dl
