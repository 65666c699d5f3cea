"""Independent oracles for the exact-core tests.

Nothing here imports refcfg: every quantity is recomputed from textbook formulas (schedules), scipy
densities (mixtures and marginal paths), explicit Gaussian conditioning with ``np.linalg.solve``
(posterior means of z and eps, hence velocity, x0 and eps) and finite differences. The tests compare
refcfg against these, so a shared bug would have to be made twice, in two different formulations.

Conventions (notes arXiv 2506.02070): x_t = alpha_t z + beta_t eps,
t = 0 noise, t = 1 data.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

# --------------------------------------------------------------------------------------------
# Schedules: textbook formulas, written out independently of refcfg.schedules.
# Each returns (alpha, beta, dalpha, dbeta, beta*dbeta) at scalar t (floats).
# --------------------------------------------------------------------------------------------


def _vp_T(t, bmin, bmax):
    # flow_matching's VP: T(t) = 0.5 (1-t)^2 (beta_max - beta_min) + (1-t) beta_min
    return 0.5 * (1.0 - t) ** 2 * (bmax - bmin) + (1.0 - t) * bmin


def schedule_formula(name, t, **p):
    """(alpha, beta, dalpha, dbeta, beta_dbeta) of the named schedule at scalar t."""
    t = float(t)
    if name == "linear":
        return t, 1.0 - t, 1.0, -1.0, -(1.0 - t)
    if name == "cosine":
        # cos(pi t/2) written as sin(pi (1-t)/2) so that both endpoints are exact zeros in float64
        c, s = np.sin(np.pi * (1.0 - t) / 2), np.sin(np.pi * t / 2)
        return s, c, np.pi / 2 * c, -np.pi / 2 * s, -np.pi / 2 * s * c
    if name == "sqrt":
        b = np.sqrt(1.0 - t)
        db = -0.5 / b if b > 0 else -np.inf
        return t, b, 1.0, db, -0.5
    if name == "polynomial":
        n = p.get("n", 2)
        da = n * t ** (n - 1) if t > 0 or n >= 1 else np.inf
        return t**n, 1.0 - t**n, da, -da, -(1.0 - t**n) * da
    if name == "linear-vp":
        b = np.sqrt(1.0 - t * t)
        db = -t / b if b > 0 else -np.inf
        return t, b, 1.0, db, -t
    if name == "vp":
        bmin, bmax = p.get("beta_min", 0.1), p.get("beta_max", 20.0)
        T = _vp_T(t, bmin, bmax)
        dT = -(1.0 - t) * (bmax - bmin) - bmin
        a = np.exp(-0.5 * T)
        da = -0.5 * dT * a
        b = np.sqrt(1.0 - a * a)
        db = -a * da / b if b > 0 else -np.inf
        return a, b, da, db, -a * da
    raise KeyError(name)


SCHEDULE_CASES = [
    ("linear", {}),
    ("cosine", {}),
    ("sqrt", {}),
    ("polynomial", {}),
    ("polynomial", {"n": 3}),
    ("polynomial", {"n": 1.5}),
    ("linear-vp", {}),
    ("vp", {}),
    ("vp", {"beta_min": 0.5, "beta_max": 5.0}),
]


# --------------------------------------------------------------------------------------------
# Gaussian mixtures
# --------------------------------------------------------------------------------------------


def full_covs(covs, d):
    """(K, d, d) from full (K, d, d), diagonal (K, d) or isotropic (K,) covariances."""
    covs = np.asarray(covs, dtype=float)
    if covs.ndim == 3:
        return covs.copy()
    if covs.ndim == 2:
        return np.stack([np.diag(c) for c in covs])
    return np.stack([c * np.eye(d) for c in covs])


def random_spd(rng, d, lo=0.3, hi=2.0):
    """A random SPD matrix with eigenvalues in [lo, hi]."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    lam = rng.uniform(lo, hi, size=d)
    m = (q * lam) @ q.T
    return 0.5 * (m + m.T)


def random_gmm_params(rng, K, d, cov_type, scale=2.0):
    """weights (K,), means (K, d), covs in the requested layout."""
    w = rng.uniform(0.2, 1.0, size=K)
    w = w / w.sum()
    mu = scale * rng.standard_normal((K, d))
    if cov_type == "full":
        covs = np.stack([random_spd(rng, d) for _ in range(K)])
    elif cov_type == "diag":
        covs = rng.uniform(0.3, 2.0, size=(K, d))
    elif cov_type == "isotropic":
        covs = rng.uniform(0.3, 2.0, size=K)
    else:
        raise KeyError(cov_type)
    return w, mu, covs


def gmm_component_logpdfs(x, weights, means, covs):
    """(N, K) log pi_k + log N(x; mu_k, Sigma_k), by scipy."""
    x = np.atleast_2d(x)
    d = x.shape[1]
    C = full_covs(covs, d)
    out = np.empty((x.shape[0], len(weights)))
    for k in range(len(weights)):
        out[:, k] = np.log(weights[k]) + multivariate_normal(means[k], C[k]).logpdf(x).reshape(-1)
    return out


def gmm_log_prob(x, weights, means, covs):
    """log sum_k pi_k N(x; mu_k, Sigma_k), scipy densities + logsumexp."""
    return logsumexp(gmm_component_logpdfs(x, weights, means, covs), axis=1)


def gmm_pdf_direct(x, weights, means, covs):
    """sum_k pi_k N(x; ...) with scipy pdfs (no logs), for well-scaled x only."""
    x = np.atleast_2d(x)
    C = full_covs(covs, x.shape[1])
    return sum(
        weights[k] * multivariate_normal(means[k], C[k]).pdf(x).reshape(-1)
        for k in range(len(weights))
    )


# --------------------------------------------------------------------------------------------
# Marginal path of a GMM: explicit Gaussian conditioning, one component at a time.
# For component k: z ~ N(mu, Sigma), eps ~ N(0, I), x = alpha z + beta eps, so (z, eps, x) is jointly
# Gaussian with Cov(x) = S = alpha^2 Sigma + beta^2 I, Cov(z, x) = alpha Sigma, Cov(eps, x) = beta I.
# --------------------------------------------------------------------------------------------


class PathOracle:
    """Exact marginal-path quantities of a GMM at a fixed time, from Gaussian conditioning.

    sched: (alpha, beta, dalpha, dbeta, beta_dbeta) at that time (from schedule_formula).
    """

    def __init__(self, weights, means, covs, sched):
        self.w = np.asarray(weights, float)
        self.mu = np.asarray(means, float)
        self.K, self.d = self.mu.shape
        self.Sig = full_covs(covs, self.d)
        self.alpha, self.beta, self.dalpha, self.dbeta, self.bdb = (float(v) for v in sched)
        a, b = self.alpha, self.beta
        self.S = a * a * self.Sig + b * b * np.eye(self.d)
        self.m = a * self.mu  # component means of p_t

    def comp_logpdf(self, x):
        """(N, K): log pi_k + log N(x; alpha mu_k, S_k), scipy (the last result is cached)."""
        x = np.atleast_2d(x)
        cached = getattr(self, "_cache", None)
        if cached is not None and cached[0].shape == x.shape and np.array_equal(cached[0], x):
            return cached[1]
        out = self._comp_logpdf(x)
        self._cache = (x.copy(), out)
        return out

    def _comp_logpdf(self, x):
        out = np.empty((x.shape[0], self.K))
        for k in range(self.K):
            out[:, k] = np.log(self.w[k]) + multivariate_normal(
                self.m[k], self.S[k], allow_singular=False
            ).logpdf(x).reshape(-1)
        return out

    def log_prob(self, x):
        return logsumexp(self.comp_logpdf(x), axis=1)

    def resp(self, x):
        lp = self.comp_logpdf(x)
        r = np.exp(lp - logsumexp(lp, axis=1, keepdims=True))
        # renormalise: at |x| ~ 1e6 each scipy log-density (~ -5e11) carries an absolute rounding
        # error ~ 5e-5, so the raw exponentials may sum to 1 +- 1e-4
        return r / r.sum(axis=1, keepdims=True)

    def _solve(self, k, x):
        # S_k^{-1} (x - alpha mu_k), (N, d), by np.linalg.solve
        return np.linalg.solve(self.S[k], (np.atleast_2d(x) - self.m[k]).T).T

    def score(self, x):
        r = self.resp(x)
        return sum(r[:, [k]] * -self._solve(k, x) for k in range(self.K))

    def post_mean_z(self, x):
        """E[z | x_t = x] = sum_k r_k (mu_k + alpha Sigma_k S_k^{-1}(x - alpha mu_k))."""
        r = self.resp(x)
        return sum(
            r[:, [k]] * (self.mu[k] + self.alpha * self._solve(k, x) @ self.Sig[k].T)
            for k in range(self.K)
        )

    def post_mean_eps(self, x):
        """E[eps | x_t = x] = sum_k r_k beta S_k^{-1}(x - alpha mu_k)."""
        r = self.resp(x)
        return sum(r[:, [k]] * self.beta * self._solve(k, x) for k in range(self.K))

    def velocity(self, x):
        """u = dalpha E[z|x] + dbeta E[eps|x]; the dbeta*beta product is taken from beta_dbeta so
        that it is finite at t = 1 for schedules with dbeta_1 = -inf."""
        r = self.resp(x)
        out = 0.0
        for k in range(self.K):
            v = self._solve(k, x)
            ez = self.mu[k] + self.alpha * v @ self.Sig[k].T
            out = out + r[:, [k]] * (self.dalpha * ez + self.bdb * v)
        return out

    def posterior_components(self, x_row):
        """Exact posterior p(z | x_t = x) for one point x: mixture with weights r_k(x), means
        mu_k + alpha Sigma_k S_k^{-1}(x - alpha mu_k), covariances Sigma_k - alpha^2 Sigma_k S_k^{-1}
        Sigma_k (Schur complement)."""
        x_row = np.asarray(x_row, float).reshape(1, -1)
        r = self.resp(x_row)[0]
        means, covs = [], []
        for k in range(self.K):
            G = np.linalg.solve(self.S[k], self.Sig[k]).T  # Sigma S^{-1} (S, Sigma symmetric)
            means.append(self.mu[k] + self.alpha * G @ (x_row[0] - self.m[k]))
            c = self.Sig[k] - self.alpha**2 * G @ self.Sig[k]
            covs.append(0.5 * (c + c.T))
        return r, np.array(means), np.array(covs)


# --------------------------------------------------------------------------------------------
# Finite differences (float64). 5-point central stencil: truncation O(h^4), round-off O(eps/h).
# --------------------------------------------------------------------------------------------


def fd_derivative(f, t, h=1e-4):
    """df/dt at scalar t by the 5-point stencil (f returns an array or float)."""
    return (-f(t + 2 * h) + 8 * f(t + h) - 8 * f(t - h) + f(t - 2 * h)) / (12 * h)


def fd_gradient(f, x, h=1e-4):
    """Row-wise gradient of a function f: (N, d) -> (N,), 5-point stencil, (N, d)."""
    x = np.asarray(x, float)
    g = np.empty_like(x)
    for j in range(x.shape[1]):
        e = np.zeros(x.shape[1])
        e[j] = h
        g[:, j] = (-f(x + 2 * e) + 8 * f(x + e) - 8 * f(x - e) + f(x - 2 * e)) / (12 * h)
    return g


def fd_jacobian(f, x, h=1e-4):
    """Row-wise Jacobian J[n, i, j] = d f_i / d x_j of f: (N, d) -> (N, d), 5-point stencil."""
    x = np.asarray(x, float)
    N, d = x.shape
    J = np.empty((N, d, d))
    for j in range(d):
        e = np.zeros(d)
        e[j] = h
        J[:, :, j] = (-f(x + 2 * e) + 8 * f(x + e) - 8 * f(x - e) + f(x - 2 * e)) / (12 * h)
    return J


def rel_err(a, b, floor=1e-300):
    """max |a - b| / max(|b|) over all entries (a single relative error for a whole array)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), floor))


def rowwise_rel_err(a, b, floor=1e-12):
    """max over rows of ||a_n - b_n|| / max(||b_n||, floor)."""
    a, b = np.atleast_2d(a), np.atleast_2d(b)
    num = np.linalg.norm(a - b, axis=-1)
    den = np.maximum(np.linalg.norm(b, axis=-1), floor)
    return float(np.max(num / den))


def labeled_eps(classes, class_probs, x, t, y, schedule="linear"):
    """The exact eps prediction of a labeled mixture by explicit Gaussian conditioning, for a user
    module's field fn(x, t, y) in the ``refcfg check`` tests: ``classes`` is a list of (weights,
    means, covs) per class, ``y`` an int array with -1 for the null label (the marginal mixture),
    ``t`` an array whose first entry is the time."""
    marginal = (
        np.concatenate([p * c[0] for p, c in zip(class_probs, classes)]),
        np.concatenate([c[1] for c in classes]),
        np.concatenate([c[2] for c in classes]),
    )
    out = np.empty_like(x)
    for lab in np.unique(y):
        i = y == lab
        params = marginal if lab == -1 else classes[int(lab)]
        out[i] = PathOracle(*params, schedule_formula(schedule, float(t[0]))).post_mean_eps(x[i])
    return out
