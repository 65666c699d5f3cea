"""Numba kernels for exact Gaussian-mixture fields: evaluation, fused ODE/SDE integration, likelihood.

Private module: the kernels check nothing; ``refcfg.sampling.cpu`` validates and lowers (see
``refcfg.sampling.lowering`` for the array layout). Importing this module imports numba but
compiles nothing; ``refcfg`` imports it lazily, on the first call of a CPU-backend function.

The field. With components k of one or more Gaussian-mixture paths (DESIGN.md section 3), every
field the kernels evaluate has the form

    F(x) = sum_k C_k(x) [ dm_t mu_k + Q_k (gain_tk o y_k) ],    y_k = Q_k^T x - a_t Q_k^T mu_k,
    C_k(x) = sum_g coef_g r_gk(x),   r_gk = softmax over k in [lo_g, hi_g) of  ell_k,
    ell_k  = cst_tk - 1/2 sum_j y_kj^2 / s_tkj,     s_tkj = alpha_t^2 lam_kj + beta_t^2,

a linear combination over "groups" g (the leaves of a guided field: u(x|y) is a group over the
components of class y, u(x|null) a group over all of them) of mixture fields. With
a_t = alpha_t, dm_t = dalpha_t and gain = (alpha dalpha lam + beta dbeta) / s this is the velocity
(notes eq. 21 evaluated in closed form); with dm = 0, gain = -1/s it is the score; with
gain = (alpha dalpha lam + beta dbeta - sigma_t^2 / 2) / s it is the SDE drift u + sigma^2/2 score
(eq. 44). Groups share the component evaluations: the logits ell_k and eigen-coordinates y_k are
computed once per particle and component and reused by every group (CFG's conditional components
are a subset of the unconditional ones).

Numerics. Per group the softmax is taken against the group maximum: one shared vector of
exponentials e_k = exp(ell_k - m) (m the largest group maximum, exp by ``exp_fast``, vectorised)
serves every group whose maximum is within 600 of m (its largest e_k >= e^-600, a normal double, so
its normalised weights are exact to rounding); a group further below (a particle far from its class)
gets its own exponentials. No fastmath flag that assumes finite values is used (DESIGN.md section 5).

Layouts (K-contiguous so that the component loops vectorise): mu, mue (d, K); QT (d, d, K) with
QT[i, j, k] = Q_k[i, j]; per-time tables am, dm (T,), cst (T, K), invs, gain (T, dd, K) with
dd = 1 for isotropic mixtures (mode 0), d for diagonal (1) and full (2) ones.

Two families of kernels: one particle at a time (``eval_field`` for per-particle times,
``eval_div``, ``integrate_logdet``) and particle-blocked (``eval_field_blk``, ``integrate_blk``: P
particles per field evaluation, particle-major scratch, BLAS products for the rotations; see the
comment above ``_blk_field``). ``refcfg.sampling.cpu`` chooses.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import prange

from ._cpu_math import exp_fast, fill_normals, stream_key

# reassociation lets LLVM vectorise the sums over components; no nnan/ninf (inf logits must work)
_FM = {"reassoc", "contract", "nsz"}
_SHARE_GAP = 600.0
BLOCK = 64  # particles per prange task; results do not depend on it


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _pass1(x, r, ti, mode, am, cst, invs, mu, mue, QT, ybuf, lbuf):
    """Eigen-coordinates ybuf[j, k] and logits lbuf[k] of the point x[r] for all k at
    table row ti. (Helpers take whole arrays and row indices: a view made inside a prange loop
    costs an atomic reference-count update on the shared parent, which threads fight over; and
    every helper is inlined at the Numba IR level: a real call increfs/decrefs each array argument,
    ~14 atomic pairs per call, which measured 10x the arithmetic at K = 8, d = 2.)"""
    d = x.shape[1]
    K = cst.shape[1]
    a = am[ti]
    if mode == 2:
        for j in range(d):
            for k in range(K):
                ybuf[j, k] = -a * mue[j, k]
            for i in range(d):
                xi = x[r, i]
                for k in range(K):
                    ybuf[j, k] += QT[i, j, k] * xi
    else:
        for j in range(d):
            xj = x[r, j]
            for k in range(K):
                ybuf[j, k] = xj - a * mu[j, k]
    for k in range(K):
        lbuf[k] = cst[ti, k]
    if mode == 0:
        for j in range(d):
            for k in range(K):
                lbuf[k] -= 0.5 * invs[ti, 0, k] * ybuf[j, k] * ybuf[j, k]
    else:
        for j in range(d):
            for k in range(K):
                lbuf[k] -= 0.5 * invs[ti, j, k] * ybuf[j, k] * ybuf[j, k]


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _exp_shift(lbuf, m, ebuf):
    for k in range(lbuf.shape[0]):
        ebuf[k] = exp_fast(lbuf[k] - m)


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _weights(lbuf, lo, hi, coef, rl, rc, g0, g1, unit, ebuf, cbuf, gmax):
    """cbuf[k] = sum_{g in [g0, g1)} c_g softmax_g(lbuf)[k] (zero outside the groups), with
    c_g = coef[rc, g] (or 1 when ``unit``) and group ranges lo[rl, g], hi[rl, g]. Loops run over
    all K components with masks: a loop starting at a runtime offset did not vectorise (measured
    5x slower), and the groups of a CFG field cover every component anyway."""
    K = lbuf.shape[0]
    m = -np.inf
    for g in range(g0, g1):
        ga = lo[rl, g]
        gb = hi[rl, g]
        mg = -np.inf
        for k in range(K):
            v = lbuf[k] if (k >= ga and k < gb) else -np.inf
            mg = max(mg, v)
        gmax[g] = mg
        m = max(m, mg)
    _exp_shift(lbuf, m, ebuf)
    for k in range(K):
        cbuf[k] = 0.0
    for g in range(g0, g1):
        c = 1.0 if unit else coef[rc, g]
        if c == 0.0:
            continue
        ga = lo[rl, g]
        gb = hi[rl, g]
        if gmax[g] >= m - _SHARE_GAP:
            z = 0.0
            for k in range(K):
                z += ebuf[k] if (k >= ga and k < gb) else 0.0
            f = c / z
            for k in range(K):
                cbuf[k] += f * ebuf[k] if (k >= ga and k < gb) else 0.0
        else:  # rare: this group's components are all far below the best one
            mg = gmax[g]
            z = 0.0
            for k in range(ga, gb):
                z += exp_fast(lbuf[k] - mg)
            f = c / z
            for k in range(ga, gb):
                cbuf[k] += f * exp_fast(lbuf[k] - mg)


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _pass2(ti, mode, cbuf, dmv, gsign, gain, mu, QT, ybuf, zbuf, out, r):
    """out[r] = sum_k cbuf[k] [dmv mu_k + Q_k ((gsign gain[ti, :, k]) o y_k)] (ybuf is kept)."""
    d = out.shape[1]
    K = cbuf.shape[0]
    if mode == 2:
        for j in range(d):
            for k in range(K):
                zbuf[j, k] = (gsign * cbuf[k]) * gain[ti, j, k] * ybuf[j, k]
        for i in range(d):
            s = 0.0
            for k in range(K):
                s += dmv * cbuf[k] * mu[i, k]
            for j in range(d):
                for k in range(K):
                    s += QT[i, j, k] * zbuf[j, k]
            out[r, i] = s
    else:
        jj = 0
        for j in range(d):
            if mode == 1:
                jj = j
            s = 0.0
            for k in range(K):
                s += cbuf[k] * (dmv * mu[j, k] + gsign * gain[ti, jj, k] * ybuf[j, k])
            out[r, j] = s


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _field(x, r, ti, lo, hi, coef, rl, rc, mode, am, dm, cst, invs, gain, mu, mue, QT,
           ybuf, zbuf, lbuf, ebuf, cbuf, gmax, out, ro):
    """F(x[r]) at table row ti into out[ro]; groups from row rl of lo/hi and row rc of coef."""
    _pass1(x, r, ti, mode, am, cst, invs, mu, mue, QT, ybuf, lbuf)
    _weights(lbuf, lo, hi, coef, rl, rc, 0, lo.shape[1], False, ebuf, cbuf, gmax)
    _pass2(ti, mode, cbuf, dm[ti], 1.0, gain, mu, QT, ybuf, zbuf, out, ro)


@numba.njit(parallel=True, cache=True, fastmath=_FM)
def eval_field(x, tidx, lo, hi, coef, mode, am, dm, cst, invs, gain, mu, mue, QT, out):
    """out[n] = F(x[n]) with table row tidx[n] (or tidx[0] for all)."""
    N, d = x.shape
    K = cst.shape[1]
    G = lo.shape[1]
    pl = lo.shape[0] > 1
    pc = coef.shape[0] > 1
    pt = tidx.shape[0] > 1
    nblk = (N + BLOCK - 1) // BLOCK
    for b in prange(nblk):
        ybuf = np.empty((d, K))
        zbuf = np.empty((d, K))
        lbuf = np.empty(K)
        ebuf = np.empty(K)
        cbuf = np.empty(K)
        gmax = np.empty(G)
        for n in range(b * BLOCK, min(N, (b + 1) * BLOCK)):
            ti = tidx[n] if pt else tidx[0]
            _field(x, n, ti, lo, hi, coef, n if pl else 0, n if pc else 0, mode, am, dm, cst,
                   invs, gain, mu, mue, QT, ybuf, zbuf, lbuf, ebuf, cbuf, gmax, out, n)


# The likelihood path calls these as real functions (not inlined): it is not the hot path, and
# inlining them at their five call sites tripled the compile time of the two divergence kernels.
_weights_c = numba.njit(cache=True, fastmath=_FM)(_weights.py_func)
_pass1_c = numba.njit(cache=True, fastmath=_FM)(_pass1.py_func)
_pass2_c = numba.njit(cache=True, fastmath=_FM)(_pass2.py_func)


@numba.njit(cache=True, fastmath=_FM)
def _field_div(x, r, ti, lo, hi, coef, rl, rc, mode, am, dm, cst, invs, gain, mu, mue, QT,
               ybuf, zbuf, lbuf, ebuf, cbuf, gmax, rbuf, sv, out, ro):
    """Velocity F(x[r]) into out[ro] and its exact divergence (returned).

    For one group (a mixture velocity u = sum_k r_k v_k, v_k = dm mu_k + M_k (x - a mu_k),
    M_k = Q_k diag(gain_k) Q_k^T, grad r_k = r_k (s_k - sum_l r_l s_l), s_k = -S_k^{-1}(x - a mu_k)):
        div u = sum_k r_k (tr M_k + s_k . v_k) - (sum_k r_k s_k) . u,
    s_k . v_k = -sum_j y_kj (dm mue_kj + gain_kj y_kj) / s_kj in the eigenbasis. Linear in groups.
    sv (2, d) is scratch."""
    d = x.shape[1]
    G = lo.shape[1]
    K = cst.shape[1]
    _pass1_c(x, r, ti, mode, am, cst, invs, mu, mue, QT, ybuf, lbuf)
    _weights_c(lbuf, lo, hi, coef, rl, rc, 0, G, False, ebuf, cbuf, gmax)
    dmv = dm[ti]
    _pass2_c(ti, mode, cbuf, dmv, 1.0, gain, mu, QT, ybuf, zbuf, out, ro)
    div = 0.0
    for g in range(G):
        cg = coef[rc, g]
        if cg == 0.0:
            continue
        # responsibilities of group g alone (zero outside it)
        _weights_c(lbuf, lo, hi, coef, rl, rc, g, g + 1, True, ebuf, rbuf, gmax)
        acc = 0.0
        jj = 0
        for j in range(d):
            if mode != 0:
                jj = j
            for k in range(K):
                y = ybuf[j, k]
                acc += rbuf[k] * (gain[ti, jj, k]
                                  - invs[ti, jj, k] * y * (dmv * mue[j, k] + gain[ti, jj, k] * y))
        _pass2_c(ti, mode, rbuf, dmv, 1.0, gain, mu, QT, ybuf, zbuf, sv, 0)   # group velocity
        _pass2_c(ti, mode, rbuf, 0.0, -1.0, invs, mu, QT, ybuf, zbuf, sv, 1)  # group score
        dot = 0.0
        for j in range(d):
            dot += sv[0, j] * sv[1, j]
        div += cg * (acc - dot)
    return div


@numba.njit(parallel=True, cache=True, fastmath=_FM)
def eval_div(x, tidx, lo, hi, coef, mode, am, dm, cst, invs, gain, mu, mue, QT, out, div):
    """out[n] = F(x[n]) and div[n] = div F(x[n]) (F a velocity-type field: gain with dm)."""
    N, d = x.shape
    K = cst.shape[1]
    G = lo.shape[1]
    pl = lo.shape[0] > 1
    pc = coef.shape[0] > 1
    pt = tidx.shape[0] > 1
    nblk = (N + BLOCK - 1) // BLOCK
    for b in prange(nblk):
        ybuf = np.empty((d, K))
        zbuf = np.empty((d, K))
        lbuf = np.empty(K)
        ebuf = np.empty(K)
        cbuf = np.empty(K)
        rbuf = np.empty(K)
        gmax = np.empty(G)
        sv = np.empty((2, d))
        for n in range(b * BLOCK, min(N, (b + 1) * BLOCK)):
            ti = tidx[n] if pt else tidx[0]
            div[n] = _field_div(x, n, ti, lo, hi, coef, n if pl else 0, n if pc else 0, mode, am,
                                dm, cst, invs, gain, mu, mue, QT, ybuf, zbuf, lbuf, ebuf, cbuf,
                                gmax, rbuf, sv, out, n)


@numba.njit(parallel=True, cache=True, fastmath=_FM)
def integrate_logdet(x1, times, heun, lo, hi, coef, mode, am, dm, cst, invs, gain, mu, mue, QT,
                     xout, dl):
    """Augmented ODE (x, l)' = (u(x), div u(x)) on the grid ``times`` (run in the order given, e.g.
    from t = 1 down to 0); xout = x at the last time, dl = the integral of div u along the way."""
    N, d = x1.shape
    K = cst.shape[1]
    G = lo.shape[1]
    S = times.shape[0] - 1
    pl = lo.shape[0] > 1
    pc = coef.shape[0] > 1
    nblk = (N + BLOCK - 1) // BLOCK
    for b in prange(nblk):
        ybuf = np.empty((d, K))
        zbuf = np.empty((d, K))
        lbuf = np.empty(K)
        ebuf = np.empty(K)
        cbuf = np.empty(K)
        rbuf = np.empty(K)
        gmax = np.empty(G)
        sv = np.empty((2, d))
        st = np.empty((2, d))
        v = np.empty((2, d))
        for n in range(b * BLOCK, min(N, (b + 1) * BLOCK)):
            rl = n if pl else 0
            rc = n if pc else 0
            for j in range(d):
                st[0, j] = x1[n, j]
            ell = 0.0
            for s in range(S):
                h = times[s + 1] - times[s]
                q1 = 0.0
                q2 = 0.0
                for stage in range(2 if heun else 1):
                    if stage == 1:
                        for j in range(d):
                            st[1, j] = st[0, j] + h * v[0, j]
                    q = _field_div(st, stage, s + stage, lo, hi, coef, rl, rc, mode, am, dm, cst,
                                   invs, gain, mu, mue, QT, ybuf, zbuf, lbuf, ebuf, cbuf, gmax, rbuf,
                                   sv, v, stage)
                    if stage == 0:
                        q1 = q
                    else:
                        q2 = q
                if heun:
                    for j in range(d):
                        st[0, j] += 0.5 * h * (v[0, j] + v[1, j])
                    ell += 0.5 * h * (q1 + q2)
                else:
                    for j in range(d):
                        st[0, j] += h * v[0, j]
                    ell += h * q1
            for j in range(d):
                xout[n, j] = st[0, j]
            dl[n] = ell


# ----------------------------------------------------------------------------------------------
# Particle-blocked kernels (the hot path of ``velocity``/``score`` at one time, and of sampling):
# P particles (the "lanes", P = 64 or 32, a divisor of BLOCK) are evaluated together with
# particle-major scratch ([..., p]), so that every innermost loop runs over the P particles: long
# enough for LLVM's vectoriser to amortise its runtime alias checks (with a compile-time trip
# count of 8, LLVM fully unrolled the lane loop and vectorised the component loop with scatters
# instead: no gain), and every table load serves P particles. With full covariances the two
# eigenbasis rotations of all K components are two BLAS products per block,
#     Y (K d, P) = QA (K d, d) @ X (d, P),      V (d, P) = QB (d, K d) @ Z (K d, P),
# QA[k d + j, i] = QB[i, k d + j] = Q_k[i, j] (numba's np.dot: scipy's OpenBLAS, which runs these
# small products on the calling thread). The GEMM shape is always (., P): the last block is padded
# with copies of particle N - 1, so a particle's arithmetic depends only on its index (not on N,
# nor on the thread count). Each lane performs the arithmetic of the one-particle helpers above up
# to the order of the sums (rounding level: max |diff| / max |F| ~ 2e-14 at K = 64, d = 16).
# ----------------------------------------------------------------------------------------------


@numba.njit(cache=True, fastmath=_FM)
def _blk_field(X, sx, ti, mode, ga, gb, cg, am, dm, cst, invs, gain, mu, mue, QA, QB,
               yb, yb2, lb, eb, cb, gm, mx, zz, ff, ok, V, sv):
    """V[sv, :, p] = F(X[sx, :, p]) for the P = X.shape[2] lanes p at table row ti; group g of lane
    p is the component range [ga[g, p], gb[g, p]) with coefficient cg[g, p]. yb (K, d, P) scratch
    and yb2 its (K d, P) view (mode 2 only)."""
    d = X.shape[1]
    K = cst.shape[1]
    G = ga.shape[0]
    P = X.shape[2]
    a = am[ti]
    dmv = dm[ti]
    # pass 1: logits (and eigen-coordinates for full covariances)
    for k in range(K):
        c0 = cst[ti, k]
        for p in range(P):
            lb[k, p] = c0
    if mode == 2:
        # y_k = Q_k^T x - a Q_k^T mu_k for all k and lanes: one (K d, d) @ (d, P) product (BLAS)
        np.dot(QA, X[sx], yb2)
        for k in range(K):
            for j in range(d):
                m0 = a * mue[j, k]
                for p in range(P):
                    yb[k, j, p] -= m0
            for j in range(d):
                h = 0.5 * invs[ti, j, k]
                for p in range(P):
                    y = yb[k, j, p]
                    lb[k, p] -= h * y * y
    else:
        jj = 0
        for k in range(K):
            for j in range(d):
                if mode == 1:
                    jj = j
                mj = a * mu[j, k]
                h = 0.5 * invs[ti, jj, k]
                for p in range(P):
                    y = X[sx, j, p] - mj
                    lb[k, p] -= h * y * y
    # weights: per lane and group, softmax against the group maximum (see _weights)
    for p in range(P):
        mx[p] = -np.inf
    for g in range(G):
        for p in range(P):
            gm[g, p] = -np.inf
        for k in range(K):
            for p in range(P):
                v = lb[k, p] if (k >= ga[g, p] and k < gb[g, p]) else -np.inf
                gm[g, p] = max(gm[g, p], v)
        for p in range(P):
            mx[p] = max(mx[p], gm[g, p])
    for k in range(K):
        for p in range(P):
            eb[k, p] = exp_fast(lb[k, p] - mx[p])
            cb[k, p] = 0.0
    for g in range(G):
        nslow = 0
        for p in range(P):
            zz[p] = 0.0
            c = cg[g, p]
            ok[p] = c != 0.0 and gm[g, p] >= mx[p] - _SHARE_GAP
            if c != 0.0 and not ok[p]:
                nslow += 1
        for k in range(K):
            for p in range(P):
                zz[p] += eb[k, p] if (k >= ga[g, p] and k < gb[g, p]) else 0.0
        for p in range(P):
            ff[p] = cg[g, p] / zz[p] if ok[p] else 0.0
        for k in range(K):
            for p in range(P):
                cb[k, p] += ff[p] * eb[k, p] if (ok[p] and k >= ga[g, p] and k < gb[g, p]) else 0.0
        if nslow > 0:  # rare: a lane whose group is far below its best component
            for p in range(P):
                c = cg[g, p]
                if c != 0.0 and not ok[p]:
                    mg = gm[g, p]
                    z = 0.0
                    for k in range(ga[g, p], gb[g, p]):
                        z += exp_fast(lb[k, p] - mg)
                    f = c / z
                    for k in range(ga[g, p], gb[g, p]):
                        cb[k, p] += f * exp_fast(lb[k, p] - mg)
    # pass 2: the velocity
    if mode == 2:
        # sum_k Q_k (c_k gain_k o y_k): one (d, K d) @ (K d, P) product (BLAS), z overwrites y
        for k in range(K):
            for j in range(d):
                gk = gain[ti, j, k]
                for p in range(P):
                    yb[k, j, p] = cb[k, p] * gk * yb[k, j, p]
        np.dot(QB, yb2, V[sv])
        for k in range(K):
            for i in range(d):
                dmu = dmv * mu[i, k]
                for p in range(P):
                    V[sv, i, p] += cb[k, p] * dmu
    else:
        for j in range(d):
            for p in range(P):
                V[sv, j, p] = 0.0
        jj = 0
        for k in range(K):
            for j in range(d):
                if mode == 1:
                    jj = j
                dmu = dmv * mu[j, k]
                mj = a * mu[j, k]
                gk = gain[ti, jj, k]
                for p in range(P):
                    V[sv, j, p] += cb[k, p] * (dmu + gk * (X[sx, j, p] - mj))


@numba.njit(cache=True, inline="always")
def _blk_groups(n0, N, lo, hi, coef, ga, gb, cg):
    """Group ranges and coefficients of the lanes n0 .. n0 + P - 1 (past N: copies of N - 1)."""
    G = lo.shape[1]
    P = ga.shape[1]
    pl = lo.shape[0] > 1
    pc = coef.shape[0] > 1
    for p in range(P):
        n = min(n0 + p, N - 1)
        rl = n if pl else 0
        rc = n if pc else 0
        for g in range(G):
            ga[g, p] = lo[rl, g]
            gb[g, p] = hi[rl, g]
            cg[g, p] = coef[rc, g]


@numba.njit(parallel=True, cache=True, fastmath=_FM)
def eval_field_blk(x, ti, lo, hi, coef, mode, am, dm, cst, invs, gain, mu, mue, QA, QB, out, P):
    """out[n] = F(x[n]) at table row ti (one time for all particles), P particles at a time."""
    N, d = x.shape
    K = cst.shape[1]
    G = lo.shape[1]
    nblk = (N + BLOCK - 1) // BLOCK
    for b in prange(nblk):
        yb = np.empty((K if mode == 2 else 1, d, P))
        yb2 = yb.reshape((yb.shape[0] * d, P))
        lb = np.empty((K, P))
        eb = np.empty((K, P))
        cb = np.empty((K, P))
        gm = np.empty((G, P))
        ga = np.empty((G, P), dtype=np.int64)
        gb = np.empty((G, P), dtype=np.int64)
        cg = np.empty((G, P))
        mx = np.empty(P)
        zz = np.empty(P)
        ff = np.empty(P)
        ok = np.empty(P, dtype=np.bool_)
        X = np.empty((1, d, P))
        V = np.empty((1, d, P))
        for n0 in range(b * BLOCK, min(N, (b + 1) * BLOCK), P):
            _blk_groups(n0, N, lo, hi, coef, ga, gb, cg)
            for p in range(P):
                n = min(n0 + p, N - 1)
                for j in range(d):
                    X[0, j, p] = x[n, j]
            _blk_field(X, 0, ti, mode, ga, gb, cg, am, dm, cst, invs, gain, mu, mue, QA, QB,
                       yb, yb2, lb, eb, cb, gm, mx, zz, ff, ok, V, 0)
            for p in range(min(P, N - n0)):
                for j in range(d):
                    out[n0 + p, j] = V[0, j, p]


@numba.njit(parallel=True, cache=True, fastmath=_FM)
def integrate_blk(x0, times, heun, lo, hi, coef, mode, am, dm, cst, invs, gain, mu, mue, QA, QB,
                  sigma, use_noise, noise, seed, first_particle, save_slot, traj, out, P):
    """Fused time loop with P particles per field evaluation: Euler (heun=False) or Heun ODE
    steps, or Euler-Maruyama when sigma is not all zero, on the grid ``times`` (S + 1,); table row s
    holds the field at times[s].

    Euler-Maruyama: x += h F(x, t_s) + sigma[s] sqrt(h) xi, xi = noise[s, n] if use_noise else the
    counter-based normals of (seed, first_particle + n, s). save_slot[s] >= 0 stores the state at
    times[s] into traj[save_slot[s], n]. QA, QB: the eigenvectors in the blocked layouts above."""
    N, d = x0.shape
    K = cst.shape[1]
    G = lo.shape[1]
    S = times.shape[0] - 1
    nblk = (N + BLOCK - 1) // BLOCK
    sde = False
    for s in range(S):
        if sigma[s] != 0.0:
            sde = True
    for b in prange(nblk):
        yb = np.empty((K if mode == 2 else 1, d, P))
        yb2 = yb.reshape((yb.shape[0] * d, P))
        lb = np.empty((K, P))
        eb = np.empty((K, P))
        cb = np.empty((K, P))
        gm = np.empty((G, P))
        ga = np.empty((G, P), dtype=np.int64)
        gb = np.empty((G, P), dtype=np.int64)
        cg = np.empty((G, P))
        mx = np.empty(P)
        zz = np.empty(P)
        ff = np.empty(P)
        ok = np.empty(P, dtype=np.bool_)
        st = np.empty((2, d, P))   # [0]: the states, [1]: Heun's predictors
        v = np.empty((2, d, P))    # the two stage velocities
        xi = np.empty(d)
        for n0 in range(b * BLOCK, min(N, (b + 1) * BLOCK), P):
            nl = min(P, N - n0)
            _blk_groups(n0, N, lo, hi, coef, ga, gb, cg)
            for p in range(P):
                n = min(n0 + p, N - 1)
                for j in range(d):
                    st[0, j, p] = x0[n, j]
            if save_slot[0] >= 0:
                for p in range(nl):
                    for j in range(d):
                        traj[save_slot[0], n0 + p, j] = st[0, j, p]
            for s in range(S):
                h = times[s + 1] - times[s]
                for stage in range(2 if heun else 1):
                    if stage == 1:
                        for j in range(d):
                            for p in range(P):
                                st[1, j, p] = st[0, j, p] + h * v[0, j, p]
                    _blk_field(st, stage, s + stage, mode, ga, gb, cg, am, dm, cst, invs, gain,
                               mu, mue, QA, QB, yb, yb2, lb, eb, cb, gm, mx, zz, ff, ok, v, stage)
                if heun:
                    for j in range(d):
                        for p in range(P):
                            st[0, j, p] += 0.5 * h * (v[0, j, p] + v[1, j, p])
                else:
                    for j in range(d):
                        for p in range(P):
                            st[0, j, p] += h * v[0, j, p]
                if sde and sigma[s] != 0.0:
                    amp = sigma[s] * math.sqrt(h)
                    for p in range(nl):
                        if use_noise:
                            for j in range(d):
                                xi[j] = noise[s, n0 + p, j]
                        else:
                            fill_normals(stream_key(seed, first_particle + n0 + p, s), xi)
                        for j in range(d):
                            st[0, j, p] += amp * xi[j]
                if save_slot[s + 1] >= 0:
                    for p in range(nl):
                        for j in range(d):
                            traj[save_slot[s + 1], n0 + p, j] = st[0, j, p]
            for p in range(nl):
                for j in range(d):
                    out[n0 + p, j] = st[0, j, p]
