"""numba CUDA kernels for lowered Gaussian-mixture fields and their samplers (private).

Nothing here validates its input: ``refcfg.sampling.cuda`` lowers a field with
``refcfg.sampling.lowering.lower``, derives the device layout below from its records, checks the
arguments and launches these kernels. This module imports ``numba.cuda`` at import time, so it is
only imported lazily (by ``refcfg.sampling.cuda``), never at ``import refcfg``.

The field. A lowered field is a sum over G groups (the linear terms of the field),

    F(x, t) = sum_g coef_g * tcoef_g(t) * sum_{k in [lo_g, hi_g)} r_gk(x) v_k(x),
    r_gk    = softmax over k in [lo_g, hi_g) of  ell_k,
    ell_k   = cst_tk - 1/2 sum_j y_kj^2 invs_tkj,      y_k = Q_k^T x - alpha_t Q_k^T mu_k,
    v_k     = dm_t mu_k + Q_k (gain_tk o y_k),

with the per-time constants of ``Lowered.tables`` (alpha, dm, cst, invs, gain, tcoef): the marginal
velocity (eq. 18 in closed form), the score (eq. 38) or the SDE drift u + sigma^2/2 score (eq. 44)
depending on the kind of table. Kernels never call Python or evaluate a schedule: every quantity
that depends on t but not on x comes from a table row.

One thread per particle. For each component k in the union of the particle's group ranges the
thread computes y_k and ell_k once and feeds every group that contains k (CFG's conditional
components are a subset of the unconditional ones, so both terms cost one pass). Each group keeps
an online log-sum-exp: a running max m_g, a running sum s_g = sum_k exp(ell_k - m_g) and a running
vector acc_g = sum_k exp(ell_k - m_g) v_k, rescaled by exp(m_old - m_new) when the max grows; v_k
is never stored, each entry is folded into the accumulators as it is computed. Components with
ell_k = -inf (zero weight) and groups whose factor coef * tcoef is 0 at this row are skipped.

Logits near t = 0. Where beta_t >= alpha_t the quadratic form takes the split form of the NumPy core
(``GMMPath._quadratic``; ``_quad_term``, the one place it is written here), in the eigenbasis
(xe = Q_k^T x, m = Q_k^T mu_k, eigenvalues lam):
y_j^2 / s_j = xe_j^2 / beta^2 + alpha (beta^2 (alpha m_j^2 - 2 m_j xe_j) - alpha lam_j xe_j^2)
/ (s_j beta^2), less the first terms, which sum to |x|^2 / beta^2 for every component and cancel in
every softmax: near t = 0 the direct form loses the class information of a large |x| to rounding;
the split form does not.

Device layout: the lowering's records as they are (the CPU kernels read the same layouts), in the
chosen float type and with int32 ranges:

    DevComponents  mu, mue (d, K) means and eigen-frame means Q_k^T mu_k; QT (d, d, K) with
                   QT[i, j, k] = Q_k[i, j] (a (1, 1, 1) placeholder unless mode is full);
                   lam (K, dd) eigenvalues of the covariance Sigma_k
    DevGroups      lo, hi (L, G) int32 component ranges (L = 1 shared or n per particle);
                   coef (C, G) particle factors (C = 1 or n)
    DevTables      alpha, beta, dm (T,); cst (T, K); invs, gain (T, dd, K) with dd = 1 for
                   isotropic mixtures; tcoef (T, G)
    DevNoise       Euler-Maruyama's noise (``sde_kernel``)

Component-minor (d, K) suits the GPU as well as the CPU: the threads of a warp walk the same
components in step (their group ranges agree but for per-particle labels), so each load of
mu[j, k] is one address broadcast to the warp whatever the layout, and a cache line of a row
mu[j, :] then serves the next components of the same loop.

The sizes d, the covariance layout (``full``, ``iso``), G and the sampler are compile-time constants: the per-thread
arrays (x, stage derivatives, G accumulators) have static sizes and every inner loop a static
bound, so the compiler unrolls them and keeps the arrays in registers for small d.

Samplers. An explicit Runge-Kutta method arrives as its Butcher coefficients (``a`` row-major and
``b``, from ``refcfg.sampling.steppers.TABLEAUS``, read by the host code: this module imports only
NumPy and Numba) when a kernel is built: they become constants of the kernel, so zero coefficients
cost nothing. Table row of step i, stage j is i * s + j (the rows of
``stage_times(ts, tableau).ravel()``). Euler-Maruyama uses the drift table, row i at t_i.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numba
import numpy as np
from numba import cuda
from numba.cuda.random import xoroshiro128p_normal_float32, xoroshiro128p_normal_float64

__all__ = [
    "DevComponents",
    "DevGroups",
    "DevTables",
    "DevNoise",
    "evaluate_kernel",
    "ode_kernel",
    "sde_kernel",
    "normals_kernel",
    "NOISE_ARRAY",
    "NOISE_RNG",
]

NOISE_ARRAY, NOISE_RNG = 1, 2


class DevComponents(NamedTuple):
    """Static component arrays on the device (see the module docstring)."""

    mu: object  # (d, K)
    mue: object  # (d, K)
    QT: object  # (d, d, K)
    lam: object  # (K, dd)


class DevGroups(NamedTuple):
    """Group ranges and particle factors on the device."""

    lo: object
    hi: object
    coef: object


class DevTables(NamedTuple):
    """Per-time tables on the device, one row per table time."""

    alpha: object
    beta: object
    dm: object
    cst: object
    invs: object
    gain: object
    tcoef: object


class DevNoise(NamedTuple):
    """Euler-Maruyama's noise: x += amp[i] z_i after step i, amp[i] = sigma_{t_i} sqrt(|h_i|)
    (sigma_t the SDE's diffusion coefficient), z_i = normals[i, p] (mode NOISE_ARRAY) or d
    draws of the xoroshiro128p stream p of ``rng_states`` (NOISE_RNG)."""

    amp: object  # (S,)
    mode: int
    normals: object  # (S, n, d), or a (1, 1, 1) placeholder
    rng_states: object


def _types(dtype_name: str):
    F = np.float64 if dtype_name == "float64" else np.float32
    NT = numba.float64 if dtype_name == "float64" else numba.float32
    return F, NT


@functools.cache
def _quad_term_device(dtype_name: str):
    """The device function ``quad_term(v, m, lm, iv, alpha, b2, ab2, split)``: one
    eigen-direction's term of sum_j y_j^2 / s_j for the coordinate v (of x in the component's
    eigenbasis), the mean's m, eigenvalue lm and iv = 1 / s: with ``split`` (beta >= alpha;
    b2 = beta^2, ab2 = alpha / b2) the split form less v^2 / beta^2 (module docstring), else
    (v - alpha m)^2 / s."""
    F, _ = _types(dtype_name)
    TWO = F(2.0)

    @cuda.jit(device=True)
    def quad_term(v, m, lm, iv, alpha, b2, ab2, split):
        if split:
            return ab2 * iv * (b2 * (alpha * m * m - TWO * m * v) - alpha * lm * v * v)
        y = v - alpha * m
        return y * y * iv

    return quad_term


@functools.cache
def _field_device(d: int, dtype_name: str, full: bool, iso: bool, G: int):
    """The device function ``field(x, r, lrow, crow, comp, grp, tab, out, orow)``: writes
    F(x) at table row r into out[orow, :d], with group ranges from row lrow of grp.lo/hi and
    particle factors from row crow of grp.coef. ``x`` is a length-d array (not written)."""
    F, NT = _types(dtype_name)
    D = int(d)
    GG = int(G)
    FULL = bool(full)  # rotated components (the lowering's full mode)
    ISO = bool(iso)  # isotropic components: one variance per component
    ZERO, ONE, HALF = F(0.0), F(1.0), F(0.5)
    NEG_INF = F(-np.inf)
    quad_term = _quad_term_device(dtype_name)

    @cuda.jit(device=True)
    def field(x, r, lrow, crow, comp, grp, tab, out, orow):
        fac = cuda.local.array(GG, NT)  # coef * tcoef of each group at this row
        glo = cuda.local.array(GG, numba.int32)  # the group's range; empty when fac is 0
        ghi = cuda.local.array(GG, numba.int32)
        mx = cuda.local.array(GG, NT)  # running max of the group's logits
        sm = cuda.local.array(GG, NT)  # running sum of exp(ell - mx)
        eg = cuda.local.array(GG, NT)  # this component's weight in each group
        acc = cuda.local.array((GG, D), NT)
        c = cuda.local.array(D, NT)  # gain o y_k (full covariances only)
        k_lo = 1 << 30
        k_hi = 0
        for g in range(GG):
            f = grp.coef[crow, g] * tab.tcoef[r, g]
            fac[g] = f
            mx[g] = NEG_INF
            sm[g] = ZERO
            for j in range(D):
                acc[g, j] = ZERO
            glo[g] = 0
            ghi[g] = 0
            if f != ZERO:
                glo[g] = grp.lo[lrow, g]
                ghi[g] = grp.hi[lrow, g]
                k_lo = min(k_lo, glo[g])
                k_hi = max(k_hi, ghi[g])
        alpha = tab.alpha[r]
        beta = tab.beta[r]
        dm = tab.dm[r]
        split = alpha <= beta  # the split form of the quadratic (module docstring)
        b2 = beta * beta if split else ONE
        ab2 = alpha / b2
        for k in range(k_lo, k_hi):
            member = False
            for g in range(GG):
                if glo[g] <= k and k < ghi[g]:
                    member = True
            if not member:
                continue
            ell = tab.cst[r, k]
            if ell == NEG_INF:
                continue
            quad = ZERO
            if FULL:
                for i in range(D):
                    xe = ZERO
                    for j in range(D):
                        xe += comp.QT[j, i, k] * x[j]  # (Q_k^T x)_i
                    m = comp.mue[i, k]
                    lm = comp.lam[k, i]
                    quad += quad_term(xe, m, lm, tab.invs[r, i, k], alpha, b2, ab2, split)
                    c[i] = tab.gain[r, i, k] * (xe - alpha * m)
            else:  # y_k is recomputed below rather than stored: d fewer live registers
                for j in range(D):
                    jj = 0 if ISO else j
                    m = comp.mu[j, k]
                    lm = comp.lam[k, jj]
                    quad += quad_term(x[j], m, lm, tab.invs[r, jj, k], alpha, b2, ab2, split)
            ell = ell - HALF * quad
            for g in range(GG):
                e = ZERO
                if glo[g] <= k and k < ghi[g]:
                    if ell > mx[g]:
                        sc = math.exp(mx[g] - ell)
                        for j in range(D):
                            acc[g, j] = acc[g, j] * sc
                        sm[g] = sm[g] * sc
                        mx[g] = ell
                        e = ONE
                    else:
                        e = math.exp(ell - mx[g])
                    sm[g] += e
                eg[g] = e
            for j in range(D):
                mkj = comp.mu[j, k]
                vj = dm * mkj
                if FULL:
                    for i in range(D):
                        vj += comp.QT[j, i, k] * c[i]
                else:
                    jj = 0 if ISO else j
                    vj += tab.gain[r, jj, k] * (x[j] - alpha * mkj)
                for g in range(GG):
                    acc[g, j] += eg[g] * vj
        for j in range(D):
            out[orow, j] = ZERO
        for g in range(GG):
            if fac[g] != ZERO:
                f = fac[g] / sm[g]
                for j in range(D):
                    out[orow, j] += f * acc[g, j]

    return field


@cuda.jit(device=True)
def _group_rows(grp, p):
    """(row of grp.lo / grp.hi, row of grp.coef) of particle p: its own, or the shared row 0."""
    return (p if grp.lo.shape[0] > 1 else 0), (p if grp.coef.shape[0] > 1 else 0)


@functools.cache
def evaluate_kernel(d: int, dtype_name: str, full: bool, iso: bool, G: int):
    """``evaluate(X, rows, comp, grp, tab, out)``: out[p] = F(X[p]) at table row rows[p]."""
    _, NT = _types(dtype_name)
    D = int(d)
    field = _field_device(d, dtype_name, full, iso, G)

    @cuda.jit
    def evaluate(X, rows, comp, grp, tab, out):
        p = cuda.grid(1)
        if p >= X.shape[0]:
            return
        x = cuda.local.array(D, NT)
        for j in range(D):
            x[j] = X[p, j]
        lrow, crow = _group_rows(grp, p)
        field(x, rows[p], lrow, crow, comp, grp, tab, out, p)

    return evaluate


@functools.cache
def _save_device(d: int):
    """``save(traj, every, i, n_steps, p, x)``: traj[s, p] = x after step i + 1 when it is kept
    (every k-th step and the last; traj[0] holds the start)."""
    D = int(d)

    @cuda.jit(device=True)
    def save(traj, every, i, n_steps, p, x):
        if every > 0 and ((i + 1) % every == 0 or i + 1 == n_steps):
            s = (i + 1) // every if (i + 1) % every == 0 else traj.shape[0] - 1
            for j in range(D):
                traj[s, p, j] = x[j]

    return save


@functools.cache
def _start_device(d: int):
    """``start(X, traj, every, p, x)``: x = X[p], and traj[0, p] = x when a trajectory is kept."""
    D = int(d)

    @cuda.jit(device=True)
    def start(X, traj, every, p, x):
        for j in range(D):
            x[j] = X[p, j]
        if every > 0:
            for j in range(D):
                traj[0, p, j] = x[j]

    return start


@functools.cache
def ode_kernel(d: int, dtype_name: str, full: bool, iso: bool, G: int, a: tuple, b: tuple):
    """``sample(X, traj, every, h, comp, grp, tab)``: integrate particle p in place over the grid
    with the explicit Runge-Kutta method of Butcher coefficients ``a`` (s * s, row-major) and ``b``:

        k_j = F(x + h_i sum_{l<j} a_jl k_l, row i*s + j),   x <- x + h_i sum_j b_j k_j.

    h (S,) step sizes. traj[0] = x_init and traj[m] the state after step m * every (the last row
    the final state) when every > 0, as ``refcfg.sampling.reference``."""
    F, NT = _types(dtype_name)
    D = int(d)
    S = len(b)
    A = tuple(F(v) for v in a)  # A[j * S + l] = a_jl
    B = tuple(F(v) for v in b)
    ZERO = F(0.0)
    field = _field_device(d, dtype_name, full, iso, G)
    save = _save_device(d)
    start = _start_device(d)

    @cuda.jit
    def sample(X, traj, every, h, comp, grp, tab):
        p = cuda.grid(1)
        if p >= X.shape[0]:
            return
        n_steps = h.shape[0]
        x = cuda.local.array(D, NT)
        y = cuda.local.array(D, NT)
        k = cuda.local.array((S, D), NT)
        lrow, crow = _group_rows(grp, p)
        start(X, traj, every, p, x)
        for i in range(n_steps):
            hi = h[i]
            for st in range(S):
                for j in range(D):
                    y[j] = x[j]
                for l in range(st):
                    a = A[st * S + l]
                    if a != ZERO:
                        for j in range(D):
                            y[j] += (hi * a) * k[l, j]
                field(y, i * S + st, lrow, crow, comp, grp, tab, k, st)
            for st in range(S):
                b = B[st]
                if b != ZERO:
                    for j in range(D):
                        x[j] += (hi * b) * k[st, j]
            save(traj, every, i, n_steps, p, x)
        for j in range(D):
            X[p, j] = x[j]

    return sample


@functools.cache
def sde_kernel(d: int, dtype_name: str, full: bool, iso: bool, G: int):
    """``sample(X, traj, every, h, comp, grp, tab, noise)``: Euler-Maruyama on the drift table
    (row i at t_i),

        x <- x + h_i F(x, t_i) + amp_i z_i,   amp_i = sigma_i sqrt(|h_i|)

    with ``noise`` a DevNoise (z_i from an array or from the particle's xoroshiro128p stream).
    traj as in ``ode_kernel``."""
    F, NT = _types(dtype_name)
    D = int(d)
    normal = xoroshiro128p_normal_float64 if F is np.float64 else xoroshiro128p_normal_float32
    field = _field_device(d, dtype_name, full, iso, G)
    save = _save_device(d)
    start = _start_device(d)

    @cuda.jit
    def sample(X, traj, every, h, comp, grp, tab, noise):
        p = cuda.grid(1)
        if p >= X.shape[0]:
            return
        n_steps = h.shape[0]
        x = cuda.local.array(D, NT)
        k = cuda.local.array((1, D), NT)
        lrow, crow = _group_rows(grp, p)
        start(X, traj, every, p, x)
        for i in range(n_steps):
            hi = h[i]
            field(x, i, lrow, crow, comp, grp, tab, k, 0)
            for j in range(D):
                x[j] += hi * k[0, j]
            amp = noise.amp[i]
            if noise.mode == NOISE_ARRAY:
                for j in range(D):
                    x[j] += amp * noise.normals[i, p, j]
            elif noise.mode == NOISE_RNG:
                for j in range(D):
                    x[j] += amp * normal(noise.rng_states, p)
            save(traj, every, i, n_steps, p, x)
        for j in range(D):
            X[p, j] = x[j]

    return sample


@functools.cache
def normals_kernel(dtype_name: str):
    """``draw(states, out)``: out[i, p, :] = the normals the SDE kernel (NOISE_RNG) draws for
    particle p at step i."""
    F, _ = _types(dtype_name)
    normal = xoroshiro128p_normal_float64 if F is np.float64 else xoroshiro128p_normal_float32

    @cuda.jit
    def draw(states, out):
        p = cuda.grid(1)
        if p >= out.shape[1]:
            return
        for i in range(out.shape[0]):
            for j in range(out.shape[2]):
                out[i, p, j] = normal(states, p)

    return draw
