"""Numba kernels for exact Gaussian-mixture fields: blocked evaluation, fused RK/SDE/likelihood loop.

Private module: the kernels check nothing; ``refcfg.sampling.cpu`` validates, lowers and lays out
the records they take (``Layout``, ``Tables``, ``Grid``, ``Noise``, ``Output``; ``Scratch`` is
their own). Importing it compiles nothing; ``refcfg`` imports it on the first CPU-backend call.

The field. For components k of one or more Gaussian-mixture paths and groups g (the terms of a
guided field: u(x|y) a group over the components of class y, u(x|null) one over all), at table
row r (a time) and particle n,

    F(x) = sum_k C_k(x) [ dm_r mu_k + Q_k (gain_rk o y_k) ],    y_k = Q_k^T x - alpha_r Q_k^T mu_k,
    C_k(x) = sum_g coef[n, g] tcoef[r, g] q_gk(x),   q_gk = softmax over k in [lo_g, hi_g) of ell_k,
    ell_k  = cst_rk - 1/2 sum_j y_kj^2 / s_rkj,      s_rkj = alpha_r^2 lam_kj + beta_r^2:

the velocity (eq. 18 of the notes in closed form), the score (dm = 0, gain = -1/s) or the SDE
drift u + sigma_t^2/2 score (eq. 44), by the tables of ``refcfg.sampling.lowering``. The logits
and eigen-coordinates are computed once per particle and component and shared by every group.
The divergence of the velocity (an option of the same evaluation), for one group with
grad q_k = q_k (s_k - sum_l q_l s_l), s_k = -S_k^{-1}(x - alpha mu_k), v_k the component field:
    div u = sum_k q_k (tr M_k + s_k . v_k) - (sum_k q_k s_k) . u,   M_k = Q_k diag(gain_k) Q_k^T.

Numerics (why the code looks as it does). Softmaxes share one shift, the lane's largest logit; a
group whose sum falls below e^-600 gets its own (``_blk_weights``). No fastmath flag that assumes
finite values (inf logits occur). Where beta_r >= alpha_r the logits take the split form of the
NumPy core (``GMMPath._quadratic``; ``_split_coefs``), in the eigenbasis (xe = Q_k^T x,
m = Q_k^T mu_k):

    (xe_j - alpha m_j)^2 / s_j
        = xe_j^2 / beta^2 + alpha (beta^2 (alpha m_j^2 - 2 m_j xe_j) - alpha lam_j xe_j^2) / (s_j beta^2),

and the first terms, |x|^2 / beta^2 per lane, are dropped (they cancel in every softmax): near
t = 0 the direct form loses the class information of a large |x| to rounding, the split form does
not (at alpha = 0 every component ties exactly). Rows with alpha > beta keep the direct form.

Blocking. P particles ("lanes", ``refcfg.sampling.cpu._lanes``) are evaluated together with
particle-major scratch ([..., p]), so every innermost loop runs over the lanes and every table load
serves P of them; full covariances rotate all components by BLAS products, isotropic ones take a
matrix-product form, large mixtures run in component tiles (docs/performance.md, "What the kernel
does", has the forms, thresholds and measurements). The last block is padded with copies of
particle N - 1, so a particle's arithmetic depends only on its index, never on N or the threads.

Compile-time constants. ``rows`` is one integer (every lane at one time) or an int64 array (one row
per lane); ``_uniform(rows)`` is a compile-time constant, so each is its own specialisation. The
covariance type is the "mode tag" ``mt``, a tuple of length comp.mode: numba resolves ``len(mt)``
before typing, so a call compiles only its own type's code. Arrays that may be None (``div``,
``dl``) are arguments of their own for the same reason (numba prunes ``is None`` on arguments only).

Layouts (K-contiguous, so that the component loops vectorise): mu, mue (d, K); QT (d, d, K);
per-time alpha, beta, dm (T,), cst (T, K), invs, gain (T, dd, K) with dd = 1 for isotropic
mixtures, d otherwise; tcoef (T, G). The CUDA kernels read the same layouts.

Time stepping (``integrate_blk``): the explicit Runge-Kutta method of a Butcher tableau
(``refcfg.sampling.steppers``); table row i * s + j is step i, stage j. Euler-Maruyama is the
one-stage Euler tableau on drift tables plus sigma_i sqrt(h) xi with counter-based normals
(``_cpu_math``): a pure function of (seed, particle, step), whatever the threads.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

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
# the functions only the kernels call (never Python): numba compiles no Python and C wrappers for
# them (wrappers that would unbox and box every array of the records; compile time for nothing)
_INTERNAL = {"no_cpython_wrapper": True, "no_cfunc_wrapper": True}
# numba.njit as the type checker sees it: numba's annotations omit these internal flags
_njit: Any = numba.njit
# the block functions (``_blk_field``, ``_blk_divergence``, the real copies ``_blk_*_c``) allocate
# nothing and keep no reference: compiled without numba's reference counting (an incref/decref pair
# for every array of a record at every copy of it, ~40 % of their unoptimised code; their callers
# hold every array they touch). Their BLAS products go through ``_gemm``, which has it.
_BLOCK = dict(_INTERNAL, _nrt=False)


# --- the kernels' arguments: a few named records (numba passes tuples of arrays for free) -----


class Layout(NamedTuple):
    """The lowered mixture as the kernels read it (``refcfg.sampling.cpu._layout``).

    Means are (d, K) here as in the lowering, on both backends: the kernels' component loops run
    over k innermost where they sweep a row of means (``mform_tables``, the products below), so k
    is the contiguous axis; the per-particle loops read one mean entry at a time and do not care."""

    comp: object  # lowering.Components: mu, mue (d, K), QT (d, d, K), lam (K, dd)
    grp: object  # lowering.Groups: lo, hi, coef
    to_eigen: np.ndarray  # (K d, d), [k d + j, i] = Q_k[i, j] (full covariances; else (1, 1))
    from_eigen: np.ndarray  # (d, K d), [i, k d + j] = Q_k[i, j] (full covariances; else (1, 1))
    means_t: np.ndarray  # (K, d) = mu^T, C-contiguous (isotropic: D = mu^T x; else (1, 1))


class Tables(NamedTuple):
    """The per-time tables of one call: the lowering's ``TimeTables`` and, for full covariances
    in tiles, the M form's (``mform_tables``; else (0, 0, 0))."""

    tab: object  # lowering.TimeTables: alpha, beta, dm (T,), cst (T, K), invs, gain (T, dd, K)
    M: np.ndarray  # (T, d d, K): M_rk = Q_k diag(gain_rk) Q_k^T
    b: np.ndarray  # (T, d, K): b_rk = dm_r mu_k - alpha_r M_rk mu_k


class Grid(NamedTuple):
    """The time grid and the explicit Runge-Kutta tableau of ``integrate_blk``."""

    times: np.ndarray  # (S + 1,)
    a: np.ndarray  # (s, s) Butcher matrix
    b: np.ndarray  # (s,) weights


class Noise(NamedTuple):
    """Euler-Maruyama's noise: x += diffusion[i] sqrt(h) xi after step i."""

    diffusion: np.ndarray  # (S,) the SDE's diffusion coefficient sigma_t at t_i (zeros: an ODE)
    on: bool  # some diffusion[i] != 0
    from_array: bool  # xi = normals[i, n], else the counter-based stream of (seed, particle, i)
    normals: np.ndarray  # (S, n, d) standard normals, or a (1, 1, 1) placeholder
    seed: np.uint64
    first_particle: np.int64  # index of particle 0 of this call in the stream


class Output(NamedTuple):
    """Where ``integrate_blk`` writes: the final states and the kept trajectory."""

    x: np.ndarray  # (n, d) the states at times[-1]
    slot: np.ndarray  # (S + 1,) int64: the state at times[i] goes to traj[slot[i]] when >= 0
    traj: np.ndarray  # (kept, n, d), or a (1, 1, 1) placeholder


class Gains(NamedTuple):
    """What pass 2 sums, sum_k w_k [dm_weight dm mu_k + Q_k ((sign table_k) o y_k)]: the velocity
    (``_velocity_gains``) or the score (``_score_gains``)."""

    table: np.ndarray  # (T, dd, K): gain or invs
    sign: float
    dm_weight: float


@numba.njit(cache=True, inline="always")
def _velocity_gains(tab):
    """Gains of the velocity (or drift) tables: dm mu_k + Q_k (gain_k o y_k)."""
    return Gains(tab.gain, 1.0, 1.0)


@numba.njit(cache=True, inline="always")
def _score_gains(tab):
    """Gains of the score of the same mixture: -Q_k (invs_k o y_k)."""
    return Gains(tab.invs, -1.0, 0.0)


# _blk_weights' ``unit``: weights of every group by its coefficient (the field), or one group's
# softmax alone (its responsibilities, for the divergence)
_BY_GROUP_COEF = False
_RESPONSIBILITIES = True


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
    """Thread-local buffers of one block of P lanes (K components, G groups, d dimensions), named
    for what they hold (``_scratch`` sizes them; unused ones are tiny placeholders)."""

    eig: np.ndarray  # (K or a tile, d, P) eigen-coordinates y_k (full covariances)
    eig_flat: np.ndarray  # the same array as (K d, P), for the GEMM
    weighted: (
        np.ndarray
    )  # (K, d, P) gain_k o y_k when the divergence keeps eig (full), else (1, 1, 0)
    weighted_flat: np.ndarray  # the same array as (K d, P)
    logits: np.ndarray  # (K, P) ell_k
    # one temporary each per component and per lane, shared by two sweeps that never overlap (a
    # second buffer each made every kernel's cold compile ~4 % longer: the record is passed to
    # every block function)
    comp_tmp: (
        np.ndarray
    )  # (K, P) exp(ell_k - lane max) (softmax), then C_k (dm - alpha gain_k) (isotropic pass 2)
    comp_coef: np.ndarray  # (K, P) component coefficients C_k
    resp: np.ndarray  # (K, P) responsibilities of one group (divergence)
    div_terms: np.ndarray  # (K, P) tr M_k + s_k . v_k (divergence)
    group_sum: np.ndarray  # (G, P) group sums of the shared exponentials
    group_factor: np.ndarray  # (G, P) c_g / z_g
    group_coef: np.ndarray  # (G, P) group coefficients at the current row
    group_lo: np.ndarray  # (G, P) int64 first component of each lane's group
    group_hi: np.ndarray  # (G, P) int64 end of each lane's group
    particle_coef: np.ndarray  # (G, P) particle factors of the groups
    lane_tmp: np.ndarray  # (P,) largest logit (softmax), or |x|^2 (isotropic logits)
    gain_sum: np.ndarray  # (P,) sum_k C_k gain_k (isotropic matrix-product form)
    div_acc: np.ndarray  # (P,) sum_k r_k (tr M_k + s_k . v_k) of one group (divergence)
    group_fields: np.ndarray  # (2, d, P) one group's velocity and score (divergence)
    tile_field: np.ndarray  # (d, P) one tile's part of pass 2 (full covariances, several tiles)
    msum: np.ndarray  # (d d, P) sum_k C_k M_k per lane (full covariances, several tiles)


@_njit(cache=True, _nrt=True, **_INTERNAL)
def _gemm(A, B, out):
    """out = A @ B (BLAS). A real call with reference counting on (written out: a callee that
    leaves it unset inherits its caller's setting), so that the block functions, which allocate
    nothing, compile without it (numba's np.dot with ``out`` needs it)."""
    np.dot(A, B, out)


@numba.njit(cache=True)
def tile_size(K, d, P):
    """Components per tile of the full-covariance kernels with P lanes: all K while their
    eigen-coordinates (K d P doubles) fit in TILE_FROM bytes, else TILE_BYTES' worth."""
    if 8 * K * d * P <= TILE_FROM:
        return K
    return max(1, TILE_BYTES // (8 * d * P))


@_njit(cache=True, **_INTERNAL)
def _scratch(mode, K, d, G, P, div):
    Kq = 1
    if mode == 2:  # a tile of components (all of them when the divergence keeps them)
        Kq = K if div else tile_size(K, d, P)
    eig = np.empty((Kq, d, P))
    weighted = np.empty((Kq, d, P)) if (div and mode == 2) else np.empty((1, 1, 0))
    Kd = K if div else 1
    w_shape = weighted.shape
    # arrays of one shape in one allocation each (fewer allocations compile faster)
    kp = np.empty((3, K, P))
    kd = np.empty((2, Kd, P))
    gp = np.empty((4, G, P))
    gi = np.empty((2, G, P), dtype=np.int64)
    pp = np.empty((3, P))
    return Scratch(
        eig,  # eig
        eig.reshape((Kq * d, P)),  # eig_flat
        weighted,  # weighted
        weighted.reshape((w_shape[0] * w_shape[1], w_shape[2])),  # weighted_flat
        kp[0],  # logits
        kp[1],  # comp_tmp
        kp[2],  # comp_coef
        kd[0],  # resp
        kd[1],  # div_terms
        gp[0],  # group_sum
        gp[1],  # group_factor
        gp[2],  # group_coef
        gi[0],  # group_lo
        gi[1],  # group_hi
        gp[3],  # particle_coef
        pp[0],  # lane_tmp
        pp[1],  # gain_sum
        pp[2],  # div_acc
        np.empty((2, d, P)),  # group_fields
        np.empty((d, P)),  # tile_field
        np.empty((d * d, P) if (mode == 2 and Kq < K) else (1, 1)),  # msum
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
    ga, gb, cbase = sc.group_lo, sc.group_hi, sc.particle_coef
    G = lo.shape[1]
    P = sc.group_lo.shape[1]
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
    c_gp = sc.group_coef[g, p] (or 1 when ``unit``). Three sweeps over the components: the lane
    maximum m over all of them; e_k = exp(lb_k - m) with every group's sum z_g accumulated in the same sweep;
    out_k = e_k sum_g [k in g] c_g / z_g. A group with z_g < e^-600 (its best component far below
    the lane's best) gets its own exponentials against its own maximum instead (rare). When all
    lanes have the same group ranges (one label for the block) the ranges are loop bounds; else the
    loops run over all K components with per-lane masks."""
    K, P = lb.shape
    # record fields read once, outside the loops (with reference counting, which the block
    # functions compile without, a field read inside a loop cost an incref/decref pair per pass)
    ga, gb, zg, fg, mx, eb, cg = (
        sc.group_lo,
        sc.group_hi,
        sc.group_sum,
        sc.group_factor,
        sc.lane_tmp,
        sc.comp_tmp,
        sc.group_coef,
    )
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
def _split_coefs(a, b2, iv, lm):
    """The coefficients of the split quadratic form, written once for this backend (module
    docstring): for one eigen-direction with eigenvalue lm, 1 / s = iv, at alpha = a, beta^2 = b2,

        (xe - a m)^2 / (2 s) = xe^2 / (2 b2) + h2 (b2 (a m^2 - 2 m xe) - c xe^2) / b2,

    returns (h2, c) = (a iv / 2, a lm). The callers drop xe^2 / (2 b2) (common to every
    component) and evaluate the rest in the order their loops allow: hoisted out of the lane loop
    (``_sub_quad``, one row), per lane (``_sub_quad``, per-lane rows), summed over j (isotropic
    components, ``_blk_logits_mm``)."""
    return 0.5 * a * iv, a * lm


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _sub_quad(lb, k, XE, i, j, m, lm, jj, rows, tab, split0):
    """lb[k, :] -= (xe - alpha m)^2 / (2 s) for one eigen-direction j of component k, with
    xe = XE[i, j, :] the lanes' coordinate, m the mean's, lm its eigenvalue (jj its table column):
    where beta >= alpha in the split form (``_split_coefs``) less the lane's common term
    xe^2 / (2 beta^2). ``split0`` decides for uniform rows; per-lane rows decide lane by lane."""
    al, be, invs = tab.alpha, tab.beta, tab.invs
    P = lb.shape[1]
    if _uniform(rows):
        r0 = _row(rows, 0)
        a = al[r0]
        iv = invs[r0, jj, k]
        if split0:
            b2 = be[r0] * be[r0]
            h2, C = _split_coefs(a, b2, iv, lm)
            h = h2 / b2
            A = b2 * a * m * m
            B = 2.0 * b2 * m
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
                h2, C = _split_coefs(a, b2, iv, lm)
                lb[k, p] -= h2 * (b2 * (a * m * m - 2.0 * m * v) - C * v * v) / b2
            else:
                y = v - a * m
                lb[k, p] -= 0.5 * iv * y * y


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _blk_coords(X, sx, rows, lay, tab, k0, nk, sc):
    """sc.eig[k - k0] = Q_k^T x - alpha_r Q_k^T mu_k (full covariances) for the components
    k0 .. k0 + nk - 1 and all lanes: one (nk d, d) @ (d, P) product (BLAS) and a subtraction."""
    uni = _uniform(rows)
    al, mue, yb = tab.alpha, lay.comp.mue, sc.eig
    a0 = al[_row(rows, 0)]
    d = X.shape[1]
    P = X.shape[2]
    _gemm(lay.to_eigen[k0 * d : (k0 + nk) * d], X[sx], sc.eig_flat[: nk * d])
    for i in range(nk):
        k = k0 + i
        for j in range(d):
            m0 = a0 * mue[j, k]
            for p in range(P):
                yb[i, j, p] -= m0 if uni else al[_row(rows, p)] * mue[j, k]


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _pass2_row0(rows, tab, gains):
    """Pass 2's constants at the first lane's row (every lane's with one row): (r0, alpha_r0,
    dm_weight dm_r0)."""
    r0 = _row(rows, 0)
    return r0, tab.alpha[r0], gains.dm_weight * tab.dm[r0]


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _blk_pass2_eig(X, sx, rows, lay, tab, w, gains, sc, V, sv):
    """V[sv, :, p] = sum_k w[k, p] [dm_weight dm_r mu_k + Q_k ((sign table[r, :, k]) o y_k)] at
    the lane rows r (``Gains``: the velocity or the score) for full covariances, with the
    eigen-coordinates y_k in sc.eig."""
    uni = _uniform(rows)
    r0, a0, dm0 = _pass2_row0(rows, tab, gains)
    d, P, K = X.shape[1], X.shape[2], w.shape[0]
    tg, sign, dmw = gains
    # sum_k Q_k (w_k g_k o y_k): one (d, K d) @ (K d, P) product (BLAS). In place in eig unless
    # weighted is allocated (two loops: through two names for one array, LLVM's runtime alias
    # check fails and the loop runs scalar)
    yb, zb = sc.eig, sc.weighted
    Kt = yb.shape[0]
    if zb.shape[2] == 0 and Kt == K:
        for k in range(K):
            for j in range(d):
                gk0 = sign * tg[r0, j, k]
                for p in range(P):
                    gk = gk0 if uni else sign * tg[_row(rows, p), j, k]
                    yb[k, j, p] = w[k, p] * gk * yb[k, j, p]
        _gemm(lay.from_eigen, sc.eig_flat, V[sv])
    elif zb.shape[2] == 0:
        # components in tiles of Kt: each tile's coordinates again (pass 1 kept only its
        # logits), weighted in place, then its (d, Kt d) @ (Kt d, P) product added to V
        vt = sc.tile_field
        for j in range(d):
            for p in range(P):
                V[sv, j, p] = 0.0
        for k0 in range(0, K, Kt):
            nk = min(Kt, K - k0)
            _blk_coords(X, sx, rows, lay, tab, k0, nk, sc)
            for i in range(nk):
                k = k0 + i
                for j in range(d):
                    gk0 = sign * tg[r0, j, k]
                    for p in range(P):
                        gk = gk0 if uni else sign * tg[_row(rows, p), j, k]
                        yb[i, j, p] = w[k, p] * gk * yb[i, j, p]
            _gemm(lay.to_eigen[k0 * d : (k0 + nk) * d].T, sc.eig_flat[: nk * d], vt)
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
        _gemm(lay.from_eigen, sc.weighted_flat, V[sv])
    mu, dm = lay.comp.mu, tab.dm
    for k in range(K):
        for i in range(d):
            dmu0 = dm0 * mu[i, k]
            for p in range(P):
                dmu = dmu0 if uni else (dmw * dm[_row(rows, p)]) * mu[i, k]
                V[sv, i, p] += w[k, p] * dmu


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _blk_pass2_direct(X, sx, rows, lay, tab, w, gains, sc, V, sv):
    """``_blk_pass2_eig`` for isotropic and diagonal covariances (modes 0 and 1): the
    coordinates y_k = x - alpha_r mu_k directly."""
    uni = _uniform(rows)
    r0, a0, dm0 = _pass2_row0(rows, tab, gains)
    d, P, K = X.shape[1], X.shape[2], w.shape[0]
    tg, sign, dmw = gains
    mu, al, dm = lay.comp.mu, tab.alpha, tab.dm
    for j in range(d):
        for p in range(P):
            V[sv, j, p] = 0.0
    jj = 0
    for k in range(K):
        for j in range(d):
            if lay.comp.mode == 1:
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
_blk_weights_c = _njit(cache=True, fastmath=_FM, **_BLOCK)(_blk_weights.py_func)
_blk_pass2_eig_c = _njit(cache=True, fastmath=_FM, **_BLOCK)(_blk_pass2_eig.py_func)
_blk_pass2_direct_c = _njit(cache=True, fastmath=_FM, **_BLOCK)(_blk_pass2_direct.py_func)


# fastmath=False, written out (left unset, a callee inherits its caller's flags), so that compiled
# and cached code agree in rounding (docs/performance.md, "Numba pitfalls"; test_repro.py)
@_njit(cache=True, fastmath=False, **_BLOCK)
def _blk_divergence(X, sx, rows, mt, lay, tab, sc, dv):
    """dv[p] = div F(X[sx, :, p]) (velocity tables), after ``_blk_field`` filled the logits, the
    group coefficients and (full covariances) the eigen-coordinates of these lanes (with
    ``_scratch(..., div=True)``, so that pass 2 kept them). ``mt``: the mode tag (``_blk_field``)."""
    mode = len(mt)
    uni = _uniform(rows)
    r0 = _row(rows, 0)
    d = X.shape[1]
    K, P = sc.logits.shape
    G = sc.group_coef.shape[0]
    mu, mue = lay.comp.mu, lay.comp.mue
    al, dm, invs, gain = tab.alpha, tab.dm, tab.invs, tab.gain
    tk, rb, acc, us, yb, cg = (
        sc.div_terms,
        sc.resp,
        sc.div_acc,
        sc.group_fields,
        sc.eig,
        sc.group_coef,
    )
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
        _blk_weights_c(sc.logits, g, g + 1, _RESPONSIBILITIES, sc, rb)
        for p in range(P):
            acc[p] = 0.0
        for k in range(K):
            for p in range(P):
                acc[p] += rb[k, p] * tk[k, p]
        # the group's velocity, then its score
        if mode == 2:
            _blk_pass2_eig_c(X, sx, rows, lay, tab, rb, _velocity_gains(tab), sc, us, 0)
            _blk_pass2_eig_c(X, sx, rows, lay, tab, rb, _score_gains(tab), sc, us, 1)
        else:
            _blk_pass2_direct_c(X, sx, rows, lay, tab, rb, _velocity_gains(tab), sc, us, 0)
            _blk_pass2_direct_c(X, sx, rows, lay, tab, rb, _score_gains(tab), sc, us, 1)
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
        _gemm(A, B, out)
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
def _blk_logits_mm(X, sx, r, lay, tab, sc):
    """Logits of isotropic components at one row r with beta_r >= alpha_r: ``_split_coefs``
    summed over the d directions, less the common term |x|^2 / (2 beta^2) (one number per lane,
    which cancels in every softmax). With D_kp = mu_k . x_p from one (K, d) @ (d, P) product,
    lb[k, p] = cst_rk - h2_k (alpha |mu_k|^2 - 2 D_kp - (c_k / beta^2) |x_p|^2).
    (``_small_dot``: BLAS from MM_MIN_D dimensions on, loops below.)"""
    lb, xx = sc.logits, sc.lane_tmp
    d = X.shape[1]
    K, P = lb.shape
    a = tab.alpha[r]
    b2 = tab.beta[r] * tab.beta[r]
    mu, lam, invs, cst = lay.comp.mu, lay.comp.lam, tab.invs, tab.cst
    _small_dot(lay.means_t, X[sx], lb, d >= MM_MIN_D)
    for p in range(P):
        xx[p] = 0.0
    for j in range(d):
        for p in range(P):
            xx[p] += X[sx, j, p] * X[sx, j, p]
    for k in range(K):
        m2 = 0.0
        for j in range(d):
            m2 += mu[j, k] * mu[j, k]
        c1, C = _split_coefs(a, b2, invs[r, 0, k], lam[k, 0])
        c0 = a * m2
        cx = C / b2
        c = cst[r, k]
        for p in range(P):
            lb[k, p] = c - c1 * (c0 - 2.0 * lb[k, p] - cx * xx[p])


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _blk_pass2_mm(X, sx, r, lay, tab, sc, V, sv):
    """V[sv, :, p] = sum_k C_kp [dm_r mu_k + gain_rk (x_p - alpha_r mu_k)] for isotropic components
    at one row r (C = sc.comp_coef), as (sum_k C_kp gain_rk) x_p + sum_k C_kp (dm_r - alpha_r
    gain_rk) mu_k: the second sum one (d, K) @ (K, P) product (``_small_dot``)."""
    cb, mc, acc = sc.comp_coef, sc.comp_tmp, sc.gain_sum
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
            mc[k, p] = w * c
            acc[p] += w * g
    _small_dot(lay.comp.mu, mc, V[sv], d >= MM_MIN_D)
    for j in range(d):
        for p in range(P):
            V[sv, j, p] += acc[p] * X[sx, j, p]


@numba.njit(cache=True, fastmath=_FM, inline="always")
def _blk_pass2_mt(X, sx, r, tabs, sc, V, sv):
    """V[sv, :, p] = (sum_k C_kp M_rk) x_p + sum_k C_kp b_rk for full covariances at one row r
    (C = sc.comp_coef; ``Tables``: M[r] (d d, K), b[r] (d, K)): two products whose inner
    dimension is K (BLAS), no eigen-coordinates."""
    d = X.shape[1]
    P = X.shape[2]
    am = sc.msum
    _gemm(tabs.M[r], sc.comp_coef, am)
    _gemm(tabs.b[r], sc.comp_coef, V[sv])
    for i in range(d):
        for j in range(d):
            for p in range(P):
                V[sv, i, p] += am[i * d + j, p] * X[sx, j, p]


@_njit(cache=True, fastmath=_FM, **_BLOCK)
def _blk_field(X, sx, rows, mt, lay, tabs, sc, V, sv):
    """V[sv, :, p] = F(X[sx, :, p]) for the P = X.shape[2] lanes p at the table rows ``rows``
    (an integer, or (P,) per lane); the lanes' groups are in sc.group_lo, group_hi,
    particle_coef (``_lane_groups``). ``_blk_divergence`` may follow (it reuses the logits and
    coefficients). Not inlined at the Numba IR level (docs/performance.md, "Numba pitfalls").

    ``mt`` is the mode tag, a tuple of length comp.mode: ``len(mt)`` is a compile-time constant,
    so numba drops the other modes' branches before it types them (it does so for conditions on
    the length of a tuple argument), and each covariance type compiles only its own code."""
    mode = len(mt)
    tab = tabs.tab
    uni = _uniform(rows)
    r0 = _row(rows, 0)
    d = X.shape[1]
    cst, tc = tab.cst, tab.tcoef
    K = cst.shape[1]
    G = tc.shape[1]
    P = X.shape[2]
    mu, mue, lam = lay.comp.mu, lay.comp.mue, lay.comp.lam
    lb, yb, cg, cbase = sc.logits, sc.eig, sc.group_coef, sc.particle_coef
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
        _blk_logits_mm(X, sx, r0, lay, tab, sc)
    elif mode == 2:
        # xe_k = Q_k^T x, a tile of Kt components at a time (all K unless the scratch of all of
        # them would leave L2): one (Kt d, d) @ (d, P) product (BLAS) and the logits; with one
        # tile, y_k = xe_k - alpha Q_k^T mu_k is kept for pass 2 (with several, pass 2 needs none
        # or computes its own). The subtraction is written here, not called, so that compiled and
        # cached code agree in rounding (docs/performance.md, "Numba pitfalls")
        Kt = yb.shape[0]
        keep = Kt == K
        al = tab.alpha
        a0 = al[r0]
        for k0 in range(0, K, Kt):
            nk = min(Kt, K - k0)
            _gemm(lay.to_eigen[k0 * d : (k0 + nk) * d], X[sx], sc.eig_flat[: nk * d])
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
    _blk_weights(lb, 0, G, _BY_GROUP_COEF, sc, sc.comp_coef)
    # pass 2: the field (with the divergence, weighted is separate: the eigen-coordinates survive)
    if mode == 2:
        if uni and tabs.M.shape[2] == K and yb.shape[0] < K:
            _blk_pass2_mt(X, sx, r0, tabs, sc, V, sv)
        else:
            _blk_pass2_eig(X, sx, rows, lay, tab, sc.comp_coef, _velocity_gains(tab), sc, V, sv)
    elif mode == 0 and split0:
        _blk_pass2_mm(X, sx, r0, lay, tab, sc, V, sv)
    else:
        _blk_pass2_direct(X, sx, rows, lay, tab, sc.comp_coef, _velocity_gains(tab), sc, V, sv)


# --- kernels ---------------------------------------------------------------------------------


@_njit(cache=True, fastmath=_FM, nogil=True, no_cfunc_wrapper=True)
def eval_blk(b0, b1, x, rows, mt, lay, tabs, P, out, div):
    """out[n] = F(x[n]) for the particles n of blocks b0 .. b1 - 1 (``_bsize(P)`` particles each)
    at table row ``rows`` (an integer: one time for all) or rows[n] (int64 (N,)); with an array
    ``div`` (not None) also div[n] = div F(x[n]) (velocity tables). ``mt``: the mode tag
    (``_blk_field``); ``lay``: Layout; ``tabs``: Tables. P lanes per evaluation. One task of
    ``refcfg.sampling.cpu``'s thread pool: its scratch is allocated once for all of its blocks
    (allocated per block, the MBs of scratch of a large mixture were fresh, page-faulted memory at
    every block)."""
    N, d = x.shape
    sc = _scratch(lay.comp.mode, tabs.tab.cst.shape[1], d, lay.grp.lo.shape[1], P, div is not None)
    X = np.empty((1, d, P))
    V = np.empty((1, d, P))
    dv = np.empty(P)
    lr = _lane_rows(rows, P)
    # slot 0 as an int64 variable, not a literal: _blk_field then has the same signature as in
    # integrate_blk (a literal argument would compile another specialisation)
    zero = np.int64(0)
    B = _bsize(P)
    for n0 in range(b0 * B, min(N, b1 * B), P):
        _lane_groups(n0, n0 == b0 * B, N, lay.grp, sc)
        _fill_lane_rows(rows, lr, n0, N)
        for p in range(P):
            n = min(n0 + p, N - 1)
            for j in range(d):
                X[0, j, p] = x[n, j]
        _blk_field(X, zero, lr, mt, lay, tabs, sc, V, zero)
        if div is not None:  # decided at compile time (None or an array)
            _blk_divergence(X, zero, lr, mt, lay, tabs.tab, sc, dv)
        for p in range(min(P, N - n0)):
            for j in range(d):
                out[n0 + p, j] = V[0, j, p]
        if div is not None:
            for p in range(min(P, N - n0)):
                div[n0 + p] = dv[p]


@_njit(cache=True, fastmath=_FM, nogil=True, no_cfunc_wrapper=True)
def integrate_blk(b0, b1, x0, mt, lay, tabs, grid, P, noise, out, dl):
    """Fused time loop for the particles of blocks b0 .. b1 - 1 (one task, as in ``eval_blk``) on
    the ``Grid`` (times (S + 1,), the explicit Runge-Kutta tableau (a, b) of s = len(b) stages):
    table row i * s + j of ``tabs`` holds the field at the stage time of step i, stage j.

    Euler-Maruyama (``Noise``: noise.on; s = 1, drift tables): after the step,
    x += diffusion[i] sqrt(h) xi, xi = normals[i, n] if noise.from_array else the counter-based
    normals of (seed, first_particle + n, i). With an array ``dl`` (not None): the augmented system
    (x, l)' = (F, div F) (velocity tables), dl[n] = the integral of div F along the grid.
    ``Output``: the final states, and traj[slot[i], n] = the state at times[i] where slot[i] >= 0."""
    times, a, b = grid.times, grid.a, grid.b
    slot, traj = out.slot, out.traj
    N, d = x0.shape
    S = times.shape[0] - 1
    s = b.shape[0]
    sc = _scratch(lay.comp.mode, tabs.tab.cst.shape[1], d, lay.grp.lo.shape[1], P, dl is not None)
    st = np.empty((2, d, P))  # [0]: the states, [1]: the stage inputs
    kv = np.empty((s, d, P))  # the stage slopes
    qd = np.empty((s, P))  # the stage divergences
    ell = np.zeros(P)
    xi = np.empty(d)
    B = _bsize(P)
    for n0 in range(b0 * B, min(N, b1 * B), P):
        nl = min(P, N - n0)
        _lane_groups(n0, n0 == b0 * B, N, lay.grp, sc)
        for p in range(P):
            n = min(n0 + p, N - 1)
            ell[p] = 0.0
            for j in range(d):
                st[0, j, p] = x0[n, j]
        if slot[0] >= 0:
            for p in range(nl):
                for j in range(d):
                    traj[slot[0], n0 + p, j] = st[0, j, p]
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
                _blk_field(st, sx, row, mt, lay, tabs, sc, kv, js)
                if dl is not None:  # decided at compile time (None or an array)
                    _blk_divergence(st, sx, row, mt, lay, tabs.tab, sc, qd[js])
            for js in range(s):
                hb = h * b[js]
                if hb != 0.0:
                    for j in range(d):
                        for p in range(P):
                            st[0, j, p] = st[0, j, p] + hb * kv[js, j, p]
                    if dl is not None:
                        for p in range(P):
                            ell[p] = ell[p] + hb * qd[js, p]
            if noise.on and noise.diffusion[i] != 0.0:
                amp = noise.diffusion[i] * math.sqrt(h)
                for p in range(nl):
                    if noise.from_array:
                        for j in range(d):
                            xi[j] = noise.normals[i, n0 + p, j]
                    else:
                        fill_normals(stream_key(noise.seed, noise.first_particle + n0 + p, i), xi)
                    for j in range(d):
                        st[0, j, p] += amp * xi[j]
            if slot[i + 1] >= 0:
                for p in range(nl):
                    for j in range(d):
                        traj[slot[i + 1], n0 + p, j] = st[0, j, p]
        for p in range(nl):
            for j in range(d):
                out.x[n0 + p, j] = st[0, j, p]
        if dl is not None:
            for p in range(nl):
                dl[n0 + p] = ell[p]


@_njit(cache=True, fastmath=_FM, nogil=True, no_cfunc_wrapper=True)
def mform_tables(ri0, ri1, QT, gain, mu, alpha, dm, MT, BT):
    """The M-form tables of full covariances (``refcfg.sampling.cpu._tables``):
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
