"""Numba kernels for exact Gaussian-mixture fields: blocked evaluation, fused RK/SDE/likelihood loop.

Private module: the kernels check nothing; ``refcfg.sampling.cpu`` validates, lowers and lays out
(the records of ``refcfg.sampling.lowering``: ``Components``, ``Groups``, ``TimeTables``).
Importing this module imports numba but compiles nothing; ``refcfg`` imports it lazily, on the first
call of a CPU-backend function.

The field. With components k of one or more Gaussian-mixture paths, every field the kernels
evaluate has the form (table row r, i.e. one time; particle n)

    F(x) = sum_k C_k(x) [ dm_r mu_k + Q_k (gain_rk o y_k) ],    y_k = Q_k^T x - alpha_r Q_k^T mu_k,
    C_k(x) = sum_g coef[n, g] tcoef[r, g] q_gk(x),   q_gk = softmax over k in [lo_g, hi_g) of ell_k,
    ell_k  = cst_rk - 1/2 sum_j y_kj^2 / s_rkj,      s_rkj = alpha_r^2 lam_kj + beta_r^2,

a linear combination over "groups" g (the terms of a guided field: u(x|y) is a group over the
components of class y, u(x|null) a group over all of them) of mixture fields. With
dm = dalpha and gain = (alpha dalpha lam + beta dbeta) / s this is the velocity (the marginal
velocity, eq. 18 of the notes, in closed form for Gaussian components); with dm = 0, gain = -1/s
the score; with gain = (alpha dalpha lam + beta dbeta - sigma_t^2 / 2) / s the SDE drift
u + sigma^2/2 score (eq. 44). Groups share the component evaluations: the logits ell_k and
eigen-coordinates y_k are computed once per particle and component and reused by every group.

The divergence (an option of the same evaluation, velocity tables): for one group, u = sum_k q_k v_k,
v_k = dm mu_k + M_k (x - alpha mu_k), M_k = Q_k diag(gain_k) Q_k^T, grad q_k = q_k (s_k - sum_l q_l s_l),
s_k = -S_k^{-1}(x - alpha mu_k):
    div u = sum_k q_k (tr M_k + s_k . v_k) - (sum_k q_k s_k) . u,
s_k . v_k = -sum_j y_kj (dm mue_kj + gain_kj y_kj) / s_kj in the eigenbasis; linear in the groups.

Numerics. The softmax of every group is taken against one shared shift, the lane's largest logit m:
one vector of exponentials e_k = exp(ell_k - m) (``exp_fast``, vectorised) serves every group whose
sum z_g = sum_{k in g} e_k is at least e^-600 (its largest e_k is then a normal double, so its
normalised weights are exact to rounding); a group below that (a particle far from its class) gets
its own exponentials against its own maximum. No fastmath flag that assumes finite values is used
(inf logits occur).

Logits. Where beta_r >= alpha_r they take the split form of the NumPy core (``GMMPath._quadratic``):
in the eigenbasis of component k (xe = Q_k^T x, m = Q_k^T mu_k, eigenvalues lam_j),

    (xe_j - alpha m_j)^2 / s_j
        = xe_j^2 / beta^2 + alpha (beta^2 (alpha m_j^2 - 2 m_j xe_j) - alpha lam_j xe_j^2) / (s_j beta^2),

and the first terms, |x|^2 / beta^2 summed over j, one number per lane, are dropped (they cancel in
every softmax). For |x| up to 1e6 near t = 0 the direct form loses the class information to
rounding; the split form does not (at alpha = 0 every component ties exactly). Rows with
alpha > beta keep the direct form (the split terms grow like 1/beta^2 there); per-lane rows choose
lane by lane (``_sub_quad``).

Isotropic components (mode 0) at one row for all lanes with beta >= alpha: with D_kp = mu_k . x_p
the split logits are lb_kp = cst_k - (alpha invs_k / 2) (alpha |mu_k|^2 - 2 D_kp - alpha lam_k
|x_p|^2 / beta^2), and pass 2 is the matrix-product form
F = (sum_k C_k gain_k) x + sum_k C_k (dm - alpha gain_k) mu_k: 4d flops per particle-component
instead of ~8d. From MM_MIN_D dimensions on, D is one (K, d) @ (d, P) product (BLAS) and the second
sum one (d, K) @ (K, P) product; below, both are loops. Its rounding error is
that of the direct form up to the order of summation (docs/numerics.md).

Blocking. P particles (the "lanes", P = 256, 64 or 32; ``refcfg.sampling.cpu._lanes``) are
evaluated together, in blocks of max(BLOCK, P) particles, with particle-major scratch ([..., p]),
so that every innermost loop runs over the P lanes: long enough for LLVM's vectoriser to amortise
its runtime alias checks, and every table load serves P lanes. With full covariances the two eigenbasis rotations of all K components are two BLAS products per
block, Y (K d, P) = QA (K d, d) @ X (d, P) and V (d, P) = QB (d, K d) @ Z (K d, P), with
QA[k d + j, i] = QB[i, k d + j] = Q_k[i, j] (numba's np.dot: scipy's OpenBLAS on the calling thread).
The GEMM shape is always (., P): the last block is padded with copies of particle N - 1, so a
particle's arithmetic depends only on its index (not on N, nor on the thread count). Beyond
TILE_FROM bytes of Y per block the components run in tiles of TILE_BYTES, whose Y stays in L2, and
pass 1 keeps only the logits. Pass 2 then takes the M form at one row for all lanes: with per-time
tables MT[r] (d d, K), M_rk = Q_k diag(gain_rk) Q_k^T, and BT[r] (d, K),
b_rk = dm_r mu_k - alpha_r M_rk mu_k (``refcfg.sampling.cpu._mform``),
F = (sum_k C_k M_rk) x + sum_k C_k b_rk, two products whose inner dimension is K (its error:
docs/numerics.md). With per-lane rows, or without tables (MT empty: few particles, or tables too
large) it computes each tile's Y again (three products instead of two; still cheaper than
streaming Y through memory). A task
(one call of a kernel, on a thread of ``refcfg.sampling.cpu``'s pool) runs a contiguous range of
blocks with one allocation of scratch.

Table rows. ``rows`` is one integer (every lane at the same time: sampling, and evaluation at one
t) or an int64 array of one row per lane (evaluation at per-particle times). The two are compiled
as two specialisations of the same source: ``_uniform(rows)`` is a compile-time constant, so for an
integer the per-lane branches fold away and the table values are hoisted out of the lane loops.
The covariance type is a compile-time constant too: the kernels take a "mode tag" ``mt``, a tuple
of length comp.mode, and branch on ``len(mt)``, which numba resolves before typing (``_blk_field``),
so a call compiles only its own type's code.

Layouts (K-contiguous so that the component loops vectorise): mu, mue (d, K); QT (d, d, K); per-time
tables alpha, dm (T,), cst (T, K), invs, gain (T, dd, K) with dd = 1 for isotropic mixtures (mode 0),
d for diagonal (1) and full (2) ones; tcoef (T, G).

Time stepping (``integrate_blk``): an explicit Runge-Kutta method given by its Butcher tableau
(a, b) (``refcfg.sampling.steppers``); the table row of step i, stage j is i * s + j. Euler-Maruyama
is the one-stage Euler tableau on drift tables plus sigma_i sqrt(h) xi with counter-based normals
(``_cpu_math``): a pure function of (seed, particle, step), whatever the threads.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
from numba import types
from numba.extending import overload

from ._cpu_math import exp_fast, fill_normals, stream_key

# reassociation lets LLVM vectorise the sums over components; no nnan/ninf (inf logits must work)
_FM = {"reassoc", "contract", "nsz"}
_SHARE_MIN = math.exp(-600.0)  # smallest group sum of the shared exponentials (_blk_weights)
BLOCK = 64  # particles per block of a task (P if larger); results do not depend on it
MM_MIN_D = 8  # isotropic components use the matrix-product form from this dimension on
# full covariances: beyond TILE_FROM bytes of eigen-coordinates per block (K d P 8), components in
# tiles of TILE_BYTES (kept in L2; ``tile_size``)
TILE_FROM = 1 << 20
TILE_BYTES = 1 << 17


# --- table rows: one integer for all lanes, or one per lane (see the module docstring) ----------


def _uniform(rows):  # pragma: no cover - compiled only (overload below)
    return np.ndim(rows) == 0


@overload(_uniform, inline="always")
def _ov_uniform(rows):
    if isinstance(rows, types.Integer):
        return lambda rows: True
    return lambda rows: False


def _row(rows, p):  # pragma: no cover - compiled only
    return rows if np.ndim(rows) == 0 else rows[p]


@overload(_row, inline="always")
def _ov_row(rows, p):
    if isinstance(rows, types.Integer):
        return lambda rows, p: rows
    return lambda rows, p: rows[p]


def _lane_rows(rows, P):  # pragma: no cover - compiled only
    return rows


@overload(_lane_rows)
def _ov_lane_rows(rows, P):
    """Per-block lane rows: the integer itself, or a (P,) buffer for per-particle rows."""
    if isinstance(rows, types.Integer):
        return lambda rows, P: rows
    return lambda rows, P: np.empty(P, dtype=np.int64)


def _fill_lane_rows(rows, lr, n0, N):  # pragma: no cover - compiled only
    pass


@overload(_fill_lane_rows)
def _ov_fill_lane_rows(rows, lr, n0, N):
    if isinstance(rows, types.Integer):
        return lambda rows, lr, n0, N: None

    def fill(rows, lr, n0, N):
        for p in range(lr.shape[0]):
            lr[p] = rows[min(n0 + p, N - 1)]

    return fill


# --- scratch ---------------------------------------------------------------------------------


class Scratch(NamedTuple):
    """Thread-local buffers of one block of P lanes (K components, G groups, d dimensions)."""

    yb: np.ndarray  # (K or 1, d, P) eigen-coordinates (full covariances)
    yb2: np.ndarray  # its (K d, P) view, for the GEMM
    zb: np.ndarray  # (K, d, P) weighted coordinates when the divergence needs yb kept (mode 2),
    zb2: np.ndarray  # else (1, 1, 0) (pass 2 then overwrites yb); its (K d, P) view
    lb: np.ndarray  # (K, P) logits
    eb: np.ndarray  # (K, P) exponentials
    cb: np.ndarray  # (K, P) component coefficients C_k
    rb: np.ndarray  # (K, P) responsibilities of one group (divergence)
    tk: np.ndarray  # (K, P) tr M_k + s_k . v_k (divergence)
    zg: np.ndarray  # (G, P) group sums of the shared exponentials
    fg: np.ndarray  # (G, P) group factors c_g / z_g
    cg: np.ndarray  # (G, P) group coefficients at the current row
    ga: np.ndarray  # (G, P) int64 group ranges
    gb: np.ndarray  # (G, P) int64
    cbase: np.ndarray  # (G, P) particle factors
    mx: np.ndarray  # (P,)
    zz: np.ndarray  # (P,)
    acc: np.ndarray  # (P,)
    us: np.ndarray  # (2, d, P) group velocity and score (divergence)
    vt: np.ndarray  # (d, P) one tile's part of pass 2 (full covariances, several tiles)
    am: np.ndarray  # (d d, P) sum_k C_k M_k per lane (full covariances, several tiles)


@numba.njit(cache=True)
def tile_size(K, d, P):
    """Components per tile of the full-covariance kernels with P lanes: all K while their
    eigen-coordinates (K d P doubles) fit in TILE_FROM bytes, else TILE_BYTES' worth."""
    if 8 * K * d * P <= TILE_FROM:
        return K
    return max(1, TILE_BYTES // (8 * d * P))


@numba.njit(cache=True)
def _scratch(mode, K, d, G, P, div):
    Kq = 1
    if mode == 2:  # a tile of components (all of them when the divergence keeps them)
        Kq = K if div else tile_size(K, d, P)
    yb = np.empty((Kq, d, P))
    zb = np.empty((Kq, d, P)) if (div and mode == 2) else np.empty((1, 1, 0))
    Kd = K if div else 1
    zb2 = zb.reshape((zb.shape[0] * zb.shape[1], zb.shape[2]))
    return Scratch(
        yb,
        yb.reshape((Kq * d, P)),
        zb,
        zb2,
        np.empty((K, P)),
        np.empty((K, P)),
        np.empty((K, P)),
        np.empty((Kd, P)),
        np.empty((Kd, P)),
        np.empty((G, P)),
        np.empty((G, P)),
        np.empty((G, P)),
        np.empty((G, P), dtype=np.int64),
        np.empty((G, P), dtype=np.int64),
        np.empty((G, P)),
        np.empty(P),
        np.empty(P),
        np.empty(P),
        np.empty((2, d, P)),
        np.empty((d, P)),
        np.empty((d * d, P) if (mode == 2 and Kq < K) else (1, 1)),
    )


@numba.njit(cache=True, inline="always")
def _bsize(P):
    """Particles per block with P lanes: BLOCK, or P when larger (a multiple of P either way)."""
    return max(BLOCK, P)


@numba.njit(cache=True, inline="always")
def _lane_groups(n0, first, N, grp, sc):
    """Group ranges and particle factors of the lanes n0 .. n0 + P - 1 (past N: copies of N - 1).
    Groups shared by all particles (one label, one weight) are filled at a task's ``first`` block
    only: the scratch keeps them."""
    lo, hi, coef = grp.lo, grp.hi, grp.coef
    pl = lo.shape[0] > 1
    pc = coef.shape[0] > 1
    if not (first or pl or pc):
        return
    ga, gb, cbase = sc.ga, sc.gb, sc.cbase
    G = lo.shape[1]
    P = sc.ga.shape[1]
    for p in range(P):
        n = min(n0 + p, N - 1)
        rl = n if pl else 0
        rc = n if pc else 0
        for g in range(G):
            ga[g, p] = lo[rl, g]
            gb[g, p] = hi[rl, g]
            cbase[g, p] = coef[rc, g]


# --- the three passes of one blocked evaluation ----------------------------------------------


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _blk_weights(lb, g0, g1, unit, sc, out):
    """out[k, p] = sum_{g in [g0, g1)} c_gp softmax_g(lb[:, p])[k] (zero outside the groups), with
    c_gp = sc.cg[g, p] (or 1 when ``unit``). Three sweeps over the components: the lane maximum m
    over all of them; e_k = exp(lb_k - m) with every group's sum z_g accumulated in the same sweep;
    out_k = e_k sum_g [k in g] c_g / z_g. A group with z_g < e^-600 (its best component far below
    the lane's best) gets its own exponentials against its own maximum instead (rare). When all
    lanes have the same group ranges (one label for the block) the ranges are loop bounds; else the
    loops run over all K components with per-lane masks."""
    K, P = lb.shape
    # record fields read once: a field read inside a loop costs an incref/decref pair per pass
    ga, gb, zg, fg, mx, eb, cg = sc.ga, sc.gb, sc.zg, sc.fg, sc.mx, sc.eb, sc.cg
    for p in range(P):
        mx[p] = -np.inf
    for k in range(K):
        for p in range(P):
            mx[p] = max(mx[p], lb[k, p])
    # groups common to all lanes (one label for the block): ranges as loop bounds, no masks
    common = True
    for g in range(g0, g1):
        for p in range(P):
            common = common and ga[g, p] == ga[g, 0] and gb[g, p] == gb[g, 0]
    for g in range(g0, g1):
        for p in range(P):
            zg[g, p] = 0.0
    for k in range(K):
        for p in range(P):
            eb[k, p] = exp_fast(lb[k, p] - mx[p])
        if not common:
            for g in range(g0, g1):
                for p in range(P):
                    zg[g, p] += eb[k, p] if (k >= ga[g, p] and k < gb[g, p]) else 0.0
    if common:
        for g in range(g0, g1):
            for k in range(ga[g, 0], gb[g, 0]):
                for p in range(P):
                    zg[g, p] += eb[k, p]
    nslow = 0
    for g in range(g0, g1):
        for p in range(P):
            c = 1.0 if unit else cg[g, p]
            z = zg[g, p]
            shared = z >= _SHARE_MIN
            fg[g, p] = c / z if (shared and c != 0.0) else 0.0
            if c != 0.0 and not shared:
                nslow += 1
    for k in range(K):
        for p in range(P):
            out[k, p] = 0.0
        if not common:
            for g in range(g0, g1):
                for p in range(P):
                    out[k, p] += fg[g, p] * eb[k, p] if (k >= ga[g, p] and k < gb[g, p]) else 0.0
    if common:
        for g in range(g0, g1):
            for k in range(ga[g, 0], gb[g, 0]):
                for p in range(P):
                    out[k, p] += fg[g, p] * eb[k, p]
    if nslow > 0:  # rare: a lane whose group is far below its best component
        for g in range(g0, g1):
            for p in range(P):
                c = 1.0 if unit else cg[g, p]
                if c != 0.0 and not zg[g, p] >= _SHARE_MIN:
                    mg = -np.inf
                    for k in range(ga[g, p], gb[g, p]):
                        mg = max(mg, lb[k, p])
                    z = 0.0
                    for k in range(ga[g, p], gb[g, p]):
                        z += exp_fast(lb[k, p] - mg)
                    f = c / z
                    for k in range(ga[g, p], gb[g, p]):
                        out[k, p] += f * exp_fast(lb[k, p] - mg)


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _sub_quad(lb, k, XE, i, j, m, lm, jj, rows, tab, split0):
    """lb[k, :] -= (xe - alpha m)^2 / (2 s) for one eigen-direction j of component k, with
    xe = XE[i, j, :] the lanes' coordinate, m the mean's, lm its eigenvalue (jj its table column):
    where beta >= alpha in the split form less the lane's common term xe^2 / (2 beta^2)
    (module docstring), i.e. alpha (beta^2 (alpha m^2 - 2 m xe) - alpha lm xe^2) / (2 s beta^2).
    ``split0`` decides for uniform rows; per-lane rows decide lane by lane."""
    al, be, invs = tab.alpha, tab.beta, tab.invs
    P = lb.shape[1]
    if _uniform(rows):
        r0 = _row(rows, 0)
        a = al[r0]
        iv = invs[r0, jj, k]
        if split0:
            b2 = be[r0] * be[r0]
            h = 0.5 * a * iv / b2
            A = b2 * a * m * m
            B = 2.0 * b2 * m
            C = a * lm
            for p in range(P):
                v = XE[i, j, p]
                lb[k, p] -= h * (A - v * (B + C * v))
        else:
            h = 0.5 * iv
            am = a * m
            for p in range(P):
                y = XE[i, j, p] - am
                lb[k, p] -= h * y * y
    else:
        for p in range(P):
            r = _row(rows, p)
            a = al[r]
            b = be[r]
            iv = invs[r, jj, k]
            v = XE[i, j, p]
            if a <= b:
                b2 = b * b
                lb[k, p] -= 0.5 * a * iv * (b2 * (a * m * m - 2.0 * m * v) - a * lm * v * v) / b2
            else:
                y = v - a * m
                lb[k, p] -= 0.5 * iv * y * y


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _blk_coords(X, sx, rows, comp, tab, QA, k0, nk, sc):
    """sc.yb[k - k0] = Q_k^T x - alpha_r Q_k^T mu_k (full covariances) for the components
    k0 .. k0 + nk - 1 and all lanes: one (nk d, d) @ (d, P) product (BLAS) and a subtraction."""
    uni = _uniform(rows)
    al, mue, yb = tab.alpha, comp.mue, sc.yb
    a0 = al[_row(rows, 0)]
    d = X.shape[1]
    P = X.shape[2]
    np.dot(QA[k0 * d : (k0 + nk) * d], X[sx], sc.yb2[: nk * d])
    for i in range(nk):
        k = k0 + i
        for j in range(d):
            m0 = a0 * mue[j, k]
            for p in range(P):
                yb[i, j, p] -= m0 if uni else al[_row(rows, p)] * mue[j, k]


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _blk_pass2_full(X, sx, rows, comp, tab, w, tg, sign, dmw, QA, QB, sc, V, sv):
    """V[sv, :, p] = sum_k w[k, p] [dmw dm_r mu_k + Q_k ((sign tg[r, :, k]) o y_k)] at the lane
    rows r for full covariances (mode 2; the eigen-coordinates y_k in sc.yb); tg is tab.gain
    (velocity-type) or tab.invs (with sign -1, dmw 0: the score)."""
    uni = _uniform(rows)
    r0 = _row(rows, 0)
    d = X.shape[1]
    K = w.shape[0]
    P = X.shape[2]
    mu = comp.mu
    al, dm = tab.alpha, tab.dm
    a0 = al[r0]
    dm0 = dmw * dm[r0]
    # sum_k Q_k (w_k g_k o y_k): one (d, K d) @ (K d, P) product (BLAS). In place in yb unless
    # zb is allocated (two loops: through two names for one array, LLVM's runtime alias check
    # fails and the loop runs scalar)
    yb, zb = sc.yb, sc.zb
    Kt = yb.shape[0]
    if zb.shape[2] == 0 and Kt == K:
        for k in range(K):
            for j in range(d):
                gk0 = sign * tg[r0, j, k]
                for p in range(P):
                    gk = gk0 if uni else sign * tg[_row(rows, p), j, k]
                    yb[k, j, p] = w[k, p] * gk * yb[k, j, p]
        np.dot(QB, sc.yb2, V[sv])
    elif zb.shape[2] == 0:
        # components in tiles of Kt: each tile's coordinates again (pass 1 kept only its
        # logits), weighted in place, then its (d, Kt d) @ (Kt d, P) product added to V
        vt = sc.vt
        for j in range(d):
            for p in range(P):
                V[sv, j, p] = 0.0
        for k0 in range(0, K, Kt):
            nk = min(Kt, K - k0)
            _blk_coords(X, sx, rows, comp, tab, QA, k0, nk, sc)
            for i in range(nk):
                k = k0 + i
                for j in range(d):
                    gk0 = sign * tg[r0, j, k]
                    for p in range(P):
                        gk = gk0 if uni else sign * tg[_row(rows, p), j, k]
                        yb[i, j, p] = w[k, p] * gk * yb[i, j, p]
            np.dot(QA[k0 * d : (k0 + nk) * d].T, sc.yb2[: nk * d], vt)
            for j in range(d):
                for p in range(P):
                    V[sv, j, p] += vt[j, p]
    else:
        for k in range(K):
            for j in range(d):
                gk0 = sign * tg[r0, j, k]
                for p in range(P):
                    gk = gk0 if uni else sign * tg[_row(rows, p), j, k]
                    zb[k, j, p] = w[k, p] * gk * yb[k, j, p]
        np.dot(QB, sc.zb2, V[sv])
    for k in range(K):
        for i in range(d):
            dmu0 = dm0 * mu[i, k]
            for p in range(P):
                dmu = dmu0 if uni else (dmw * dm[_row(rows, p)]) * mu[i, k]
                V[sv, i, p] += w[k, p] * dmu


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _blk_pass2_diag(X, sx, rows, comp, tab, w, tg, sign, dmw, QA, QB, sc, V, sv):
    """``_blk_pass2_full`` for isotropic and diagonal covariances (modes 0 and 1): the
    coordinates x - alpha_r mu_k directly."""
    uni = _uniform(rows)
    r0 = _row(rows, 0)
    d = X.shape[1]
    K = w.shape[0]
    P = X.shape[2]
    mu = comp.mu
    al, dm = tab.alpha, tab.dm
    a0 = al[r0]
    dm0 = dmw * dm[r0]
    for j in range(d):
        for p in range(P):
            V[sv, j, p] = 0.0
    jj = 0
    for k in range(K):
        for j in range(d):
            if comp.mode == 1:
                jj = j
            dmu0 = dm0 * mu[j, k]
            mj0 = a0 * mu[j, k]
            gk0 = sign * tg[r0, jj, k]
            for p in range(P):
                r = _row(rows, p)
                dmu = dmu0 if uni else (dmw * dm[r]) * mu[j, k]
                mj = mj0 if uni else al[r] * mu[j, k]
                gk = gk0 if uni else sign * tg[r, jj, k]
                V[sv, j, p] += w[k, p] * (dmu + gk * (X[sx, j, p] - mj))


# the divergence calls these as real functions (not inlined): it is not the hot path, and inlining
# them at every call site multiplies the compile time
_blk_weights_c = numba.njit(cache=True, fastmath=_FM)(_blk_weights.py_func)
_blk_pass2_full_c = numba.njit(cache=True, fastmath=_FM)(_blk_pass2_full.py_func)
_blk_pass2_diag_c = numba.njit(cache=True, fastmath=_FM)(_blk_pass2_diag.py_func)


# fastmath=False (explicit: left unset, a callee inherits its caller's flags): with the fastmath
# flags, this function computed in a process that compiled it differed in the last bits from the
# same code loaded from numba's cache (full covariances; tests/sampling/test_repro.py)
@numba.njit(cache=True, fastmath=False)
def _blk_divergence(X, sx, rows, mt, comp, tab, QA, QB, sc, dv):
    """dv[p] = div F(X[sx, :, p]) (velocity tables), after ``_blk_field`` filled the logits, the
    group coefficients and (full covariances) the eigen-coordinates of these lanes (with
    ``_scratch(..., div=True)``, so that pass 2 kept them). ``mt``: the mode tag (``_blk_field``)."""
    mode = len(mt)
    uni = _uniform(rows)
    r0 = _row(rows, 0)
    d = X.shape[1]
    K, P = sc.lb.shape
    G = sc.cg.shape[0]
    mu, mue = comp.mu, comp.mue
    al, dm, invs, gain = tab.alpha, tab.dm, tab.invs, tab.gain
    tk, rb, acc, us, yb, cg = sc.tk, sc.rb, sc.acc, sc.us, sc.yb, sc.cg
    # tk[k, p] = tr M_k + s_k . v_k = sum_j gain_kj - invs_kj y_kj (dm mue_kj + gain_kj y_kj)
    for k in range(K):
        for p in range(P):
            tk[k, p] = 0.0
    jj = 0
    for k in range(K):
        for j in range(d):
            if mode != 0:
                jj = j
            for p in range(P):
                r = r0 if uni else _row(rows, p)
                if mode == 2:
                    y = yb[k, j, p]
                else:
                    y = X[sx, j, p] - al[r] * mu[j, k]
                g = gain[r, jj, k]
                tk[k, p] += g - invs[r, jj, k] * y * (dm[r] * mue[j, k] + g * y)
    for p in range(P):
        dv[p] = 0.0
    for g in range(G):
        used = False
        for p in range(P):
            used = used or cg[g, p] != 0.0
        if not used:
            continue
        _blk_weights_c(sc.lb, g, g + 1, True, sc, rb)  # responsibilities of group g
        for p in range(P):
            acc[p] = 0.0
        for k in range(K):
            for p in range(P):
                acc[p] += rb[k, p] * tk[k, p]
        # the group's velocity, then its score
        if mode == 2:
            _blk_pass2_full_c(X, sx, rows, comp, tab, rb, gain, 1.0, 1.0, QA, QB, sc, us, 0)
            _blk_pass2_full_c(X, sx, rows, comp, tab, rb, invs, -1.0, 0.0, QA, QB, sc, us, 1)
        else:
            _blk_pass2_diag_c(X, sx, rows, comp, tab, rb, gain, 1.0, 1.0, QA, QB, sc, us, 0)
            _blk_pass2_diag_c(X, sx, rows, comp, tab, rb, invs, -1.0, 0.0, QA, QB, sc, us, 1)
        for p in range(P):
            c = cg[g, p]
            if c != 0.0:
                dot = 0.0
                for j in range(d):
                    dot += us[0, j, p] * us[1, j, p]
                dv[p] += c * (acc[p] - dot)


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _small_dot(A, B, out, blas):
    """out = A @ B, (n, m) @ (m, P): by BLAS when ``blas``, else in loops with the lanes innermost
    (for the few dimensions below MM_MIN_D a BLAS call costs more than it saves)."""
    if blas:
        np.dot(A, B, out)
        return
    n, m = A.shape
    P = out.shape[1]
    for i in range(n):
        for p in range(P):
            out[i, p] = 0.0
        for j in range(m):
            a = A[i, j]
            for p in range(P):
                out[i, p] += a * B[j, p]


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _blk_logits_mm(X, sx, r, comp, tab, MT, sc):
    """Logits of isotropic components at one row r with beta_r >= alpha_r, in the split form of the
    NumPy core (``GMMPath._quadratic``) less its common term |x|^2 / (2 beta^2) (one number per lane,
    which cancels in every softmax): with D_kp = mu_k . x_p from one (K, d) @ (d, P) product (BLAS),
    lb[k, p] = cst_rk - (alpha invs_rk / 2) (alpha |mu_k|^2 - 2 D_kp - alpha lam_k |x_p|^2 / beta^2).
    (``_small_dot``: loops below MM_MIN_D dimensions.)"""
    lb, xx = sc.lb, sc.mx
    d = X.shape[1]
    K, P = lb.shape
    a = tab.alpha[r]
    b2 = tab.beta[r] * tab.beta[r]
    mu, lam, invs, cst = comp.mu, comp.lam, tab.invs, tab.cst
    _small_dot(MT, X[sx], lb, d >= MM_MIN_D)
    for p in range(P):
        xx[p] = 0.0
    for j in range(d):
        for p in range(P):
            xx[p] += X[sx, j, p] * X[sx, j, p]
    for k in range(K):
        m2 = 0.0
        for j in range(d):
            m2 += mu[j, k] * mu[j, k]
        c1 = 0.5 * a * invs[r, 0, k]
        c0 = a * m2
        cx = a * lam[k, 0] / b2
        c = cst[r, k]
        for p in range(P):
            lb[k, p] = c - c1 * (c0 - 2.0 * lb[k, p] - cx * xx[p])


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _blk_pass2_mm(X, sx, r, comp, tab, QB, sc, V, sv):
    """V[sv, :, p] = sum_k C_kp [dm_r mu_k + gain_rk (x_p - alpha_r mu_k)] for isotropic components
    at one row r (C = sc.cb), as (sum_k C_kp gain_rk) x_p + sum_k C_kp (dm_r - alpha_r gain_rk) mu_k:
    the second sum one (d, K) @ (K, P) product (BLAS), QB = the means (d, K) (``_small_dot``:
    loops below MM_MIN_D dimensions)."""
    cb, eb, acc = sc.cb, sc.eb, sc.zz
    d = X.shape[1]
    K, P = cb.shape
    a = tab.alpha[r]
    dm = tab.dm[r]
    gain = tab.gain
    for p in range(P):
        acc[p] = 0.0
    for k in range(K):
        g = gain[r, 0, k]
        c = dm - a * g
        for p in range(P):
            w = cb[k, p]
            eb[k, p] = w * c
            acc[p] += w * g
    _small_dot(QB, eb, V[sv], d >= MM_MIN_D)
    for j in range(d):
        for p in range(P):
            V[sv, j, p] += acc[p] * X[sx, j, p]


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _blk_pass2_mt(X, sx, r, MT, BT, sc, V, sv):
    """V[sv, :, p] = (sum_k C_kp M_rk) x_p + sum_k C_kp b_rk for full covariances at one row r
    (C = sc.cb), with M_rk = Q_k diag(gain_rk) Q_k^T (MT[r], (d d, K)) and
    b_rk = dm_r mu_k - alpha_r M_rk mu_k (BT[r], (d, K)): two products whose inner dimension is K
    (BLAS), no eigen-coordinates."""
    d = X.shape[1]
    P = X.shape[2]
    am = sc.am
    np.dot(MT[r], sc.cb, am)
    np.dot(BT[r], sc.cb, V[sv])
    for i in range(d):
        for j in range(d):
            for p in range(P):
                V[sv, i, p] += am[i * d + j, p] * X[sx, j, p]


@numba.njit(cache=True, fastmath=_FM)
def _blk_field(X, sx, rows, mt, comp, tab, QA, QB, MT, BT, sc, V, sv):
    """V[sv, :, p] = F(X[sx, :, p]) for the P = X.shape[2] lanes p at the table rows ``rows``
    (an integer, or (P,) per lane); the lanes' groups are in sc.ga, sc.gb, sc.cbase
    (``_lane_groups``). ``_blk_divergence`` may follow (it reuses the logits and coefficients).
    (Not inlined at the Numba IR level: inlining it, or the table-row overloads, into the block
    functions gave wrong results with numba 0.68.)

    ``mt`` is the mode tag, a tuple of length comp.mode: ``len(mt)`` is a compile-time constant,
    so numba drops the other modes' branches before it types them (it does so for conditions on
    the length of a tuple argument), and each covariance type compiles only its own code."""
    mode = len(mt)
    uni = _uniform(rows)
    r0 = _row(rows, 0)
    d = X.shape[1]
    cst, tc = tab.cst, tab.tcoef
    K = cst.shape[1]
    G = tc.shape[1]
    P = X.shape[2]
    mu, mue, lam = comp.mu, comp.mue, comp.lam
    lb, yb, cg, cbase = sc.lb, sc.yb, sc.cg, sc.cbase
    # group coefficients at these rows: particle factor times time factor
    for g in range(G):
        t0 = tc[r0, g]
        for p in range(P):
            cg[g, p] = cbase[g, p] * (t0 if uni else tc[_row(rows, p), g])
    # pass 1: logits (and eigen-coordinates for full covariances)
    for k in range(K):
        c0 = cst[r0, k]
        for p in range(P):
            lb[k, p] = c0 if uni else cst[_row(rows, p), k]
    # where beta >= alpha the logits in the split form (module docstring); isotropic components at
    # one row for all lanes: the matrix-product forms of both passes (BLAS products from MM_MIN_D
    # dimensions on)
    split0 = uni and tab.alpha[r0] <= tab.beta[r0]
    if mode == 0 and split0:
        _blk_logits_mm(X, sx, r0, comp, tab, QA, sc)
    elif mode == 2:
        # xe_k = Q_k^T x, a tile of Kt components at a time (all K unless the scratch of all of
        # them would leave L2): one (Kt d, d) @ (d, P) product (BLAS) and the logits; with one
        # tile, y_k = xe_k - alpha Q_k^T mu_k is kept for pass 2 (with several, pass 2 needs none
        # or computes its own). The subtraction is written here, not called: a second inlined
        # helper at this point made the code compiled in a process differ in rounding from the
        # same code loaded from numba's cache (numba 0.68)
        Kt = yb.shape[0]
        keep = Kt == K
        al = tab.alpha
        a0 = al[r0]
        for k0 in range(0, K, Kt):
            nk = min(Kt, K - k0)
            np.dot(QA[k0 * d : (k0 + nk) * d], X[sx], sc.yb2[: nk * d])
            for i in range(nk):
                k = k0 + i
                for j in range(d):
                    m = mue[j, k]
                    _sub_quad(lb, k, yb, i, j, m, lam[k, j], j, rows, tab, split0)
                    if keep:
                        m0 = a0 * m
                        for p in range(P):
                            yb[i, j, p] -= m0 if uni else al[_row(rows, p)] * m
    else:
        jj = 0
        for k in range(K):
            for j in range(d):
                if mode == 1:
                    jj = j
                _sub_quad(lb, k, X, sx, j, mu[j, k], lam[k, jj], jj, rows, tab, split0)
    # weights: per lane, the softmax of every group (``_blk_weights``)
    _blk_weights(lb, 0, G, False, sc, sc.cb)
    # pass 2: the field (with the divergence, zb is separate: the eigen-coordinates survive)
    if mode == 2:
        if uni and MT.shape[2] == K and yb.shape[0] < K:
            _blk_pass2_mt(X, sx, r0, MT, BT, sc, V, sv)
        else:
            _blk_pass2_full(X, sx, rows, comp, tab, sc.cb, tab.gain, 1.0, 1.0, QA, QB, sc, V, sv)
    elif mode == 0 and split0:
        _blk_pass2_mm(X, sx, r0, comp, tab, QB, sc, V, sv)
    else:
        _blk_pass2_diag(X, sx, rows, comp, tab, sc.cb, tab.gain, 1.0, 1.0, QA, QB, sc, V, sv)


# --- kernels ---------------------------------------------------------------------------------


@numba.njit(cache=True, fastmath=_FM, nogil=True)
def eval_blk(b0, b1, x, rows, mt, comp, grp, tab, QA, QB, MT, BT, P, out, div):
    """out[n] = F(x[n]) for the particles n of blocks b0 .. b1 - 1 (``_bsize(P)`` particles each)
    at table row ``rows`` (an integer: one time for all) or rows[n] (int64 (N,)); with an array
    ``div`` (not None) also div[n] = div F(x[n]) (velocity tables). P lanes per evaluation. One
    task of ``refcfg.sampling.cpu``'s thread pool: its scratch is allocated once for all of its
    blocks (allocated per block, the MBs of scratch of a large mixture were fresh, page-faulted
    memory at every block)."""
    N, d = x.shape
    sc = _scratch(comp.mode, tab.cst.shape[1], d, grp.lo.shape[1], P, div is not None)
    X = np.empty((1, d, P))
    V = np.empty((1, d, P))
    dv = np.empty(P)
    lr = _lane_rows(rows, P)
    # slot 0 as an int64 variable, not a literal: _blk_field then has the same signature as in
    # integrate_blk (a literal argument would compile another specialisation)
    zero = np.int64(0)
    B = _bsize(P)
    for n0 in range(b0 * B, min(N, b1 * B), P):
        _lane_groups(n0, n0 == b0 * B, N, grp, sc)
        _fill_lane_rows(rows, lr, n0, N)
        for p in range(P):
            n = min(n0 + p, N - 1)
            for j in range(d):
                X[0, j, p] = x[n, j]
        _blk_field(X, zero, lr, mt, comp, tab, QA, QB, MT, BT, sc, V, zero)
        if div is not None:  # decided at compile time (None or an array)
            _blk_divergence(X, zero, lr, mt, comp, tab, QA, QB, sc, dv)
        for p in range(min(P, N - n0)):
            for j in range(d):
                out[n0 + p, j] = V[0, j, p]
        if div is not None:
            for p in range(min(P, N - n0)):
                div[n0 + p] = dv[p]


@numba.njit(cache=True, fastmath=_FM, nogil=True)
def integrate_blk(
    b0,
    b1,
    x0,
    times,
    a,
    b,
    mt,
    comp,
    grp,
    tab,
    QA,
    QB,
    MT,
    BT,
    P,
    sigma,
    sde,
    use_noise,
    noise,
    seed,
    first_particle,
    save_slot,
    traj,
    out,
    dl,
):
    """Fused time loop for the particles of blocks b0 .. b1 - 1 (one task, as in ``eval_blk``) on
    the grid ``times`` (S + 1,) with the explicit Runge-Kutta tableau (a, b) of s = len(b) stages:
    table row i * s + j holds the field at the stage time of step i, stage j.

    Euler-Maruyama (``sde``: sigma (S,) not all zero; s = 1, drift tables): after the step,
    x += sigma[i] sqrt(h) xi, xi = noise[i, n] if use_noise else the counter-based normals of
    (seed, first_particle + n, i). With an array ``dl`` (not None): the augmented system
    (x, l)' = (F, div F) (velocity tables), dl[n] = the integral of div F along the grid.
    save_slot[i] >= 0 stores the state at times[i] into traj[save_slot[i], n]. QA, QB: the
    eigenvectors in the blocked layouts."""
    N, d = x0.shape
    S = times.shape[0] - 1
    s = b.shape[0]
    sc = _scratch(comp.mode, tab.cst.shape[1], d, grp.lo.shape[1], P, dl is not None)
    st = np.empty((2, d, P))  # [0]: the states, [1]: the stage inputs
    kv = np.empty((s, d, P))  # the stage slopes
    qd = np.empty((s, P))  # the stage divergences
    ell = np.zeros(P)
    xi = np.empty(d)
    B = _bsize(P)
    for n0 in range(b0 * B, min(N, b1 * B), P):
        nl = min(P, N - n0)
        _lane_groups(n0, n0 == b0 * B, N, grp, sc)
        for p in range(P):
            n = min(n0 + p, N - 1)
            ell[p] = 0.0
            for j in range(d):
                st[0, j, p] = x0[n, j]
        if save_slot[0] >= 0:
            for p in range(nl):
                for j in range(d):
                    traj[save_slot[0], n0 + p, j] = st[0, j, p]
        for i in range(S):
            h = times[i + 1] - times[i]
            for js in range(s):
                sx = 0
                if js > 0:
                    sx = 1
                    for j in range(d):
                        for p in range(P):
                            st[1, j, p] = st[0, j, p]
                    for l in range(js):
                        ha = h * a[js, l]
                        if ha != 0.0:
                            for j in range(d):
                                for p in range(P):
                                    st[1, j, p] = st[1, j, p] + ha * kv[l, j, p]
                row = i * s + js
                _blk_field(st, sx, row, mt, comp, tab, QA, QB, MT, BT, sc, kv, js)
                if dl is not None:  # decided at compile time (None or an array)
                    _blk_divergence(st, sx, row, mt, comp, tab, QA, QB, sc, qd[js])
            for js in range(s):
                hb = h * b[js]
                if hb != 0.0:
                    for j in range(d):
                        for p in range(P):
                            st[0, j, p] = st[0, j, p] + hb * kv[js, j, p]
                    if dl is not None:
                        for p in range(P):
                            ell[p] = ell[p] + hb * qd[js, p]
            if sde and sigma[i] != 0.0:
                amp = sigma[i] * math.sqrt(h)
                for p in range(nl):
                    if use_noise:
                        for j in range(d):
                            xi[j] = noise[i, n0 + p, j]
                    else:
                        fill_normals(stream_key(seed, first_particle + n0 + p, i), xi)
                    for j in range(d):
                        st[0, j, p] += amp * xi[j]
            if save_slot[i + 1] >= 0:
                for p in range(nl):
                    for j in range(d):
                        traj[save_slot[i + 1], n0 + p, j] = st[0, j, p]
        for p in range(nl):
            for j in range(d):
                out[n0 + p, j] = st[0, j, p]
        if dl is not None:
            for p in range(nl):
                dl[n0 + p] = ell[p]


@numba.njit(cache=True, fastmath=_FM, nogil=True)
def mform_tables(ri0, ri1, QT, gain, mu, alpha, dm, MT, BT):
    """The M-form tables of full covariances (``refcfg.sampling.cpu._mform``):
    MT[r, i d + j, k] = sum_e Q_k[i, e] gain[r, e, k] Q_k[j, e] (M_rk = Q_k diag(gain_rk) Q_k^T) and
    BT[r, i, k] = dm_r mu_ik - alpha_r sum_j (M_rk)_ij mu_jk, from QT (d, d, K) with
    QT[i, e, k] = Q_k[i, e], gain (T, d, K), mu (d, K), for the (row, i) pairs ri = r d + i in
    [ri0, ri1) (one task of the thread pool); the loops over k vectorise."""
    d, _, K = QT.shape
    for ri in range(ri0, ri1):
        r = ri // d
        i = ri % d
        qg = np.empty((d, K))
        for e in range(d):
            for k in range(K):
                qg[e, k] = QT[i, e, k] * gain[r, e, k]
        for k in range(K):
            BT[r, i, k] = dm[r] * mu[i, k]
        for j in range(d):
            row = i * d + j
            for k in range(K):
                MT[r, row, k] = 0.0
            for e in range(d):
                for k in range(K):
                    MT[r, row, k] += qg[e, k] * QT[j, e, k]
            for k in range(K):
                BT[r, i, k] -= alpha[r] * MT[r, row, k] * mu[j, k]
