"""The one lowering: a field as flat records of arrays for the fast backends (CPU and CUDA kernels).

A lowerable field -- ``GMMPath``, ``ExactField``, ``CFGField``, ``ClassifierGuidedField``,
``GuidedField`` trees of them and every other class that declares ``_terms`` -- is a linear
combination

    F(x, t) = sum_g coef_g tcoef_g(t) u_t(x | path_g, y_g),

given by ``refcfg.guidance.base.linear_terms`` (CFG, eq. 65 of the notes: coefficients (w, 1 - w);
classifier guidance with the exact Bayes classifier, eqs. 59-62: the same; time factors for the
guidance interval and weight profiles). ``lower`` stacks the components of the distinct paths into
one table (``Components``; each term is a contiguous range [lo_g, hi_g) of it: a class's components
are consecutive in its path's marginal mixture), the terms into ``Groups``, and
``Lowered.tables(times)`` evaluates the schedule on the host at the given times into
``TimeTables``, the per-time constants the kernels use, hoisted out of every particle loop:

    s_tkj  = alpha_t^2 lam_kj + beta_t^2                    eigenvalues of S_k(t)
    cst_tk = log w_k - (d log 2 pi + sum_j log s_tkj) / 2   log-normaliser (+ mixture weight)
    invs   = 1 / s,   gain = (alpha dalpha lam + beta dbeta - sigma_t^2 / 2) / s   (velocity/drift)
                      gain = -1 / s with dm = 0                                    (score)
    tcoef_tg = tcoef_g(t)                                   time factor of group g (1 when none)
    alpha_t, beta_t                                         the schedule (the split form of isotropic logits)

With these, a kernel evaluates, for table row r (a time) and particle n,

    F = sum_k C_k [dm_r mu_k + Q_k (gain_rk o y_k)],   y_k = Q_k^T x - alpha_r Q_k^T mu_k,
    C_k = sum_g coef[n, g] tcoef[r, g] softmax_{k in [lo_g, hi_g)} (cst_rk - |y_k|^2_{invs_rk} / 2).

Every other field raises ``NotLowerable`` (the one of ``refcfg.guidance.base``), with the reason;
the "auto" backend then runs it on NumPy, and "cpu"/"cuda" refuse it (``require_lowerable``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._validation import NULL, _describe
from ..guidance.base import NotLowerable, linear_terms
from ..schedules import path_eigenvalues, velocity_numerator

__all__ = [
    "MODE_ISOTROPIC",
    "MODE_DIAG",
    "MODE_FULL",
    "Components",
    "Groups",
    "TimeTables",
    "Lowered",
    "NotLowerable",
    "lower",
    "is_lowerable",
    "require_lowerable",
]

MODE_ISOTROPIC, MODE_DIAG, MODE_FULL = 0, 1, 2
KINDS = ("velocity", "score", "drift")


class Components(NamedTuple):
    """The K mixture components of dimension d (dd = 1 if every covariance is isotropic, else d).

    mode: MODE_ISOTROPIC, MODE_DIAG or MODE_FULL (some full covariance; identity eigenvectors for
    the others). lam (K, dd) eigenvalues of Sigma_k; logw (K,) log weight of k in its path's
    marginal mixture; mu (d, K) means; mue (d, K) eigen-frame means Q_k^T mu_k (= mu unless
    MODE_FULL); QT (d, d, K) with QT[i, j, k] = Q_k[i, j] ((1, 1, 1) unless MODE_FULL)."""

    mode: int
    lam: np.ndarray
    logw: np.ndarray
    mu: np.ndarray
    mue: np.ndarray
    QT: np.ndarray


class Groups(NamedTuple):
    """The G linear terms: component range [lo[l, g], hi[l, g]) (L = 1 shared, or n per particle)
    and particle factor coef[c, g] (C = 1 or n) of each group g."""

    lo: np.ndarray
    hi: np.ndarray
    coef: np.ndarray


class TimeTables(NamedTuple):
    """Per-time constants at T table times (module docstring): alpha, beta (T,); dm (T,) dalpha_t
    for the velocity and the SDE drift, 0 for the score; cst (T, K); invs, gain (T, dd, K); tcoef
    (T, G)."""

    alpha: np.ndarray
    beta: np.ndarray
    dm: np.ndarray
    cst: np.ndarray
    invs: np.ndarray
    gain: np.ndarray
    tcoef: np.ndarray


def _c(a, dtype=np.float64):
    return np.ascontiguousarray(np.asarray(a, dtype=dtype))


class Lowered:
    """A lowered field: ``schedule``, ``d``, ``n`` (None, or the length of its per-particle labels /
    weights), ``comp`` (Components), ``groups`` (Groups), the time factors of the groups, and
    ``K``, ``G``. ``tables(times, kind, sigma)`` gives the TimeTables, ``select(idx)`` the same
    field restricted to particles idx."""

    def __init__(self, schedule, d, n, comp, groups, tfactors):
        self.schedule, self.d, self.n = schedule, d, n
        self.comp, self.groups = comp, groups
        self.tfactors = tuple(tfactors)

    @property
    def K(self) -> int:
        """Number of components in the table."""
        return self.comp.lam.shape[0]

    @property
    def G(self) -> int:
        """Number of groups (linear terms)."""
        return self.groups.lo.shape[1]

    def tcoef(self, t) -> np.ndarray:
        """(T, G) time factors of the groups at the times t (T,) (ones for groups without)."""
        t = _c(np.atleast_1d(t))
        out = np.ones((t.shape[0], self.G))
        for g, f in enumerate(self.tfactors):
            if f is None:
                continue
            v = np.asarray(f(t), dtype=np.float64)
            if v.shape not in ((), t.shape) or not np.all(np.isfinite(v)):
                raise ValueError(
                    f"the time factor {f!r} of term {g} must return finite values of "
                    f"shape {t.shape} for times of shape {t.shape}, got {_describe(v)}"
                )
            out[:, g] = v
        return out

    def tables(self, t, kind: str = "velocity", sigma=None) -> TimeTables:
        """TimeTables at the times t (T,) for kind "velocity", "score" or "drift" (the SDE drift
        u + sigma_t^2/2 score, sigma (T,) required). Arrays are C-contiguous float64."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        t = _c(np.atleast_1d(t))
        v = self.schedule.values(t)
        al, be, da, bdb = (
            np.broadcast_to(np.asarray(q, dtype=np.float64), t.shape)
            for q in (v.alpha, v.beta, v.dalpha, v.beta_dbeta)
        )
        comp = self.comp
        lam = comp.lam  # (K, dd)
        if np.any(be == 0.0) and np.any(np.all(lam == 0.0, axis=1)):
            # a point mass (covariance 0) has S_k = beta_t^2 I: its fields diverge like 1/beta_t
            bad = float(t[be == 0.0][0])
            raise ValueError(
                f"t = {bad!r}: the field has point-mass components (covariance 0), whose {kind} "
                f"diverges where beta_t = 0; evaluate at t < 1 (sample with t_end < 1, or with a "
                f"sampler that does not evaluate at the last grid time: 'euler', "
                f"'euler_maruyama') and finish with the posterior mean x0 = E[z | x_t]"
            )
        s = path_eigenvalues(al[:, None, None], be[:, None, None], lam[None])  # (T, K, dd)
        logdet = np.log(s).sum(-1)
        if comp.mode == MODE_ISOTROPIC:
            logdet = logdet * self.d
        cst = comp.logw[None, :] - 0.5 * (self.d * np.log(2 * np.pi) + logdet)  # (T, K)
        invs = 1.0 / s
        if kind == "score":
            gain, dm = -invs, np.zeros_like(da)
        else:
            num = velocity_numerator(
                al[:, None, None], da[:, None, None], bdb[:, None, None], lam[None]
            )
            if kind == "drift":
                sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), t.shape)
                num = num - 0.5 * (sig * sig)[:, None, None]
            gain, dm = num * invs, np.array(da)
        tr = lambda a: _c(np.swapaxes(a, 1, 2))  # noqa: E731  (T, dd, K)
        return TimeTables(_c(al), _c(be), _c(dm), _c(cst), tr(invs), tr(gain), self.tcoef(t))

    def select(self, idx) -> Lowered:
        """The same field restricted to particles idx (per-particle arrays sliced)."""
        lo, hi, coef = self.groups
        if lo.shape[0] > 1:
            lo, hi = _c(lo[idx], np.int64), _c(hi[idx], np.int64)
        if coef.shape[0] > 1:
            coef = _c(coef[idx])
        n = lo.shape[0] if lo.shape[0] > 1 else (coef.shape[0] if coef.shape[0] > 1 else None)
        return Lowered(self.schedule, self.d, n, self.comp, Groups(lo, hi, coef), self.tfactors)


class _PathTable(NamedTuple):
    """A path's components in table order: ``perm`` (K,) marginal indices, ``logw`` (K,) their log
    weights, ``slices`` each class's range in that order, ``k_null`` the length of the null label's
    range [0, k_null)."""

    perm: np.ndarray
    logw: np.ndarray
    slices: list
    k_null: int


def _path_table(path) -> _PathTable:
    """The components of ``path`` in table order (see ``lower``).

    Every class with prior p(y) > 0 keeps the marginal order and log weights log p(y) + log pi_yk
    (the constant log p(y) cancels in a class's softmax). A class with p(y) = 0 has log weight -inf
    in the marginal, so its own softmax would be -inf - (-inf); its components go last, with the
    in-class log weights log pi_yk of its conditional law p(x|y) (which exists), and the null
    label's range [0, k_null) stops before them (their weight in p_t(x) is 0). Without such a class
    this is the identity, and the tables are the marginal's as they were."""
    mix = path.mixture
    marg = mix.marginal
    zero = [c for c, p in enumerate(mix.class_probs) if p == 0.0]
    if not zero:
        return _PathTable(np.arange(marg.K), marg.log_weights, list(mix.class_slices), marg.K)
    order = [c for c in range(mix.n_classes) if c not in zero] + zero
    perm, logw, pos = [], [], 0
    slices: list = [None] * mix.n_classes
    for c in order:
        sl = mix.class_slices[c]
        perm.append(np.arange(sl.start, sl.stop))
        logw.append(mix.classes[c].log_weights if c in zero else marg.log_weights[sl])
        slices[c] = slice(pos, pos + sl.stop - sl.start)
        pos += sl.stop - sl.start
    k_null = sum(mix.classes[c].K for c in order if c not in zero)
    return _PathTable(np.concatenate(perm), np.concatenate(logw), slices, k_null)


def is_lowerable(field) -> bool:
    """True when ``lower(field)`` describes it (``linear_terms`` accepts it)."""
    try:
        linear_terms(field)
    except NotLowerable:
        return False
    return True


def require_lowerable(field, backend: str) -> None:
    """Raise NotLowerable (a TypeError) for a field that the fast ``backend`` cannot run, with the
    reason and the way out (backend='numpy')."""
    try:
        linear_terms(field)
    except NotLowerable as exc:
        raise NotLowerable(
            f"backend={backend!r} runs only fields that lower to exact Gaussian-"
            f"mixture terms, got {_describe(field)}: {exc}. Use backend='numpy' "
            f"(or 'auto') for this field"
        ) from None


def lower(field, n: int | None = None) -> Lowered:
    """Lower ``field`` for n particles (n is needed when labels or w are per-particle arrays).

    Raises NotLowerable for fields that are not linear combinations of exact mixture fields, and
    ValueError when per-particle arrays do not have length n or the terms have different dimensions."""
    terms = linear_terms(field)
    paths: list = []
    for term in terms:
        if not any(term.path is p for p in paths):
            paths.append(term.path)
    sched = paths[0].schedule
    for p in paths[1:]:
        if p.schedule != sched:
            raise NotLowerable("the fields' paths have different schedules")
        if p.d != paths[0].d:
            raise ValueError(f"the fields have different dimensions, {paths[0].d} and {p.d}")
    d = paths[0].d
    tabs = [_path_table(p) for p in paths]
    # components of each path that some term uses: one class's slice when every term of that path
    # is conditioned on the same scalar class (a plain conditional field), else all of them
    used = []
    for p, tb in zip(paths, tabs):
        ys = [term.y for term in terms if term.path is p]
        scalar = [int(y) for y in ys if y is not None and np.ndim(y) == 0]
        single = len(scalar) == len(ys) and NULL not in scalar and len(set(scalar)) == 1
        sl = tb.slices[scalar[0]] if single else slice(0, tb.perm.size)
        used.append((sl.start, sl.stop))
    offsets, off = [], 0
    for a, b in used:
        offsets.append(off)
        off += b - a
    sel = [tb.perm[a:b] for tb, (a, b) in zip(tabs, used)]  # marginal indices, table order
    margs = [p.mixture.marginal for p in paths]
    lam = np.concatenate([m.eigvals[ix] for m, ix in zip(margs, sel)])  # (K, d)
    logw = np.concatenate([tb.logw[a:b] for tb, (a, b) in zip(tabs, used)])
    means = np.concatenate([m.means[ix] for m, ix in zip(margs, sel)])  # (K, d)
    if any(m.eigvecs is not None for m in margs):
        mode = MODE_FULL
        Q = np.concatenate(
            [
                (m.eigvecs if m.eigvecs is not None else np.broadcast_to(np.eye(d), (m.K, d, d)))[
                    ix
                ]
                for m, ix in zip(margs, sel)
            ]
        )  # (K, d, d)
        mue = np.einsum("kij,ki->kj", Q, means)  # Q_k^T mu_k
        QT = np.transpose(Q, (1, 2, 0))  # [i, j, k] = Q_k[i, j]
    else:
        mode = MODE_ISOTROPIC if all(m.cov_type == "isotropic" for m in margs) else MODE_DIAG
        mue = means
        QT = np.zeros((1, 1, 1))
    if mode == MODE_ISOTROPIC:
        lam = lam[:, :1]
    comp = Components(mode, _c(lam), _c(logw), _c(means.T), _c(mue.T), _c(QT))
    # groups
    G = len(terms)
    lens = {
        len(np.asarray(a))
        for term in terms
        for a in (term.coef, term.y)
        if a is not None and np.ndim(a) == 1
    }
    per_n = lens.pop() if lens else None
    if n is not None and per_n is not None and per_n != n:
        raise ValueError(
            f"the field holds per-particle labels or weights of length {per_n} but "
            f"n = {n} particles are sampled"
        )
    # per_n is set whenever some label or coefficient array is per-particle
    L = (
        per_n
        if per_n is not None and any(t.y is not None and np.ndim(t.y) == 1 for t in terms)
        else 1
    )
    C = per_n if per_n is not None and any(np.ndim(t.coef) == 1 for t in terms) else 1
    lo = np.empty((L, G), dtype=np.int64)
    hi = np.empty((L, G), dtype=np.int64)
    coef = np.empty((C, G))
    for g, term in enumerate(terms):
        path, y = term.path, term.y
        ip = next(i for i, p in enumerate(paths) if p is path)
        o = offsets[ip] - used[ip][0]  # table index = o + index in the path's table order
        Kp = tabs[ip].k_null  # the null label's components (prior > 0) come first
        sl = tabs[ip].slices
        if y is None or (np.ndim(y) == 0 and int(y) == NULL):
            lo[:, g], hi[:, g] = o, o + Kp
        elif np.ndim(y) == 0:
            lo[:, g], hi[:, g] = o + sl[int(y)].start, o + sl[int(y)].stop
        else:
            yy = np.asarray(y, dtype=np.int64)
            starts = np.array([s.start for s in sl] + [0], dtype=np.int64)  # index -1 -> NULL
            stops = np.array([s.stop for s in sl] + [Kp], dtype=np.int64)
            lo[:, g], hi[:, g] = o + starts[yy], o + stops[yy]
        coef[:, g] = term.coef
    return Lowered(sched, d, per_n, comp, Groups(lo, hi, coef), [t.tcoef for t in terms])
