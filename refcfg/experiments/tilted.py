"""The tilted law p(x|y)^w p(x)^(1-w) / Z of a labelled mixture at t = 1: log-density and sampler.

CFG is often said to sample this law; the studies compare CFG samples with it. For a labelled
mixture it exists for every w >= 0: for w <= 1 by Hoelder's inequality, for w > 1 because
p(x) >= p(y) p(x|y) bounds it by p(y)^(1-w) p(x|y).

``log_density(path, x, y, w)`` is the unnormalised log w log p(x|y) + (1 - w) log p(x) from the
exact log-densities of the mixture. ``sample(path, y, w, n, seed=...)`` draws from the normalised
law by sampling-importance-resampling (SIR): ``oversample * n`` proposals, n of them resampled with
replacement with probabilities proportional to the density ratio of the tilted law to the proposal.
By Bayes' rule p(x|y) / p(x) = p(y|x) / p(y) (at most 1 / p(y)), so

    tilted  ~  p(x)   (p(x|y) / p(x))^w          (proposal p(x)   for w < 1)
            ~  p(x|y) (p(x|y) / p(x))^(w - 1)    (proposal p(x|y) for w >= 1)

and with this choice the importance weights are bounded by p(y)^-w resp. p(y)^-(w-1) for every
w >= 0: SIR is consistent (its error vanishes as ``oversample`` grows). The other rule in use before,
p(x|y) proposals for every w, has weights (p(y|x) / p(y))^(w-1) that are unbounded for w < 1 wherever
p(y|x) -> 0, so it is kept only where both rules agree (w >= 1). The effective sample size
1 / sum p_i^2 of the normalised weights over the proposals is returned with the sample; it says how
many of the proposals carry the weight.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .._validation import as_generator, as_points, as_positive_int
from ..combine import combine
from ..mixture import GMM, LabeledGMM

__all__ = ["OVERSAMPLE", "TiltedSample", "log_density", "sample"]

OVERSAMPLE = 20
"""Default number of proposals per returned sample."""


class TiltedSample(NamedTuple):
    """A SIR sample of the tilted law: ``x`` (n, d) and ``ess``, the effective sample size of the
    normalised importance weights over the ``oversample * n`` proposals."""

    x: np.ndarray
    ess: float


def _mixture(path) -> LabeledGMM:
    """The labelled data law of a GMMPath (its ``mixture``) or a LabeledGMM itself."""
    mix = getattr(path, "mixture", path)
    if not isinstance(mix, LabeledGMM):
        raise TypeError(f"path must be a GMMPath or a LabeledGMM, got {type(path).__name__}")
    return mix


def _weight(w, *, minimum: float | None = None) -> float:
    if isinstance(w, (bool, np.bool_)) or not isinstance(w, numbers.Real):
        raise TypeError(f"w must be a real number, got {w!r}")
    w = float(w)
    if not np.isfinite(w):
        raise ValueError(f"w must be finite, got {w!r}")
    if minimum is not None and w < minimum:
        raise ValueError(
            f"w must be >= {minimum:g} for the tilted law to be sampled (it may not "
            f"exist for w < 0), got {w!r}"
        )
    return w


def log_density(path, x, y: int, w: float) -> np.ndarray:
    """Unnormalised log-density w log p(x|y) + (1 - w) log p(x) of the tilted law at t = 1.

    path: a GMMPath or a LabeledGMM; x: (N, d); y: a class; w: a finite float (any sign: the
    unnormalised density is defined even where it cannot be normalised). Returns (N,) float64."""
    mix = _mixture(path)
    cond = mix.class_gmm(y)
    w = _weight(w)
    x = as_points(x, mix.d, "x")
    # the CFG combination of the two log-densities (eq. 65 applied to log p)
    return combine(cond.log_prob(x), mix.marginal.log_prob(x), w)


def sample(path, y: int, w: float, n: int, *, seed, oversample: int = OVERSAMPLE) -> TiltedSample:
    """n draws from the tilted law p(x|y)^w p(x)^(1-w) / Z by SIR (module docstring).

    path: a GMMPath or a LabeledGMM; y: a class; w >= 0; seed: an int, a SeedSequence or a
    np.random.Generator (consumed in place). Returns ``TiltedSample(x, ess)``."""
    mix = _mixture(path)
    cond = mix.class_gmm(y)
    w = _weight(w, minimum=0.0)
    n = as_positive_int(n, "n")
    oversample = as_positive_int(oversample, "oversample")
    rng = as_generator(seed)
    return _sir(cond, mix.marginal, w, n, rng, oversample)


def _sir(
    cond: GMM, marginal: GMM, w: float, n: int, rng: np.random.Generator, oversample: int
) -> TiltedSample:
    """SIR for cond^w marginal^(1-w) / Z: proposals from ``marginal`` for w < 1 and from ``cond``
    for w >= 1. The weights are bounded when cond / marginal is (a class of a labelled mixture and
    its marginal); for other pairs the caller must know that the law exists."""
    m = n * oversample
    if w >= 1.0:
        xs, power = cond.sample(m, rng), w - 1.0
    else:
        xs, power = marginal.sample(m, rng), w
    logw = power * (cond.log_prob(xs) - marginal.log_prob(xs))
    p = np.exp(logw - logw.max())
    p /= p.sum()
    ess = float(1.0 / np.sum(p * p))
    idx = rng.choice(m, size=n, replace=True, p=p)
    return TiltedSample(xs[idx], ess)
