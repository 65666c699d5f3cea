"""Gaussian mixture data laws: ``GMM`` (one law) and ``LabeledGMM`` (one GMM per class).

Each covariance is eigendecomposed once, Sigma_k = Q_k diag(lam_k) Q_k^T. Every time-dependent
quantity of the probability path reuses it: S_k(t) = alpha_t^2 Sigma_k + beta_t^2 I has the same
eigenvectors and eigenvalues alpha_t^2 lam_k + beta_t^2 (see ``refcfg.paths``).
"""

from __future__ import annotations

import numpy as np

from ._validation import (
    WEIGHT_TOL,
    _describe,
    as_float_array,
    as_generator,
    as_points,
    as_positive_int,
    as_probabilities,
)

__all__ = ["GMM", "LabeledGMM", "WEIGHT_TOL", "EIG_RTOL", "SYM_RTOL"]

EIG_RTOL = 1e-10
"""A covariance is accepted as positive definite when its smallest eigenvalue exceeds EIG_RTOL times
its largest (and is > 0)."""
SYM_RTOL = 1e-10
"""A full covariance must satisfy max|C - C^T| <= SYM_RTOL * max|C|."""


def _eig_covs(covs, K: int, d: int, name: str = "covs"):
    """Validate covariances; return (eigvals (K, d), eigvecs (K, d, d) or None, cov_type)."""
    c = as_float_array(covs, name)
    if c.shape == (K,):
        cov_type, lam, Q = "isotropic", np.repeat(c[:, None], d, axis=1), None
    elif c.shape == (K, d):
        cov_type, lam, Q = "diag", c.copy(), None
    elif c.shape == (K, d, d):
        asym = np.abs(c - np.swapaxes(c, 1, 2)).max(axis=(1, 2))
        scale = np.abs(c).max(axis=(1, 2))
        bad = np.nonzero(asym > SYM_RTOL * np.maximum(scale, np.finfo(float).tiny))[0]
        if bad.size:
            k = int(bad[0])
            raise ValueError(
                f"{name}[{k}] must be symmetric, got max|C - C^T| = {asym[k]:.3g} "
                f"(tolerance {SYM_RTOL:g} relative)"
            )
        sym = 0.5 * (c + np.swapaxes(c, 1, 2))
        lam, Q = np.linalg.eigh(sym)
        cov_type = "full"
    else:
        raise ValueError(
            f"{name} has shape {c.shape} but means implies ({K}, {d}, {d}) full, "
            f"({K}, {d}) diagonal or ({K},) isotropic"
        )
    # A covariance equal to zero (every entry exactly 0) is a point mass: eigenvalues 0, eigenvectors I.
    point = np.all(c.reshape(K, -1) == 0.0, axis=1)
    lam = np.where(point[:, None], 0.0, lam)
    if Q is not None and np.any(point):
        Q = np.where(point[:, None, None], np.eye(d), Q)
    lam_max = lam.max(axis=1)
    bad = np.nonzero(~point & ((lam.min(axis=1) <= EIG_RTOL * lam_max) | (lam.min(axis=1) <= 0)))[0]
    if bad.size:
        k = int(bad[0])
        raise ValueError(
            f"{name}[{k}] must be positive definite, got eigenvalues in "
            f"[{lam[k].min():.3g}, {lam[k].max():.3g}] (required: smallest > "
            f"{EIG_RTOL:g} x largest, or a covariance exactly 0 for a point mass)"
        )
    return np.ascontiguousarray(lam), (None if Q is None else np.ascontiguousarray(Q)), cov_type


def _log_normal_components(x, means, lam, Q, shift=None, scale=None):
    """log N(x; m_k, S_k) for all components, (N, K). Private kernel: checks nothing.

    S_k = Q_k diag(lam_k) Q_k^T; ``means`` (K, d). Processes x in chunks so that no (N, K, d)
    temporary exceeds ~2^22 elements."""
    N, d = x.shape
    K = means.shape[0]
    out = np.empty((N, K))
    logdet = np.log(lam).sum(axis=1)  # (K,)
    const = -0.5 * (d * np.log(2 * np.pi) + logdet)  # (K,)
    chunk = max(1, (1 << 22) // max(1, K * d))
    for s in range(0, N, chunk):
        diff = x[s : s + chunk, None, :] - means[None]  # (n, K, d)
        c = diff if Q is None else np.einsum("nkd,kde->nke", diff, Q)
        out[s : s + chunk] = const - 0.5 * np.einsum("nke,ke->nk", c * c, 1.0 / lam)
    return out


def _logsumexp(a, axis=-1):
    """log sum exp along ``axis``; rows that are all -inf give -inf (no NaN)."""
    m = np.max(a, axis=axis, keepdims=True)
    m_safe = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        s = np.log(np.sum(np.exp(a - m_safe), axis=axis, keepdims=True)) + m_safe
    return np.squeeze(s, axis=axis)


SUM_TOL = 1e-12
"""Responsibilities exp(ell_k - log Z) whose row sum is off 1 by more than this are renormalised."""


def _softmax_rows(ell, logZ):
    """exp(ell - logZ[:, None]) (n, K), the softmax of the rows of ``ell`` given their log-sum-exp,
    and the (n,) mask of the rows that were renormalised.

    Where |log Z| is large (points far from every component: |ell| ~ |x|^2 / s) the sum of
    exponentials, a number in [1, K], is partly or entirely lost to rounding when added to the
    largest logit, and exp(ell - log Z) is off by a common factor (at |x| = 1e20, K equal logits
    would each get 1). Those rows (sum off 1 by more than ``SUM_TOL``) are divided by their sum,
    which cancels the factor; the others are returned as computed."""
    r = np.exp(ell - logZ[:, None])
    s = r.sum(axis=1)
    lost = np.abs(s - 1.0) > SUM_TOL
    lost &= np.isfinite(s) & (s > 0)
    if np.any(lost):
        r[lost] /= s[lost, None]
    return r, lost


def _class_log_probs(ell, slices):
    """log sum_{k in c} e^ell_k - log sum_k e^ell_k for each slice c, (n, C), with the largest logits
    subtracted before the sums are added to them (``_softmax_rows``: the form that keeps the sums
    where |ell| is large)."""
    m = np.max(ell, axis=1)
    with np.errstate(divide="ignore"):
        logS = np.log(np.sum(np.exp(ell - m[:, None]), axis=1))
        out = np.empty((ell.shape[0], len(slices)))
        for c, sl in enumerate(slices):
            mc = np.max(ell[:, sl], axis=1)
            ok = np.isfinite(mc)
            mc_safe = np.where(ok, mc, 0.0)
            lc = np.log(np.sum(np.exp(ell[:, sl] - mc_safe[:, None]), axis=1))
            out[:, c] = np.where(ok, (mc_safe - m) + (lc - logS), -np.inf)
    return out


class GMM:
    """A Gaussian mixture sum_k pi_k N(mu_k, Sigma_k) in R^d.

    Parameters
    ----------
    weights : (K,) mixture weights, >= 0, summing to 1 within ``WEIGHT_TOL``.
    means : (K, d) component means.
    covs : (K, d, d) full, (K, d) diagonal or (K,) isotropic (variances) covariances, positive
        definite (smallest eigenvalue > ``EIG_RTOL`` x largest), or exactly zero: a point mass at
        mu_k. A law with point masses has no density, so ``log_prob``, ``score`` and
        ``responsibilities`` refuse it; its noisy laws p_t (``GMMPath``, t < 1) are smooth.
    """

    def __init__(self, weights, means, covs):
        m = as_float_array(means, "means")
        if m.ndim == 1:
            raise ValueError(
                f"means has shape {m.shape} but (K, d) is required "
                f"(use shape ({m.shape[0]}, 1) for 1-D data)"
            )
        if m.ndim != 2 or m.shape[0] == 0 or m.shape[1] == 0:
            raise ValueError(f"means has shape {m.shape} but (K, d) with K, d >= 1 is required")
        w = as_probabilities(weights, "weights")
        if w.shape[0] != m.shape[0]:
            raise ValueError(f"weights has shape {w.shape} but means implies ({m.shape[0]},)")
        self.weights = w
        with np.errstate(divide="ignore"):
            self.log_weights = np.log(w)
        self.means = np.ascontiguousarray(m)
        self.eigvals, self.eigvecs, self.cov_type = _eig_covs(covs, m.shape[0], m.shape[1])

    K = property(lambda self: self.means.shape[0], doc="number of components")
    d = property(lambda self: self.means.shape[1], doc="dimension")

    @property
    def covs(self) -> np.ndarray:
        """Full covariances (K, d, d), rebuilt from the eigendecomposition."""
        if self.eigvecs is None:
            return np.einsum("kd,de->kde", self.eigvals, np.eye(self.d))
        return np.einsum("kij,kj,klj->kil", self.eigvecs, self.eigvals, self.eigvecs)

    def __repr__(self) -> str:
        return f"GMM(K={self.K}, d={self.d}, cov_type={self.cov_type!r})"

    @property
    def point_mass(self) -> np.ndarray:
        """(K,) bool: component k is a point mass (covariance exactly 0)."""
        return np.all(self.eigvals == 0.0, axis=1)

    def _require_density(self, what: str) -> None:
        k = np.nonzero(self.point_mass)[0]
        if k.size:
            raise ValueError(
                f"{what} is undefined: component {int(k[0])} is a point mass (covariance "
                f"0), so the law has no density; the noisy laws p_t of GMMPath (t < 1) "
                f"have one"
            )

    def component_log_probs(self, x) -> np.ndarray:
        """log pi_k + log N(x; mu_k, Sigma_k), shape (N, K)."""
        self._require_density("component_log_probs")
        x = as_points(x, self.d, allow_empty=True)
        return self.log_weights + _log_normal_components(x, self.means, self.eigvals, self.eigvecs)

    def log_prob(self, x) -> np.ndarray:
        """log p(x), shape (N,), by log-sum-exp over components."""
        self._require_density("log_prob")
        return _logsumexp(self.component_log_probs(x))

    def responsibilities(self, x) -> np.ndarray:
        """Posterior component probabilities r_k(x) = p(k | x), shape (N, K); rows sum to 1."""
        self._require_density("responsibilities")
        lp = self.component_log_probs(x)
        return _softmax_rows(lp, _logsumexp(lp))[0]

    def score(self, x) -> np.ndarray:
        """grad_x log p(x) = sum_k r_k(x) (-Sigma_k^{-1} (x - mu_k)), shape (N, d)."""
        self._require_density("score")
        x = as_points(x, self.d, allow_empty=True)
        r = self.responsibilities(x)
        out = np.zeros_like(x)
        for k in range(self.K):
            diff = x - self.means[k]
            if self.eigvecs is None:
                g = -diff / self.eigvals[k]
            else:
                Q = self.eigvecs[k]
                g = -((diff @ Q) / self.eigvals[k]) @ Q.T
            out += r[:, k : k + 1] * g
        return out

    def sample_with_components(self, n: int, seed=None) -> tuple[np.ndarray, np.ndarray]:
        """n samples and the index of the component each came from."""
        n = as_positive_int(n, "n")
        from ._limits import require_memory

        d = self.d
        # the component indices, the choice's uniforms, (n, d) draws, scales, means and sums, and
        # the (n, d, d) gathered eigenvectors of full covariances
        require_memory(
            8.0 * n * (4 + 6 * d + (d * d if self.eigvecs is not None else 0)),
            f"drawing {n} samples in dimension {d}",
            "n",
        )
        rng = as_generator(seed)
        k = rng.choice(self.K, size=n, p=self.weights)
        e = rng.standard_normal((n, self.d)) * np.sqrt(self.eigvals[k])
        if self.eigvecs is not None:
            e = np.einsum("nij,nj->ni", self.eigvecs[k], e)
        return self.means[k] + e, k

    def sample(self, n: int, seed=None) -> np.ndarray:
        """n samples, shape (n, d)."""
        return self.sample_with_components(n, seed)[0]


class LabeledGMM:
    """A labeled data law: class y has probability p(y) and law p(x|y) = ``classes[y]`` (a GMM).

    The unconditional law is the class-weighted mixture of all components: ``marginal`` is that GMM,
    with weights p(y) pi_{y,k}; ``component_class[j]`` is the class of its component j and
    ``class_slices[y]`` selects the components of class y (consecutive, in class order).
    """

    def __init__(self, classes, class_probs=None):
        if isinstance(classes, GMM) or not hasattr(classes, "__len__"):
            raise TypeError(f"classes must be a list of GMM, got {_describe(classes)}")
        classes = list(classes)
        if not classes:
            raise ValueError("classes must hold at least one GMM, got an empty list")
        for i, g in enumerate(classes):
            if not isinstance(g, GMM):
                raise TypeError(f"classes[{i}] must be a GMM, got {_describe(g)}")
            if g.d != classes[0].d:
                raise ValueError(
                    f"classes[{i}] has dimension {g.d} but classes[0] has {classes[0].d}"
                )
        if class_probs is None:
            class_probs = np.full(len(classes), 1.0 / len(classes))
        p = as_probabilities(class_probs, "class_probs")
        if p.shape[0] != len(classes):
            raise ValueError(
                f"class_probs has shape {p.shape} but classes implies ({len(classes)},)"
            )
        self.classes = classes
        self.class_probs = p
        counts = [g.K for g in classes]
        stops = np.cumsum(counts)
        self.class_slices = [slice(int(s - c), int(s)) for s, c in zip(stops, counts)]
        self.component_class = np.repeat(np.arange(len(classes)), counts)
        weights = np.concatenate([p[i] * g.weights for i, g in enumerate(classes)])
        means = np.concatenate([g.means for g in classes])
        marginal = GMM.__new__(GMM)
        marginal.weights = weights
        with np.errstate(divide="ignore"):
            marginal.log_weights = np.log(weights)
        marginal.means = means
        marginal.eigvals = np.concatenate([g.eigvals for g in classes])
        if all(g.eigvecs is None for g in classes):
            marginal.eigvecs = None
            types = {g.cov_type for g in classes}
            marginal.cov_type = "isotropic" if types == {"isotropic"} else "diag"
        else:
            eye = np.eye(classes[0].d)
            marginal.eigvecs = np.concatenate(
                [
                    g.eigvecs if g.eigvecs is not None else np.broadcast_to(eye, (g.K,) + eye.shape)
                    for g in classes
                ]
            )
            marginal.cov_type = "full"
        self.marginal = marginal

    n_classes = property(lambda self: len(self.classes), doc="number of classes C")
    d = property(lambda self: self.classes[0].d, doc="dimension")

    def __repr__(self) -> str:
        return (
            f"LabeledGMM(n_classes={self.n_classes}, d={self.d}, "
            f"components={[g.K for g in self.classes]})"
        )

    def class_gmm(self, y: int) -> GMM:
        """The GMM p(x|y) of class y."""
        if isinstance(y, bool) or not isinstance(y, (int, np.integer)):
            raise TypeError(f"y must be an int class label, got {_describe(y)}")
        if not 0 <= y < self.n_classes:
            raise ValueError(f"y must be a class in 0..{self.n_classes - 1}, got {y!r}")
        return self.classes[int(y)]

    def sample(self, n: int, seed=None, y=None) -> tuple[np.ndarray, np.ndarray]:
        """n labeled samples (x (n, d), labels (n,)); y=None draws labels from p(y), an int fixes it."""
        n = as_positive_int(n, "n")
        rng = as_generator(seed)
        if y is None:
            x, k = self.marginal.sample_with_components(n, rng)
            return x, self.component_class[k].astype(np.int64)
        self.class_gmm(y)
        return self.classes[int(y)].sample(n, rng), np.full(n, int(y), dtype=np.int64)
