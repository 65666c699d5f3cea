"""Lowering field objects to flat arrays for the Numba (and CUDA) kernels.

A field built from exact Gaussian-mixture paths -- ``ExactField``, ``CFGField``,
``ClassifierGuidedField`` and ``GuidedField`` trees of them, e.g. ``refcfg.guided(a, b, w)`` with
fields of different data laws -- is a linear combination

    F = sum_g coef_g u_g,   u_g = the exact field of path P_g conditioned on label y_g,

(CFG eq. 65 of arXiv 2506.02070 v3: coef = (w, 1 - w); classifier guidance eq. 62 with the exact
Bayes classifier: u + w (u_y - u), the same coefficients). ``lower`` collects the leaves, stacks the
components of the distinct paths into one table (each leaf is a contiguous range [lo_g, hi_g) of it:
a class's components are consecutive in its path's marginal mixture) and returns a ``Lowered``
record. ``Lowered.tables(t)`` evaluates the schedule on the host at given times and returns the
per-time constants the kernels use, hoisted out of every particle loop:

    s_tkj  = alpha_t^2 lam_kj + beta_t^2                    eigenvalues of S_k(t)
    cst_tk = log w_k - (d log 2 pi + sum_j log s_tkj) / 2   log-normaliser (+ mixture weight)
    invs   = 1 / s,   gain = (alpha dalpha lam + beta dbeta - sigma_t^2 / 2) / s   (velocity/drift)
                      gain = -1 / s with dm = 0                                    (score)

Every other field (user fields, learned networks, nonlinear guidance variants) is not lowerable:
``lower`` raises ``NotLowerable`` and the samplers fall back to NumPy. The check is by exact type,
so a subclass that overrides ``velocity`` is never silently replaced by the exact formula.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validation import NULL

__all__ = ["Lowered", "NotLowerable", "lower", "is_lowerable"]

MODE_ISOTROPIC, MODE_DIAG, MODE_FULL = 0, 1, 2


class NotLowerable(TypeError):
    """The field is not a linear combination of exact Gaussian-mixture fields."""


@dataclass
class Lowered:
    """Flat description of a lowered field (see the module docstring).

    mode: 0 every covariance isotropic, 1 diagonal, 2 some full covariance (identity eigenvectors
    for the others). lam (K, d) eigenvalues; logw (K,) log mixture weights of each component in its
    path's marginal mixture; mu, mue (d, K) means and eigen-frame means Q_k^T mu_k; QT (d, d, K)
    with QT[i, j, k] = Q_k[i, j] ((1, 1, 1) unless mode 2); lo, hi (L, G) int64 component ranges of
    the G groups (L = 1 shared, or L = n per particle); coef (C, G) coefficients (C = 1 or n)."""

    schedule: object
    d: int
    mode: int
    lam: np.ndarray
    logw: np.ndarray
    mu: np.ndarray
    mue: np.ndarray
    QT: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    coef: np.ndarray
    n: int | None

    @property
    def K(self) -> int:
        return self.lam.shape[0]

    @property
    def G(self) -> int:
        return self.lo.shape[1]

    def tables(self, t, kind: str = "velocity", sigma=None):
        """(am, dm, cst, invs, gain) at the times t (T,) for kind "velocity", "score" or "drift"
        (the SDE drift u + sigma_t^2/2 score, sigma (T,) required). Arrays are C-contiguous."""
        t = np.ascontiguousarray(np.atleast_1d(np.asarray(t, dtype=np.float64)))
        v = self.schedule.values(t)
        al, be, da, bdb = (np.broadcast_to(np.asarray(q, dtype=np.float64), t.shape)
                           for q in (v.alpha, v.beta, v.dalpha, v.beta_dbeta))
        lam = self.lam if self.mode != MODE_ISOTROPIC else self.lam[:, :1]       # (K, dd)
        s = al[:, None, None] ** 2 * lam[None] + be[:, None, None] ** 2        # (T, K, dd)
        logdet = np.log(s).sum(-1)
        if self.mode == MODE_ISOTROPIC:
            logdet = logdet * self.d
        cst = self.logw[None, :] - 0.5 * (self.d * np.log(2 * np.pi) + logdet)  # (T, K)
        invs = 1.0 / s
        if kind == "score":
            gain, dm = -invs, np.zeros_like(da)
        elif kind in ("velocity", "drift"):
            num = (al * da)[:, None, None] * lam[None] + bdb[:, None, None]
            if kind == "drift":
                sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), t.shape)
                num = num - 0.5 * (sig * sig)[:, None, None]
            gain, dm = num * invs, np.array(da)
        else:
            raise ValueError(f"kind must be 'velocity', 'score' or 'drift', got {kind!r}")
        tr = lambda a: np.ascontiguousarray(np.swapaxes(a, 1, 2))  # noqa: E731  (T, dd, K)
        return (np.ascontiguousarray(al), np.ascontiguousarray(dm), np.ascontiguousarray(cst),
                tr(invs), tr(gain))

    def select(self, idx):
        """The same field restricted to particles idx (per-particle arrays sliced)."""
        lo, hi, coef = self.lo, self.hi, self.coef
        if lo.shape[0] > 1:
            lo, hi = np.ascontiguousarray(lo[idx]), np.ascontiguousarray(hi[idx])
        if coef.shape[0] > 1:
            coef = np.ascontiguousarray(coef[idx])
        n = lo.shape[0] if lo.shape[0] > 1 else (coef.shape[0] if coef.shape[0] > 1 else None)
        return Lowered(self.schedule, self.d, self.mode, self.lam, self.logw, self.mu, self.mue,
                       self.QT, lo, hi, coef, n)


def _leaves(field, coef, out):
    """Append (coef, path, y) leaves of a linear field tree to out; raise NotLowerable otherwise."""
    from ..guidance import CFGField, ClassifierGuidedField, ExactField, GuidedField
    from ..paths import GMMPath

    tp = type(field)
    if tp is GMMPath:
        out.append((coef, field, None))
    elif tp is ExactField:
        out.append((coef, field.path, field.y))
    elif tp is ClassifierGuidedField:
        # u + w (u_y - u) with exact fields (eq. 59-62): coefficients w on u_y, 1 - w on u
        w = field.w
        out.append((coef * w, field.path, field.y))
        out.append((coef * (1.0 - w), field.path, None))
    elif tp is GuidedField or tp is CFGField:
        w = field.w
        _leaves(field.a, coef * w, out)
        _leaves(field.b, coef * (1.0 - w), out)
    else:
        raise NotLowerable(f"{tp.__name__} is not a linear combination of exact mixture fields")


def is_lowerable(field) -> bool:
    """True when ``lower(field)`` would succeed (exact fields and linear guided trees of them)."""
    try:
        _leaves(field, 1.0, [])
    except NotLowerable:
        return False
    return True


def lower(field, n: int | None = None) -> Lowered:
    """Lower ``field`` for n particles (n is needed when labels or w are per-particle arrays).

    Raises NotLowerable for fields that are not linear combinations of exact mixture fields, and
    ValueError when per-particle arrays do not have length n."""
    leaves = []
    _leaves(field, 1.0, leaves)
    paths, offsets = [], []
    for _, path, _ in leaves:
        if not any(path is p for p in paths):
            paths.append(path)
    sched = paths[0].schedule
    for p in paths[1:]:
        if p.schedule != sched:
            raise NotLowerable("the fields' paths have different schedules")
        if p.d != paths[0].d:
            raise ValueError(f"the fields have different dimensions, {paths[0].d} and {p.d}")
    d = paths[0].d
    # components of each path that some leaf uses: one class's slice when every leaf of that path
    # is conditioned on the same scalar class (a plain conditional field), else all of them
    used = []
    for p in paths:
        ys = [y for _, q, y in leaves if q is p]
        single = all(y is not None and np.ndim(y) == 0 and int(y) != NULL for y in ys) and \
            len({int(y) for y in ys}) == 1
        sl = p.mixture.class_slices[int(ys[0])] if single else slice(0, p.mixture.marginal.K)
        used.append((sl.start, sl.stop))
    margs = [p.mixture.marginal for p in paths]
    off = 0
    for (a, b) in used:
        offsets.append(off)
        off += b - a
    K = off
    lam = np.ascontiguousarray(np.concatenate([m.eigvals[a:b] for m, (a, b) in zip(margs, used)]))
    logw = np.ascontiguousarray(np.concatenate([m.log_weights[a:b] for m, (a, b) in zip(margs, used)]))
    means = np.concatenate([m.means[a:b] for m, (a, b) in zip(margs, used)])             # (K, d)
    if any(m.eigvecs is not None for m in margs):
        mode = MODE_FULL
        Q = np.concatenate([(m.eigvecs if m.eigvecs is not None
                             else np.broadcast_to(np.eye(d), (m.K, d, d)))[a:b]
                            for m, (a, b) in zip(margs, used)])                   # (K, d, d)
        mue = np.einsum("kij,ki->kj", Q, means)                                # Q_k^T mu_k
        QT = np.ascontiguousarray(np.transpose(Q, (1, 2, 0)))                  # [i, j, k] = Q_k[i, j]
    else:
        mode = MODE_ISOTROPIC if all(m.cov_type == "isotropic" for m in margs) else MODE_DIAG
        mue = means
        QT = np.zeros((1, 1, 1))
    # groups
    G = len(leaves)
    per_n = None
    for c, _, y in leaves:
        for a in (c, y):
            if a is not None and np.ndim(a) == 1:
                if per_n is not None and len(a) != per_n:
                    raise ValueError(f"per-particle labels/weights have lengths {per_n} and {len(a)}")
                per_n = len(a)
    if n is not None and per_n is not None and per_n != n:
        raise ValueError(f"the field holds per-particle labels or weights of length {per_n} but "
                         f"n = {n} particles are sampled")
    label_arrays = any(y is not None and np.ndim(y) == 1 for _, _, y in leaves)
    coef_arrays = any(np.ndim(c) == 1 for c, _, _ in leaves)
    L = per_n if label_arrays else 1
    C = per_n if coef_arrays else 1
    lo = np.empty((L, G), dtype=np.int64)
    hi = np.empty((L, G), dtype=np.int64)
    coef = np.empty((C, G))
    for g, (c, path, y) in enumerate(leaves):
        ip = next(i for i, p in enumerate(paths) if p is path)
        o = offsets[ip] - used[ip][0]          # table index = o + index in the path's marginal
        Kp = path.mixture.marginal.K
        sl = path.mixture.class_slices
        if y is None or (np.ndim(y) == 0 and int(y) == NULL):
            lo[:, g], hi[:, g] = o, o + Kp
        elif np.ndim(y) == 0:
            lo[:, g], hi[:, g] = o + sl[int(y)].start, o + sl[int(y)].stop
        else:
            yy = np.asarray(y, dtype=np.int64)
            starts = np.array([s.start for s in sl] + [0], dtype=np.int64)    # index -1 -> NULL
            stops = np.array([s.stop for s in sl] + [Kp], dtype=np.int64)
            lo[:, g], hi[:, g] = o + starts[yy], o + stops[yy]
        coef[:, g] = c
    return Lowered(sched, d, mode, lam, logw, np.ascontiguousarray(means.T), np.ascontiguousarray(mue.T),
                   QT, lo, hi, coef, per_n)
