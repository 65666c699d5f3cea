"""numba CUDA kernels for exact Gaussian-mixture fields and their samplers (private).

Nothing here validates its input: ``refcfg.sampling.cuda`` lowers a field to flat arrays, checks
them and calls these kernels. This module imports ``numba.cuda`` at import time, so it must only be
imported lazily (``refcfg.sampling.cuda._kernels()``), never at ``import refcfg``.

One thread per particle. For every component k the thread computes, in the eigenbasis of
Sigma_k = Q_k diag(lam_k) Q_k^T, with S_k = alpha_t^2 Sigma_k + beta_t^2 I (eigenvalues
s_kj = alpha^2 lam_kj + beta^2), for a field  cv * velocity + cs * score,

    c_k   = Q_k^T (x - alpha mu_k)                                            (d,)
    l_k   = log pi_k - 1/2 sum_j log s_kj - 1/2 sum_j c_kj^2 / s_kj
          = log pi_k N(x; alpha mu_k, S_k) + const
    v_k   = cv dalpha mu_k + Q_k (g_k * c_k)                                  (d,)
    g_kj  = (cv (alpha dalpha lam_kj + beta dbeta) - cs) / s_kj

(velocity u = sum_k r_k [dalpha mu_k + (alpha dalpha Sigma_k + beta dbeta I) S_k^{-1}(x - alpha mu_k)],
score = sum_k r_k [-S_k^{-1}(x - alpha mu_k)]; DESIGN.md section 3, notes arXiv 2506.02070 v3
eq. 21/41/44). The d log 2 pi term cancels in the responsibilities and is dropped. Everything that
depends on t but not on x is tabulated on the host for each distinct time u (kernels never call
Python or evaluate a schedule), as four (U, K, d) tables T1..T4 plus lconst (U, K) = log pi_k -
1/2 sum_j log s_kj, mcoef (U,) = cv dalpha and alpha (U,):

    full covariances:  T1 = 1/s, T3 = g (T2, T4 unused); c_k = Q_k^T x - alpha (Q_k^T mu_k) with
                       mue[k] = Q_k^T mu_k; 2 d^2 + O(d) flops per particle-component
    diagonal (Q = I):  T1 = 1/sqrt(s), T2 = alpha mu / sqrt(s), T3 = g, T4 = mcoef mu - g alpha mu,
                       so that c/sqrt(s) = x T1 - T2 and v = T3 x + T4: 5 FMAs per coordinate

Responsibilities r_k = softmax_k(l_k) are accumulated with an online log-sum-exp: a running max m,
a running sum s = sum_k exp(l_k - m) and a running vector acc = sum_k exp(l_k - m) v_k, rescaled by
exp(m_old - m_new) whenever the max grows. Components with l_k = -inf (zero weight) are skipped.
v_k is never stored: each of its entries is computed and folded into both accumulators at once.

A field is a combination  ca * E_A + cb * E_B  of at most two exact fields (CFG: ca = w, cb = 1 - w).
Term A uses components [a0, a1) restricted to class ``labA[p]`` (all of them when labA[p] < 0, the
null label); term B likewise. When both terms live on the same mixture (CFG) each component's l_k and
v_k are computed once and feed both accumulators.
"""

from __future__ import annotations

import functools
import math

import numba
import numpy as np
from numba import cuda
from numba.cuda.random import xoroshiro128p_normal_float32, xoroshiro128p_normal_float64

__all__ = ["kernels", "MODE_NONE", "MODE_ARRAY", "MODE_RNG", "EULER", "HEUN", "EULER_MARUYAMA"]

EULER, HEUN, EULER_MARUYAMA = 0, 1, 2
MODE_NONE, MODE_ARRAY, MODE_RNG = 0, 1, 2


@functools.lru_cache(maxsize=None)
def kernels(d: int, dtype_name: str, full: bool):
    """Kernels specialised at compile time for dimension ``d``, ``dtype_name`` ('float64' or
    'float32') and covariance layout (``full``: eigenbasis rotation; else diagonal, Q = I).
    Returns a namespace with the ``evaluate``, ``sample`` and ``draw_normals`` kernels.

    d is a compile-time constant: it sizes the per-thread arrays and bounds every inner loop, so for
    small d the compiler unrolls the loops and keeps those arrays in registers instead of local
    memory (one compilation per (d, dtype, full) and process; see ``opts`` below)."""
    F = np.float64 if dtype_name == "float64" else np.float32
    NT = numba.float64 if dtype_name == "float64" else numba.float32
    D = int(d)
    FULL = bool(full)
    ZERO = F(0.0)
    ONE = F(1.0)
    HALF = F(0.5)
    NEG_INF = F(-np.inf)
    normal = xoroshiro128p_normal_float64 if F is np.float64 else xoroshiro128p_normal_float32
    # No cache=True: the kernels are closures over the device function ``_field``, and numba keys
    # its on-disk cache on the pickled closure cells; a dispatcher pickles differently in every
    # process, so the cache would never hit and would gain new files on every run (measured with
    # the CPU target, numba 0.68.1). Compilation costs a few seconds per (d, dtype, layout) and
    # process, which a GPU run amortises.
    opts = {}

    @cuda.jit(device=True, **opts)
    def _field(x, u, T1, T2, T3, T4, lconst, mcoef, alph, means, mue, Q, ccls,
               a0, a1, la, b0, b1, lb, ca, cb, c, acc_a, acc_b, out):
        """out[:D] = ca * E_A(x) + cb * E_B(x) at table row u (module docstring). ``out`` may be
        ``x`` itself: x is not read after the last component."""
        m_a = NEG_INF
        m_b = NEG_INF
        s_a = ZERO
        s_b = ZERO
        for j in range(D):
            acc_a[j] = ZERO
            acc_b[j] = ZERO
        alpha = alph[u]
        mc = mcoef[u]
        k_lo = min(a0, b0) if b1 > b0 else a0
        k_hi = max(a1, b1)
        for k in range(k_lo, k_hi):
            in_a = a0 <= k and k < a1 and (la < 0 or ccls[k] == la)
            in_b = b0 <= k and k < b1 and (lb < 0 or ccls[k] == lb)
            if not (in_a or in_b):
                continue
            l = lconst[u, k]
            if l == NEG_INF:
                continue
            quad = ZERO
            if FULL:
                # c = Q_k^T x - alpha Q_k^T mu_k;  quad = sum_i c_i^2 / s_ki;  c <- gcoef * c
                for i in range(D):
                    ci = -alpha * mue[k, i]
                    for j in range(D):
                        ci += Q[k, j, i] * x[j]
                    quad += ci * ci * T1[u, k, i]
                    c[i] = T3[u, k, i] * ci
            else:
                # (x_j - alpha mu_kj) / sqrt(s_kj) = x_j rs_kj - (alpha mu_kj rs_kj)
                for j in range(D):
                    cj = x[j] * T1[u, k, j] - T2[u, k, j]
                    quad += cj * cj
            l = l - HALF * quad
            # online log-sum-exp; acc is rescaled only when the running max grows
            e_a = ZERO
            if in_a:
                if l > m_a:
                    sc = math.exp(m_a - l)
                    for j in range(D):
                        acc_a[j] = acc_a[j] * sc
                    s_a = s_a * sc
                    m_a = l
                    e_a = ONE
                else:
                    e_a = math.exp(l - m_a)
                s_a += e_a
            e_b = ZERO
            if in_b:
                if l > m_b:
                    sc = math.exp(m_b - l)
                    for j in range(D):
                        acc_b[j] = acc_b[j] * sc
                    s_b = s_b * sc
                    m_b = l
                    e_b = ONE
                else:
                    e_b = math.exp(l - m_b)
                s_b += e_b
            for j in range(D):
                if FULL:
                    vj = mc * means[k, j]
                    for i in range(D):
                        vj += Q[k, j, i] * c[i]
                else:
                    # v_kj = mcoef mu_kj + g_kj (x_j - alpha mu_kj) = g_kj x_j + T4_kj
                    vj = T3[u, k, j] * x[j] + T4[u, k, j]
                acc_a[j] += e_a * vj
                acc_b[j] += e_b * vj
        fa = ca / s_a
        if b1 > b0 and cb != ZERO:
            fb = cb / s_b
            for j in range(D):
                out[j] = fa * acc_a[j] + fb * acc_b[j]
        else:
            for j in range(D):
                out[j] = fa * acc_a[j]

    @cuda.jit(**opts)
    def evaluate(X, tidx, labA, labB, T1, T2, T3, T4, lconst, mcoef, alph, means, mue, Q, ccls,
                 a0, a1, b0, b1, ca, cb, out):
        """out[p] = ca[p] E_A(X[p], t_p) + cb[p] E_B(X[p], t_p); tidx[p] is the table row of t_p."""
        p = cuda.grid(1)
        if p >= X.shape[0]:
            return
        x = cuda.local.array(D, NT)
        c = cuda.local.array(D, NT)
        acc_a = cuda.local.array(D, NT)
        acc_b = cuda.local.array(D, NT)
        for j in range(D):
            x[j] = X[p, j]
        _field(x, tidx[p], T1, T2, T3, T4, lconst, mcoef, alph, means, mue, Q, ccls,
               a0, a1, labA[p], b0, b1, labB[p], ca[p], cb[p], c, acc_a, acc_b, x)
        for j in range(D):
            out[p, j] = x[j]

    @cuda.jit(**opts)
    def sample(X, traj, every, labA, labB, T1, T2, T3, T4, lconst, mcoef, alph, means, mue, Q, ccls,
               a0, a1, b0, b1, ca, cb, h, noise_scale, method, noise_mode, noise, states):
        """Integrate particle p over the whole grid in place (X[p] holds x_init on entry).

        Table row i holds the field at grid time t_i (for Euler-Maruyama the drift u + sigma_i^2/2
        score). h[i] = t_{i+1} - t_i; noise_scale[i] = sigma_i sqrt(h_i).
          euler:           x <- x + h_i f(x, t_i)
          heun:            x' = x + h_i f(x, t_i);  x <- x + h_i/2 (f(x, t_i) + f(x', t_{i+1})),
                           computed as (x + x')/2 + h_i/2 f(x', t_{i+1}) (two arrays, not three)
          euler_maruyama:  x <- x + h_i f(x, t_i) + sigma_i sqrt(h_i) z_i,  z_i ~ N(0, I)
        z_i = noise[i, p] (noise_mode 1) or D successive xoroshiro128p normals of state p
        (noise_mode 2). traj[s] = x after step s * every (traj[0] = x_init, the last row the final
        state, as in ``refcfg.sampling.reference``) when every > 0."""
        p = cuda.grid(1)
        if p >= X.shape[0]:
            return
        n_steps = h.shape[0]
        x = cuda.local.array(D, NT)
        y = cuda.local.array(D, NT)
        c = cuda.local.array(D, NT)
        acc_a = cuda.local.array(D, NT)
        acc_b = cuda.local.array(D, NT)
        la = labA[p]
        lb = labB[p]
        cap = ca[p]
        cbp = cb[p]
        for j in range(D):
            x[j] = X[p, j]
        if every > 0:
            for j in range(D):
                traj[0, p, j] = x[j]
        for i in range(n_steps):
            hi = h[i]
            _field(x, i, T1, T2, T3, T4, lconst, mcoef, alph, means, mue, Q, ccls,
                   a0, a1, la, b0, b1, lb, cap, cbp, c, acc_a, acc_b, y)
            if method == 1:  # Heun
                for j in range(D):
                    y[j] = x[j] + hi * y[j]          # Euler predictor x'
                    x[j] = HALF * (x[j] + y[j])      # (x + x')/2
                _field(y, i + 1, T1, T2, T3, T4, lconst, mcoef, alph, means, mue, Q, ccls,
                       a0, a1, la, b0, b1, lb, cap, cbp, c, acc_a, acc_b, y)
                for j in range(D):
                    x[j] = x[j] + HALF * hi * y[j]
            else:
                for j in range(D):
                    x[j] = x[j] + hi * y[j]
                if method == 2:
                    sc = noise_scale[i]
                    if noise_mode == 1:
                        for j in range(D):
                            x[j] = x[j] + sc * noise[i, p, j]
                    elif noise_mode == 2:
                        for j in range(D):
                            x[j] = x[j] + sc * normal(states, p)
            if every > 0 and ((i + 1) % every == 0 or i + 1 == n_steps):
                s = (i + 1) // every if (i + 1) % every == 0 else traj.shape[0] - 1
                for j in range(D):
                    traj[s, p, j] = x[j]
        for j in range(D):
            X[p, j] = x[j]

    @cuda.jit(**opts)
    def draw_normals(states, out):
        """out[i, p, :] = the normals that ``sample`` (noise_mode 2) draws for particle p at step i."""
        p = cuda.grid(1)
        if p >= out.shape[1]:
            return
        for i in range(out.shape[0]):
            for j in range(out.shape[2]):
                out[i, p, j] = normal(states, p)

    class _K:
        pass

    ns = _K()
    ns.evaluate = evaluate
    ns.sample = sample
    ns.draw_normals = draw_normals
    ns.dtype = F
    ns.d = D
    ns.full = FULL
    return ns
