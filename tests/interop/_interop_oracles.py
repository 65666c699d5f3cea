"""Closed forms written independently of refcfg.interop, in the other libraries' conventions."""

import numpy as np
from scipy.stats import multivariate_normal


def covariances(g):
    """(K, d, d) covariances of a refcfg GMM from its eigendecomposition."""
    lam = (
        np.broadcast_to(g.eigvals, (len(g.weights), g.means.shape[1]))
        if g.cov_type != "full"
        else g.eigvals
    )
    if g.cov_type == "full":
        return np.einsum("kij,kj,klj->kil", g.eigvecs, lam, g.eigvecs)
    return np.array([np.diag(v) for v in lam])


def posterior(mixture, xd, a, s, y):
    """E[x0 | x'] and E[eps | x'] for x' = a x0 + s eps (s > 0), x0 ~ the class-y GMM:
    r_k prop. to pi_k N(x'; a mu_k, S_k) with S_k = a^2 Sigma_k + s^2 I,
    E[x0 | x', k] = mu_k + a Sigma_k S_k^{-1} (x' - a mu_k),
    E[eps | x'] = (x' - a E[x0 | x']) / s."""
    g = mixture.class_gmm(y)
    covs = covariances(g)
    d = g.means.shape[1]
    logs, means = [], []
    for k in range(len(g.weights)):
        C = a * a * covs[k] + s * s * np.eye(d)
        logs.append(np.log(g.weights[k]) + multivariate_normal(a * g.means[k], C).logpdf(xd))
        means.append(g.means[k] + (xd - a * g.means[k]) @ np.linalg.solve(C, a * covs[k]).T)
    logs = np.array(logs)
    r = np.exp(logs - logs.max(axis=0))
    r /= r.sum(axis=0)
    x0 = sum(r[k][:, None] * means[k] for k in range(len(means)))
    return x0, (xd - a * x0) / s
