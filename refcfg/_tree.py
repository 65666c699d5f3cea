"""The two-class fractal "tree" mixture of the autoguidance paper.

Karras et al., "Guiding a Diffusion Model with a Bad Version of Itself", arXiv 2406.02507, Sec. 3 and
Appendix C (the 2-D toy example): each class is a binary tree of straight branches, every branch drawn
as a row of 8 elongated Gaussians, 7 levels deep, so 8 * (2**7 - 1) = 1016 full-covariance components
per class. Class 0 ("A" in the paper's release) grows from the origin towards the upper right
(angle pi/4), class 1 ("B") towards the lower left (angle 5 pi/4).

The construction's parameters (branch length 0.292 * 0.8**depth, bend angle 0.7**depth, the 20 %
multiplicative jitter, the seed 2 of NumPy's legacy ``RandomState``, the order of its draws, the
per-axis scale and origin, the component thickness and weights) are facts read from the paper's
release (NVlabs/edm2, ``toy_example.py``, function ``gt``); the code below is written independently
and in a different form (a branch skeleton first, then all components at once, and the covariance
written as the image of an ellipse in "tree coordinates"). See docs/problems-tree.md.

This module imports nothing from refcfg: it returns plain float64 arrays.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["tree_parts", "TREE_DEPTH", "TREE_SEED", "TREE_COMPONENTS_PER_BRANCH"]

TREE_DEPTH = 7
"""Number of branching levels; a tree of depth D has 2**D - 1 branches."""

TREE_SEED = 2
"""Seed of the ``np.random.RandomState`` (legacy MT19937 + polar Gaussians) drawing the jitter."""

TREE_COMPONENTS_PER_BRANCH = 8
"""Gaussian components along each branch."""

# Facts of the paper's construction (arXiv 2406.02507 App. C; values from NVlabs/edm2 toy_example.py).
_ROOT_LENGTH = 0.292  # length of the trunk (depth 0) before jitter, in tree coordinates
_LENGTH_DECAY = 0.8  # each level's branches are 0.8 times as long
_ANGLE_BASE = 1.0  # bend (radians) between a depth-0 branch and its children, before jitter
_ANGLE_DECAY = 0.7  # the bend shrinks by 0.7 per level
_JITTER = 0.2  # lengths and bends are multiplied by (1 + 0.2 * N(0, 1))
_ALONG_STD = 0.06  # std along a branch, as a fraction of its length
_ACROSS_STD = 0.012  # std across a depth-0 branch (decays by 0.8 per level, independent of length)
_WEIGHT_DECAY = 0.5  # component weight = branch length * 0.5**depth (before normalisation)
_POSITIONS = np.linspace(0.07, 0.93, TREE_COMPONENTS_PER_BRANCH)  # component centres along a branch
_ORIGIN = np.array([0.0030, 0.0325])  # root of both trees, in tree coordinates
_SCALE = np.array([1.3136, 1.3844])  # per-axis map from tree coordinates to data coordinates
_ROOT_ANGLES = (0.25 * np.pi, 1.25 * np.pi)  # class 0 up-right, class 1 down-left


def _check_int(value, name: str, lo: int, hi: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got {value}")
    return value


def _skeleton(rng: np.random.RandomState, depth: int, root_angle: float) -> np.ndarray:
    """Branches of one tree as rows (level, x_start, y_start, angle, length), in tree coordinates.

    Pre-order walk: at each branch one normal draw for its length, then for the child bent by +angle
    one draw for the bend followed by that child's whole subtree, then the same for the child bent by
    -angle. The order fixes which draw goes where, hence reproduces the paper's tree for seed 2.
    """
    rows: list[tuple[float, float, float, float, float]] = []

    def grow(level: int, start: np.ndarray, angle: float) -> None:
        if level >= depth:
            return
        length = _ROOT_LENGTH * _LENGTH_DECAY**level * (1.0 + _JITTER * rng.randn())
        rows.append((level, start[0], start[1], angle, length))
        tip = start + length * np.array([np.cos(angle), np.sin(angle)])
        for sign in (1.0, -1.0):
            bend = _ANGLE_BASE * _ANGLE_DECAY**level * (1.0 + _JITTER * rng.randn())
            grow(level + 1, tip, angle + sign * bend)

    grow(0, _ORIGIN.copy(), root_angle)
    return np.array(rows, dtype=np.float64)


def _components(branches: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unnormalised weights (K,), means (K, 2), covariances (K, 2, 2) of a tree's branches (B rows)."""
    level, start, angle, length = branches[:, 0], branches[:, 1:3], branches[:, 3], branches[:, 4]
    u = np.stack([np.cos(angle), np.sin(angle)], axis=-1)  # (B, 2) unit vector along the branch
    v = np.stack([-np.sin(angle), np.cos(angle)], axis=-1)  # (B, 2) unit normal
    # means in tree coordinates: start + s * length * u for s in _POSITIONS, (B, P, 2)
    centres = (
        start[:, None, :] + (_POSITIONS[None, :, None] * length[:, None, None]) * u[:, None, :]
    )
    # ellipse in tree coordinates: std 0.06 L along u, 0.012 * 0.8**level across, (B, 2, 2)
    sd_along = _ALONG_STD * length
    sd_across = _ACROSS_STD * _LENGTH_DECAY**level
    ellipse = (sd_along**2)[:, None, None] * (u[:, :, None] * u[:, None, :]) + (sd_across**2)[
        :, None, None
    ] * (v[:, :, None] * v[:, None, :])
    # data coordinates: x = diag(_SCALE) x_tree, so Sigma = D E D (a congruence: stays SPD)
    covs = _SCALE[None, :, None] * ellipse * _SCALE[None, None, :]
    n_pos = _POSITIONS.size
    means = (centres * _SCALE).reshape(-1, 2)
    covs = np.repeat(covs, n_pos, axis=0)
    weights = np.repeat(length * _WEIGHT_DECAY**level, n_pos)
    return weights, means, covs


def tree_parts(
    *, depth: int = TREE_DEPTH, seed: int = TREE_SEED
) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], np.ndarray]:
    """The autoguidance paper's two-class 2-D "tree" Gaussian mixture (arXiv 2406.02507, App. C).

    Each class is a binary tree of ``2**depth - 1`` straight branches; a branch at level l has length
    ``0.292 * 0.8**l * (1 + 0.2 n)`` and its two children turn by ``+-0.7**l * (1 + 0.2 n')`` radians
    (n, n' standard normal draws of ``np.random.RandomState(seed)``, class 0's tree drawn first).
    A branch is represented by 8 Gaussians centred at fractions 0.07 ... 0.93 of its length, with
    std ``0.06 * length`` along it and ``0.012 * 0.8**l`` across it, and weight ``length * 0.5**l``;
    the whole picture is then mapped by ``x -> diag(1.3136, 1.3844) x`` (the root sits at
    (0.0030, 0.0325) before that map). Class 0 grows towards angle pi/4, class 1 towards 5 pi/4.

    Parameters
    ----------
    depth : int, keyword-only
        Branching levels, 1 ... 12 (default 7, the paper's: 8 * 127 = 1016 components per class).
    seed : int, keyword-only
        Seed of the legacy ``RandomState`` jitter (default 2, the paper's). Deterministic: the legacy
        stream is frozen by NumPy's compatibility policy (NEP 19).

    Returns
    -------
    parts : list of 2 tuples ``(weights (K,), means (K, 2), covs (K, 2, 2))``, float64
        Per class; weights sum to 1 within each class; covariances symmetric positive definite.
    class_probs : (2,) float64
        p(y) = each tree's share of the total unnormalised weight, so that
        ``sum_y p(y) p(x|y)`` is exactly the paper's unconditional ("AB") mixture (about 0.5 each).
    """
    depth = _check_int(depth, "depth", 1, 12)
    seed = _check_int(seed, "seed", 0, 2**32 - 1)
    rng = np.random.RandomState(seed)
    raw = [_components(_skeleton(rng, depth, angle)) for angle in _ROOT_ANGLES]
    totals = np.array([w.sum() for w, _, _ in raw])
    parts = []
    for weights, means, covs in raw:
        covs = 0.5 * (covs + np.swapaxes(covs, -1, -2))  # exact symmetry
        parts.append((weights / weights.sum(), means, covs))
    return parts, totals / totals.sum()
