"""Real labeled data for the exact core: loading, scaling, validation and per-class mixture fits.

- ``load_digits()``: the 8 x 8 handwritten digits that scikit-learn ships with its package (1797
  images, 10 classes, d = 64; no download), pixel values 0..16 scaled to [-1, 1] by v / 8 - 1.
- ``labeled_points(X, labels)``: the one validator of a labeled point cloud.
- ``fit_class_mixtures(X, labels, ...)``: one scikit-learn ``GaussianMixture`` per class.

scikit-learn is an optional dependency, the "data" extra (``pip install refcfg[data]``); only the
functions that need it import it, and they raise ImportError naming the extra when it is missing.
``refcfg.problems.from_points`` and ``refcfg.problems.fit`` build LabeledGMMs from these.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._validation import _describe, as_choice, as_float_array, as_int, as_real

__all__ = [
    "load_digits",
    "labeled_points",
    "fit_class_mixtures",
    "ClassFit",
    "DIGITS_RANGE",
    "COVARIANCE_TYPES",
    "require_sklearn",
]

DIGITS_RANGE = (-1.0, 1.0)
"""The range the digits' pixel values 0..16 are mapped to (affinely: v / 8 - 1)."""

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
"""scikit-learn's covariance types; "spherical" becomes refcfg's isotropic, "tied" one full
covariance repeated for every component of a class."""


def require_sklearn(what: str):
    """Import scikit-learn or raise ImportError naming the optional extra that provides it."""
    try:
        import sklearn
    except ImportError as exc:
        raise ImportError(
            f'{what} needs scikit-learn, the optional "data" extra: '
            f"pip install 'refcfg[data]' (or pip install scikit-learn)"
        ) from exc
    return sklearn


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The handwritten digits bundled with scikit-learn: X (1797, 64) float64 in ``DIGITS_RANGE``
    (pixel v in 0..16 -> v / 8 - 1; row-major 8 x 8 images) and labels (1797,) int64 in 0..9."""
    require_sklearn("load_digits")
    from sklearn.datasets import load_digits as _load

    data = _load()
    X = np.asarray(data.data, dtype=np.float64) / 8.0 - 1.0
    return np.ascontiguousarray(X), np.asarray(data.target, dtype=np.int64)


def labeled_points(X, labels, name_x: str = "X", name_labels: str = "labels"):
    """Validate a labeled point cloud: X a finite (N, d) array with N, d >= 1, labels an (N,) int
    array with values 0..C-1 and every class present. Returns (X float64, labels int64, C)."""
    X = as_float_array(X, name_x)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"{name_x} has shape {X.shape} but (N, d) with N, d >= 1 is required")
    raw = np.asarray(labels)
    if raw.dtype.kind not in "iu":
        raise TypeError(f"{name_labels} must be an integer array, got {_describe(labels)}")
    if raw.shape != (X.shape[0],):
        raise ValueError(
            f"{name_labels} has shape {raw.shape} but {name_x} implies ({X.shape[0]},)"
        )
    if raw.min() < 0:
        raise ValueError(f"{name_labels} must be class indices >= 0, got {int(raw.min())}")
    lab = raw.astype(np.int64)
    C = int(lab.max()) + 1
    missing = np.nonzero(np.bincount(lab, minlength=C) == 0)[0]
    if missing.size:
        raise ValueError(
            f"{name_labels} must use every class 0..{C - 1} (classes are indexed by "
            f"label); class {int(missing[0])} has no point"
        )
    return np.ascontiguousarray(X), lab, C


class ClassFit(NamedTuple):
    """One class's fitted mixture (weights (K,), means (K, d), covs in refcfg's shapes) and its
    mean log-likelihood per point on the class's data (nats), as scikit-learn reports it."""

    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray
    log_likelihood: float
    n_points: int
    converged: bool


def fit_class_mixtures(
    X,
    labels,
    components: int = 10,
    covariance_type: str = "full",
    reg_covar: float = 1e-3,
    seed: int = 0,
    n_init: int = 1,
) -> list[ClassFit]:
    """Fit scikit-learn's ``GaussianMixture`` to each class (``random_state=seed``, so the fit is
    reproducible). A class with fewer points than ``components`` gets one component per point.
    ``reg_covar`` is added to every covariance's diagonal, keeping them positive definite."""
    X, lab, C = labeled_points(X, labels)
    components = as_int(components, "components", lo=1)
    covariance_type = as_choice(covariance_type, "covariance_type", COVARIANCE_TYPES)
    reg_covar = as_real(reg_covar, "reg_covar", gt=0.0)
    seed = as_int(seed, "seed", lo=0)
    n_init = as_int(n_init, "n_init", lo=1)
    require_sklearn("fitting per-class Gaussian mixtures")
    from sklearn.mixture import GaussianMixture

    fits = []
    d = X.shape[1]
    for c in range(C):
        Xc = X[lab == c]
        k = min(components, Xc.shape[0])
        gm = GaussianMixture(
            n_components=k,
            covariance_type=covariance_type,
            reg_covar=reg_covar,
            random_state=seed,
            n_init=n_init,
            max_iter=500,
        )
        gm.fit(Xc)
        covs = np.asarray(gm.covariances_, dtype=np.float64)
        if covariance_type == "tied":
            covs = np.broadcast_to(covs, (k, d, d)).copy()
        fits.append(
            ClassFit(
                np.asarray(gm.weights_, dtype=np.float64),
                np.asarray(gm.means_, dtype=np.float64),
                covs,
                float(gm.score(Xc)),
                int(Xc.shape[0]),
                bool(gm.converged_),
            )
        )
    return fits
