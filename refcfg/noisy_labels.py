"""Noisy prompt pairs: a labelled mixture whose labels are corrupted by a confusion matrix.

A training pair (x, y~) is drawn as y ~ p(y), x ~ p(x|y), then the label is replaced by y~ with
probability C[y, y~] (C row-stochastic: row y is the law of the noisy label given the clean one).
A model trained on such pairs can at best learn the fields of the *noisy* conditional laws

    p(y~)     = sum_y p(y) C[y, y~]
    p(x | y~) = sum_y C[y, y~] p(y) p(x | y) / p(y~),

and each p(x | y~) is again a Gaussian mixture: the components of every clean class y, weighted by
C[y, y~] p(y) pi_{y,k} / p(y~). So ``relabel(mixture, C)`` returns a ``LabeledGMM`` whose every field
(``GMMPath``), sampler and kernel is exact; its marginal p(x) is the clean one (the labels move, the
images do not). The lecture notes name noisy text-image pairs as one reason to reinforce y by guidance
(section on guidance, before eq. 59); ``refcfg reproduce noisy-labels`` measures how far guidance goes.
"""

from __future__ import annotations

import json

import numpy as np

from ._validation import _describe, as_float_array, as_int, as_real
from .mixture import GMM, WEIGHT_TOL, LabeledGMM

__all__ = [
    "symmetric_confusion",
    "check_confusion",
    "relabel",
    "noisy_class_probs",
    "problem_toml",
]


def symmetric_confusion(n_classes: int, rho: float) -> np.ndarray:
    """The symmetric confusion matrix of rate rho: a label is kept with probability 1 - rho and
    replaced by each other class with probability rho / (C - 1). Shape (C, C), rows sum to 1.

    rho in [0, 1]; with C = 1 only rho = 0 is allowed (there is no other class to move to)."""
    C = as_int(n_classes, "n_classes", lo=1)
    rho = as_real(rho, "rho", lo=0.0, hi=1.0)
    if C == 1:
        if rho != 0.0:
            raise ValueError(
                f"rho must be 0 for a single class (no other class to relabel to), got {rho!r}"
            )
        return np.ones((1, 1))
    M = np.full((C, C), rho / (C - 1))
    np.fill_diagonal(M, 1.0 - rho)
    return M


def check_confusion(confusion, n_classes: int) -> np.ndarray:
    """``confusion`` as a (C, C) float64 row-stochastic matrix (entries >= 0, each row summing to 1
    within ``WEIGHT_TOL``; rows renormalised). ValueError/TypeError naming ``confusion`` otherwise."""
    M = as_float_array(confusion, "confusion")
    if M.shape != (n_classes, n_classes):
        raise ValueError(
            f"confusion has shape {M.shape} but the mixture's {n_classes} classes "
            f"require ({n_classes}, {n_classes})"
        )
    if np.any(M < 0):
        i, j = np.argwhere(M < 0)[0]
        raise ValueError(f"confusion must be >= 0, got confusion[{i}, {j}] = {M[i, j]!r}")
    sums = M.sum(axis=1)
    bad = np.nonzero(np.abs(sums - 1.0) > WEIGHT_TOL)[0]
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"confusion must be row-stochastic (row y is the law of the noisy label "
            f"given y), got row {i} summing to {float(sums[i])!r}"
        )
    return M / sums[:, None]


def noisy_class_probs(mixture: LabeledGMM, confusion) -> np.ndarray:
    """p(y~) = sum_y p(y) C[y, y~], shape (C,)."""
    if not isinstance(mixture, LabeledGMM):
        raise TypeError(f"mixture must be a LabeledGMM, got {_describe(mixture)}")
    M = check_confusion(confusion, mixture.n_classes)
    return mixture.class_probs @ M


def relabel(mixture: LabeledGMM, confusion) -> LabeledGMM:
    """The labelled law of the noisy pairs (module docstring): class y~ is the mixture
    sum_y C[y, y~] p(y) p(x|y) / p(y~), with class probabilities p(y~).

    Components whose weight C[y, y~] p(y) pi_{y,k} is exactly 0 are left out (so rho = 0 gives back
    the clean classes component for component). A noisy class that no clean class reaches
    (p(y~) = 0) is refused: it has no conditional law."""
    if not isinstance(mixture, LabeledGMM):
        raise TypeError(f"mixture must be a LabeledGMM, got {_describe(mixture)}")
    M = check_confusion(confusion, mixture.n_classes)
    p_noisy = mixture.class_probs @ M  # (C,)
    classes = []
    for yt in range(mixture.n_classes):
        if p_noisy[yt] <= 0.0:
            raise ValueError(
                f"confusion: noisy class {yt} has probability 0 (no clean class is "
                f"relabelled to it), so p(x | y~ = {yt}) is undefined"
            )
        weights, means, covs = [], [], []
        for y, g in enumerate(mixture.classes):
            w = M[y, yt] * mixture.class_probs[y] * g.weights / p_noisy[yt]  # (K_y,)
            keep = w > 0.0
            if not np.any(keep):
                continue
            weights.append(w[keep])
            means.append(g.means[keep])
            covs.append(g.covs[keep])
        weights = np.concatenate(weights)
        classes.append(GMM(weights / weights.sum(), np.concatenate(means), np.concatenate(covs)))
    return LabeledGMM(classes, p_noisy)


def _toml_array(a) -> str:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return repr(float(a))
    return "[" + ", ".join(_toml_array(v) for v in a) + "]"


def problem_toml(mixture: LabeledGMM, name: str, description: str = "") -> str:
    """A labelled mixture (e.g. ``relabel``'s noisy law) as the text of a problem file
    (``refcfg.problems.load_problem``), numbers by ``repr``: it loads back to rounding (means
    exactly, weights and covariances within 1e-15 after the GMM's renormalisation and
    symmetrisation); a sweep then samples it like any problem (``verification/sweeps/``)."""
    if not isinstance(mixture, LabeledGMM):
        raise TypeError(f"mixture must be a LabeledGMM, got {_describe(mixture)}")
    if not isinstance(name, str) or not isinstance(description, str):
        raise TypeError(
            f"name and description must be strings, got {_describe(name)}, {_describe(description)}"
        )
    lines = [
        "[problem]",
        f"name = {json.dumps(name)}",
        f"description = {json.dumps(description)}",
        f"class_probs = {_toml_array(mixture.class_probs)}",
    ]
    for g in mixture.classes:
        lines += [
            "",
            "[[classes]]",
            f"weights = {_toml_array(g.weights)}",
            f"means = {_toml_array(g.means)}",
            f"covs = {_toml_array(g.covs)}",
        ]
    return "\n".join(lines) + "\n"
