"""Sample metrics: how far a set of samples is from a reference law.

Every function here takes samples ``x`` of shape (N, d) (a 1-D array is read as (N, 1)) and either a
second sample or an exact law. Exact laws are refcfg mixtures, used only through their public methods
(duck typing, so any object with the same methods works):

* a component mixture (``GMM``-like): ``responsibilities(x) -> (N, K)``, ``log_prob(x) -> (N,)``;
* a labelled mixture (``LabeledGMM``-like): ``classes`` (list of GMM-like), ``class_probs`` (C,),
  ``marginal`` (GMM-like); a ``GMMPath`` is unwrapped through its ``mixture`` attribute.

The Bayes classifier at t = 1 is Bayes' rule, eq. 60 of the notes (arXiv 2506.02070) at the data end:
log p(y|x) = log p(y) + log p(x|y) - log p(x).

Metrics on a grid (total variation, KL) compare cell probabilities: the histogram of the samples
against the cell masses of a density (midpoint rule, normalised over the grid). With N samples and
M cells a histogram of the exact law itself has E[TV] of order sqrt(M / N) / 2; compare against
:func:`tv_noise_floor`, never against zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

__all__ = [
    "energy_distance",
    "ks_per_dim",
    "mode_mass",
    "nearest_mode_mass",
    "class_log_posteriors",
    "class_confidence",
    "ClassConfidence",
    "mean_log_likelihood",
    "grid_centers",
    "histogram_probs",
    "density_probs",
    "total_variation",
    "kl_divergence",
    "tv_noise_floor",
    "grid_mode_mass",
]


# --------------------------------------------------------------------------------------------
# input handling
# --------------------------------------------------------------------------------------------


def _samples(x, name="x", d=None):
    """(N, d) float64 view of samples; 1-D arrays are (N, 1). Finite values required."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of numbers, got {type(x).__name__}") from exc
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} has shape {a.shape}; required (N, d) or (N,)")
    if a.shape[0] == 0:
        raise ValueError(f"{name} has no samples (shape {a.shape}); required N >= 1")
    if d is not None and a.shape[1] != d:
        raise ValueError(f"{name} has dimension {a.shape[1]}; required {d}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite values; required finite samples")
    return a


def _labelled(mixture, name="mixture"):
    """The LabeledGMM inside a LabeledGMM or a GMMPath."""
    m = mixture
    if not hasattr(m, "classes") and hasattr(m, "mixture"):
        m = m.mixture
    if not (hasattr(m, "classes") and hasattr(m, "class_probs")):
        raise TypeError(f"{name} must be a LabeledGMM (or a GMMPath), got {type(mixture).__name__}")
    return m


def _components(mixture, name="mixture"):
    """A GMM-like object with responsibilities(): a GMM, the marginal of a LabeledGMM, or the
    mixture of a GMMPath."""
    m = mixture
    if hasattr(m, "mixture") and not hasattr(m, "classes"):
        m = m.mixture
    if hasattr(m, "classes") and hasattr(m, "marginal"):
        m = m.marginal
    if not hasattr(m, "responsibilities"):
        raise TypeError(
            f"{name} must be a GMM, LabeledGMM or GMMPath, got {type(mixture).__name__}"
        )
    return m


def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (int, np.integer)):
        return np.random.default_rng(seed)
    raise TypeError(f"seed must be None, an int or a numpy Generator, got {type(seed).__name__}")


# --------------------------------------------------------------------------------------------
# two-sample metrics
# --------------------------------------------------------------------------------------------


def _pair_dist_sum(a, b, block):
    """sum_{i,j} ||a_i - b_j|| computed in blocks of rows (memory O(block * len(b)))."""
    total = 0.0
    bb = np.einsum("ij,ij->i", b, b)
    for s in range(0, a.shape[0], block):
        ab = a[s : s + block]
        aa = np.einsum("ij,ij->i", ab, ab)
        d2 = aa[:, None] + bb[None, :] - 2.0 * ab @ b.T
        np.maximum(d2, 0.0, out=d2)
        total += float(np.sqrt(d2).sum())
    return total


def energy_distance(x, y, *, unbiased=False, max_n=5000, seed=0, block=1024):
    """Squared energy distance D^2 = 2 E|X - Y| - E|X - X'| - E|Y - Y'| between two samples.

    Szekely-Rizzo energy distance (Euclidean norm). ``unbiased=False`` is the V-statistic (means over
    all pairs, diagonal included; this is the square of ``scipy.stats.energy_distance`` in 1-D);
    ``unbiased=True`` the U-statistic (within-sample means over i != j; may be slightly negative).
    D^2 >= 0 with equality iff the laws agree. Samples larger than ``max_n`` are subsampled without
    replacement with ``seed`` (None: use every sample); pairwise sums are computed in row blocks of
    ``block`` so memory is O(block * n).
    """
    x = _samples(x, "x")
    y = _samples(y, "y", d=x.shape[1])
    if not isinstance(unbiased, (bool, np.bool_)):
        raise TypeError(f"unbiased must be a bool, got {type(unbiased).__name__}")
    if int(block) < 1:
        raise ValueError(f"block must be >= 1, got {block}")
    rng = _rng(seed)
    if max_n is not None:
        if int(max_n) < 2:
            raise ValueError(f"max_n must be >= 2 or None, got {max_n}")
        if x.shape[0] > max_n:
            x = x[rng.choice(x.shape[0], int(max_n), replace=False)]
        if y.shape[0] > max_n:
            y = y[rng.choice(y.shape[0], int(max_n), replace=False)]
    n, m = x.shape[0], y.shape[0]
    if unbiased and (n < 2 or m < 2):
        raise ValueError(f"the U-statistic needs >= 2 samples in each set, got {n} and {m}")
    exy = _pair_dist_sum(x, y, int(block)) / (n * m)
    sxx = _pair_dist_sum(x, x, int(block))
    syy = _pair_dist_sum(y, y, int(block))
    if unbiased:
        exx, eyy = sxx / (n * (n - 1)), syy / (m * (m - 1))
    else:
        exx, eyy = sxx / (n * n), syy / (m * m)
    return 2.0 * exy - exx - eyy


def ks_per_dim(x, ref):
    """Kolmogorov-Smirnov statistic and p-value per coordinate (scipy.stats).

    ``ref`` is either a second sample (M, d) (two-sample test, ``scipy.stats.ks_2samp``) or a list of
    d callables, each the CDF of one coordinate's exact marginal (one-sample ``scipy.stats.kstest``).
    Returns (statistics (d,), p-values (d,)).
    """
    from scipy import stats  # here: importing scipy.stats takes ~1 s, most of `import refcfg`

    x = _samples(x, "x")
    d = x.shape[1]
    stat, pval = np.empty(d), np.empty(d)
    if isinstance(ref, (list, tuple)) and all(callable(c) for c in ref):
        if len(ref) != d:
            raise ValueError(f"ref has {len(ref)} CDFs; required one per dimension ({d})")
        for j in range(d):
            r = stats.kstest(x[:, j], ref[j])
            stat[j], pval[j] = r.statistic, r.pvalue
        return stat, pval
    y = _samples(ref, "ref", d=d)
    for j in range(d):
        r = stats.ks_2samp(x[:, j], y[:, j])
        stat[j], pval[j] = r.statistic, r.pvalue
    return stat, pval


# --------------------------------------------------------------------------------------------
# mode and class metrics against an exact mixture
# --------------------------------------------------------------------------------------------


def mode_mass(x, mixture, *, assign="hard"):
    """Fraction of samples per mixture component, by the exact responsibilities at t = 1.

    ``assign="hard"``: each sample goes to argmax_k r_k(x) (r_k = pi_k N(x; mu_k, Sigma_k) / p(x),
    the posterior over components at t = 1); ``"soft"``: the mean responsibility, i.e. the posterior mass per
    component. ``mixture`` is a GMM, LabeledGMM (its marginal components) or GMMPath. Returns (K,)
    summing to 1. For the law itself, the soft mass equals the weights pi_k exactly.
    """
    x = np.asarray(x, dtype=np.float64)
    comp = _components(mixture)
    x = _samples(x, "x", d=getattr(comp, "d", None))
    r = np.asarray(comp.responsibilities(x), dtype=np.float64)
    if assign == "soft":
        return r.mean(axis=0)
    if assign == "hard":
        return np.bincount(np.argmax(r, axis=1), minlength=r.shape[1]) / x.shape[0]
    raise ValueError(f"assign must be 'hard' or 'soft', got {assign!r}")


def nearest_mode_mass(x, modes):
    """Fraction of samples whose nearest point (Euclidean) among ``modes`` (K, d) is mode k; (K,)."""
    x = _samples(x, "x")
    modes = _samples(modes, "modes", d=x.shape[1])
    d2 = ((x[:, None, :] - modes[None, :, :]) ** 2).sum(-1)
    return np.bincount(np.argmin(d2, axis=1), minlength=modes.shape[0]) / x.shape[0]


def class_log_posteriors(x, mixture):
    """(N, C) log p(y | x) of the exact Bayes classifier at t = 1 (notes eq. 60):
    log p(y) + log p(x|y) - log p(x), normalised by log-sum-exp over classes."""
    lab = _labelled(mixture)
    x = _samples(x, "x", d=getattr(lab, "d", None))
    lp = np.stack(
        [
            np.log(float(p)) + np.asarray(g.log_prob(x), dtype=np.float64)
            for p, g in zip(lab.class_probs, lab.classes)
        ],
        axis=1,
    )
    return lp - logsumexp(lp, axis=1, keepdims=True)


@dataclass(frozen=True)
class ClassConfidence:
    """Mean Bayes posterior of the target class and the Bayes classifier's accuracy on it."""

    mean_prob: float
    accuracy: float
    class_fraction: (
        np.ndarray
    )  # (C,) fraction of samples the Bayes classifier assigns to each class


def class_confidence(x, mixture, y):
    """Class confidence of samples meant to be of class ``y`` under the exact Bayes classifier at t=1.

    mean_prob = mean_n p(y | x_n); accuracy = fraction with argmax_c p(c | x_n) = y;
    class_fraction = fraction assigned to each class. Guidance with w > 1 is expected to raise both.
    """
    lab = _labelled(mixture)
    C = len(lab.classes)
    if isinstance(y, bool) or not isinstance(y, (int, np.integer)) or not 0 <= int(y) < C:
        raise ValueError(f"y must be a class index in [0, {C}), got {y!r}")
    lp = class_log_posteriors(x, lab)
    pred = np.argmax(lp, axis=1)
    return ClassConfidence(
        mean_prob=float(np.exp(lp[:, int(y)]).mean()),
        accuracy=float((pred == int(y)).mean()),
        class_fraction=np.bincount(pred, minlength=C) / lp.shape[0],
    )


def mean_log_likelihood(x, mixture, y=None):
    """(mean, standard error) of log p(x | y) over the samples (y None: the marginal log p(x))."""
    if y is None or (isinstance(y, (int, np.integer)) and int(y) == -1):
        g = getattr(mixture, "mixture", mixture)
        g = getattr(g, "marginal", g)
    else:
        lab = _labelled(mixture)
        C = len(lab.classes)
        if isinstance(y, bool) or not isinstance(y, (int, np.integer)) or not 0 <= int(y) < C:
            raise ValueError(f"y must be None or a class index in [0, {C}), got {y!r}")
        g = lab.classes[int(y)]
    x = _samples(x, "x", d=getattr(g, "d", None))
    ll = np.asarray(g.log_prob(x), dtype=np.float64)
    se = float(ll.std(ddof=1) / np.sqrt(ll.size)) if ll.size > 1 else float("nan")
    return float(ll.mean()), se


# --------------------------------------------------------------------------------------------
# grid metrics (1-D and 2-D, any d in principle)
# --------------------------------------------------------------------------------------------


def _edges(edges):
    if isinstance(edges, np.ndarray) and edges.ndim == 1:
        edges = [edges]
    out = []
    for j, e in enumerate(edges):
        e = np.asarray(e, dtype=np.float64)
        if e.ndim != 1 or e.size < 2 or not np.all(np.diff(e) > 0):
            raise ValueError(f"edges[{j}] must be a strictly increasing 1-D array of >= 2 values")
        out.append(e)
    return out


def grid_centers(edges):
    """Cell centres (M, d) and cell volumes (M,) of a tensor grid given per-dimension edges
    (a 1-D array for d = 1, or a list of d arrays). Cells are ordered as ``np.histogramdd``'s
    output flattened in C order."""
    edges = _edges(edges)
    mids = [0.5 * (e[1:] + e[:-1]) for e in edges]
    widths = [np.diff(e) for e in edges]
    grids = np.meshgrid(*mids, indexing="ij")
    vols = np.ones_like(grids[0])
    for wv in np.meshgrid(*widths, indexing="ij"):
        vols = vols * wv
    return np.stack([g.ravel() for g in grids], axis=1), vols.ravel()


def histogram_probs(x, edges):
    """Cell probabilities (M,) of the samples on the grid; samples outside count toward nothing,
    so the result sums to the fraction of samples inside the grid (not renormalised)."""
    edges = _edges(edges)
    x = _samples(x, "x", d=len(edges))
    h, _ = np.histogramdd(x, bins=edges)
    return h.ravel() / x.shape[0]


def density_probs(log_density, edges):
    """Cell masses (M,) of a density, midpoint rule, normalised to sum to 1 over the grid.

    ``log_density`` maps (M, d) -> (M,) and may be unnormalised (e.g. the tilted law
    w log p(x|y) + (1 - w) log p(x)); the normaliser is computed in log space.
    """
    if not callable(log_density):
        raise TypeError(f"log_density must be callable, got {type(log_density).__name__}")
    c, v = grid_centers(edges)
    lp = np.asarray(log_density(c), dtype=np.float64).reshape(-1) + np.log(v)
    if lp.shape[0] != c.shape[0]:
        raise ValueError(f"log_density returned {lp.shape[0]} values for {c.shape[0]} points")
    return np.exp(lp - logsumexp(lp))


def _probs(p, name):
    p = np.asarray(p, dtype=np.float64).ravel()
    if np.any(p < 0) or not np.all(np.isfinite(p)):
        raise ValueError(f"{name} must be finite and non-negative")
    return p


def total_variation(p, q):
    """TV = 1/2 sum_i |p_i - q_i| between two vectors of cell probabilities."""
    p, q = _probs(p, "p"), _probs(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"p has {p.size} cells but q has {q.size}; required equal")
    return 0.5 * float(np.abs(p - q).sum())


def kl_divergence(p, q, *, floor=1e-300):
    """KL(p || q) = sum_i p_i log(p_i / q_i) over cells with p_i > 0 (q floored at ``floor``).
    Typically p = histogram of samples, q = the exact cell masses."""
    p, q = _probs(p, "p"), _probs(q, "q")
    if p.shape != q.shape:
        raise ValueError(f"p has {p.size} cells but q has {q.size}; required equal")
    m = p > 0
    return float(np.sum(p[m] * (np.log(p[m]) - np.log(np.maximum(q[m], floor)))))


def tv_noise_floor(q, n, *, reps=20, seed=0):
    """Mean and standard deviation of TV(histogram of n exact draws, q) over ``reps`` multinomial
    draws: the TV a perfect sampler would show with n samples on this grid."""
    q = _probs(q, "q")
    q = q / q.sum()
    rng = _rng(seed)
    tvs = [0.5 * np.abs(rng.multinomial(int(n), q) / n - q).sum() for _ in range(int(reps))]
    return float(np.mean(tvs)), float(np.std(tvs))


def grid_mode_mass(probs, edges, mixture, *, assign="hard"):
    """Mass per component (K,) of a law given by cell probabilities on a grid: the cell centres
    are assigned to components as in :func:`mode_mass` and the masses summed. Use it to compare
    :func:`mode_mass` of samples with the mode masses of an exact density (e.g. the tilted law)."""
    p = _probs(probs, "probs")
    c, _ = grid_centers(edges)
    if p.size != c.shape[0]:
        raise ValueError(f"probs has {p.size} cells but the grid has {c.shape[0]}")
    r = np.asarray(_components(mixture).responsibilities(c), dtype=np.float64)
    if assign == "soft":
        return (p[:, None] * r).sum(axis=0)
    if assign == "hard":
        return np.bincount(np.argmax(r, axis=1), weights=p, minlength=r.shape[1])
    raise ValueError(f"assign must be 'hard' or 'soft', got {assign!r}")
