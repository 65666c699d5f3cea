"""Tests of refcfg._tree: the autoguidance paper's two-class fractal "tree" (arXiv 2406.02507, App. C).

The oracle for the construction is the geometry itself: from the component means alone we rebuild
the branches (8 collinear, equally spaced centres each), the parent/child links (a child starts at its
parent's tip) and hence every branch's level; then the covariances are recomputed with a different
formula (the release's Hadamard form (u u^T + r^2 (I - u u^T)) o (s s^T)) and the weights from
length * 0.5**level. Run ``python tests/test_tree.py out.png`` to draw samples of both classes.
"""

from __future__ import annotations

import numpy as np
import pytest

from refcfg._tree import tree_parts

PER_BRANCH = 8
POSITIONS = np.linspace(0.07, 0.93, PER_BRANCH)
SCALE = np.array([1.3136, 1.3844])
ORIGIN = np.array([0.0030, 0.0325])


@pytest.fixture(scope="module")
def tree():
    return tree_parts()


def _sample(weights, means, covs, n, rng):
    k = rng.choice(weights.size, size=n, p=weights)
    chol = np.linalg.cholesky(covs)
    return means[k] + np.einsum("nij,nj->ni", chol[k], rng.standard_normal((n, 2)))


def _log_density(x, weights, means, covs):
    """log sum_k w_k N(x; m_k, S_k) by explicit 2x2 inverses (independent of the module)."""
    a, b, c = covs[:, 0, 0], covs[:, 0, 1], covs[:, 1, 1]
    det = a * c - b * b
    dx = x[:, None, :] - means[None, :, :]  # (N, K, 2)
    quad = (c * dx[..., 0] ** 2 - 2 * b * dx[..., 0] * dx[..., 1] + a * dx[..., 1] ** 2) / det
    logc = np.log(weights) - np.log(2 * np.pi) - 0.5 * np.log(det)
    z = logc - 0.5 * quad
    zmax = z.max(axis=1, keepdims=True)
    return zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1))


def _branches(means):
    """Rebuild (start, unit direction, length, level, parent) of every branch from the means alone."""
    tree_xy = (means / SCALE).reshape(-1, PER_BRANCH, 2)  # tree coordinates, (B, 8, 2)
    span = tree_xy[:, -1] - tree_xy[:, 0]
    length = np.linalg.norm(span, axis=1) / (POSITIONS[-1] - POSITIONS[0])
    u = span / np.linalg.norm(span, axis=1, keepdims=True)
    start = tree_xy[:, 0] - POSITIONS[0] * length[:, None] * u
    tip = start + length[:, None] * u
    # parent: the branch whose tip is this branch's start (the root starts at ORIGIN)
    gap = np.linalg.norm(start[:, None, :] - tip[None, :, :], axis=-1)  # (B, B)
    parent = np.argmin(gap, axis=1)
    is_root = np.linalg.norm(start - ORIGIN, axis=1) < 1e-12
    parent[is_root] = -1
    level = np.zeros(len(start), dtype=int)
    for i in range(len(start)):
        j = i
        while parent[j] >= 0:
            level[i] += 1
            j = parent[j]
            assert level[i] < 64, "cycle in the rebuilt tree"
    return tree_xy, start, u, length, level, parent, gap


def test_shapes_counts_dtypes(tree):
    parts, probs = tree
    assert len(parts) == 2
    for w, m, s in parts:
        # 8 components on each of 1 + 2 + ... + 64 = 127 branches
        assert w.shape == (1016,) and m.shape == (1016, 2) and s.shape == (1016, 2, 2)
        assert w.dtype == m.dtype == s.dtype == np.float64
    assert probs.shape == (2,) and probs.dtype == np.float64


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_component_count_formula(depth):
    parts, _ = tree_parts(depth=depth)
    for w, _m, _s in parts:
        assert w.shape == (PER_BRANCH * (2**depth - 1),)


def test_weights_and_class_probs(tree):
    parts, probs = tree
    for w, _, _ in parts:
        assert np.all(w > 0)
        assert abs(w.sum() - 1.0) < 1e-12
    assert np.all(probs > 0) and abs(probs.sum() - 1.0) < 1e-15
    # near-balanced classes (each tree has its own jitter): measured 0.477 / 0.523
    assert np.all(np.abs(probs - 0.5) < 0.05)


def test_covariances_spd(tree):
    parts, _ = tree
    for _, _, s in parts:
        assert np.array_equal(s, np.swapaxes(s, 1, 2))
        lam = np.linalg.eigvalsh(s)
        assert lam.min() > 1e-6  # measured 9.7e-6
        assert lam.max() < 1e-3  # measured 5.3e-4
        cond = lam[:, 1] / lam[:, 0]
        assert cond.max() < 10.0  # measured 4.74
        np.linalg.cholesky(s)  # raises unless positive definite


def test_deterministic_and_seeded(tree):
    parts, probs = tree
    again, probs2 = tree_parts()
    assert np.array_equal(probs, probs2)
    for a, b in zip(parts, again):
        for x, y in zip(a, b):
            assert np.array_equal(x, y)
    other, _ = tree_parts(seed=3)
    assert not np.allclose(other[0][1], parts[0][1])


def test_structure_rebuilt_from_means(tree):
    parts, _ = tree
    for _w, m, _s in parts:
        tree_xy, start, u, length, level, parent, gap = _branches(m)
        # centres equally spaced on a line at fractions 0.07 ... 0.93 of the branch
        pred = start[:, None, :] + POSITIONS[None, :, None] * length[:, None, None] * u[:, None, :]
        assert np.max(np.abs(pred - tree_xy)) < 1e-12
        # exactly one root (at the origin), every child starts at its parent's tip
        assert np.sum(parent == -1) == 1
        child = parent >= 0
        assert np.max(gap[child, parent[child]]) < 1e-12
        # full binary tree of 7 levels: 2**l branches at level l, two children per internal branch
        assert np.array_equal(np.bincount(level), 2 ** np.arange(7))
        kids = np.bincount(parent[child], minlength=len(start))
        assert np.array_equal(kids, np.where(level < 6, 2, 0))
        # lengths 0.292 * 0.8**l * (1 + 0.2 n), |n| < 4
        rel = length / (0.292 * 0.8**level)
        assert np.all(np.abs(rel - 1.0) < 0.8)
        # children bend by +-0.7**l * (1 + 0.2 n) radians, the two in opposite directions
        ang = np.arctan2(u[:, 1], u[:, 0])
        for p in np.flatnonzero(kids):
            c1, c2 = np.flatnonzero(parent == p)
            d1 = np.angle(np.exp(1j * (ang[c1] - ang[p])))
            d2 = np.angle(np.exp(1j * (ang[c2] - ang[p])))
            assert d1 * d2 < 0
            for d in (d1, d2):
                assert abs(abs(d) / 0.7 ** level[p] - 1.0) < 0.8


def test_covariances_and_weights_match_release_formula(tree):
    """Sigma = (u u^T + r^2 (I - u u^T)) o (s s^T), r = 0.2 * 0.8**l / L, s = scale * 0.06 L."""
    parts, probs = tree
    raw_all, joint_all = [], []
    for y, (w, m, s) in enumerate(parts):
        _, _, u, length, level, _, _ = _branches(m)
        r = 0.2 * 0.8**level / length
        size = SCALE[None, :] * 0.06 * length[:, None]
        uu = u[:, :, None] * u[:, None, :]
        expect = (uu + r[:, None, None] ** 2 * (np.eye(2) - uu)) * (
            size[:, :, None] * size[:, None, :]
        )
        expect = np.repeat(expect, PER_BRANCH, axis=0)
        assert np.max(np.abs(s - expect)) <= 1e-12 * np.max(np.abs(expect))
        raw = np.repeat(length * 0.5**level, PER_BRANCH)
        assert np.max(np.abs(w - raw / raw.sum())) < 1e-15
        raw_all.append(raw)
        joint_all.append(probs[y] * w)
    # p(y) w_{y,k} is the release's jointly normalised ("AB") weight
    ratio = np.concatenate(joint_all) / np.concatenate(raw_all)
    assert np.ptp(ratio) <= 1e-12 * ratio.mean()


def test_draw_order_of_seed_2(tree):
    """Pre-order draws (release's order): per branch 1 length draw, then for the child bent by +:
    1 bend draw and its whole subtree, then the same for the child bent by -. Every branch of a
    7-level tree draws 3 normals (127 * 3 = 381 per class), class 0 first."""
    parts, _ = tree
    n = np.random.RandomState(2).randn(2 * 381)
    for y, root_angle, first in ((0, np.pi / 4, 0), (1, 5 * np.pi / 4, 381)):
        _, _, u, length, level, parent, _ = _branches(parts[y][1])
        root = np.flatnonzero(level == 0)[0]
        assert abs(length[root] - 0.292 * (1 + 0.2 * n[first])) < 1e-12
        ang = np.arctan2(u[:, 1], u[:, 0])
        assert abs(np.angle(np.exp(1j * (ang[root] - root_angle)))) < 1e-12
        # root's + child: bend draw first+1, its length draw first+2; its subtree (63 branches)
        # uses draws first+2 ... first+190, so the - child's bend is draw first+191
        for sign, k_bend, k_len in ((1, first + 1, first + 2), (-1, first + 191, first + 192)):
            bend = sign * (1 + 0.2 * n[k_bend])
            kids = np.flatnonzero(parent == root)
            hit = [
                c for c in kids if abs(np.angle(np.exp(1j * (ang[c] - ang[root] - bend)))) < 1e-12
            ]
            assert len(hit) == 1
            assert abs(length[hit[0]] - 0.292 * 0.8 * (1 + 0.2 * n[k_len])) < 1e-12


def test_classes_occupy_different_regions(tree):
    parts, probs = tree
    (w0, m0, _), (w1, m1, _) = parts
    mean0, mean1 = w0 @ m0, w1 @ m1
    assert mean0[0] > 0.2 and mean0[1] > 0.2  # measured (0.372, 0.365)
    assert mean1[0] < -0.2 and mean1[1] < -0.2  # measured (-0.339, -0.331)
    # weight on the up-right side of the line x + y = 0: measured 0.997 and 0.035
    assert w0[m0.sum(1) > 0].sum() > 0.99
    assert w1[m1.sum(1) > 0].sum() < 0.05
    # Bayes classifier on samples (N = 2000 per class, seed 0): error measured 0.575 % (23 of 4000)
    rng = np.random.default_rng(0)
    errors = 0
    for y, (w, m, s) in enumerate(parts):
        x = _sample(w, m, s, 2000, rng)
        logp = np.stack([np.log(probs[c]) + _log_density(x, *parts[c]) for c in range(2)], axis=1)
        errors += np.sum(np.argmax(logp, axis=1) != y)
    assert errors / 4000 < 0.01


@pytest.mark.parametrize(
    "kwargs, exc",
    [
        ({"depth": 0}, ValueError),
        ({"depth": 13}, ValueError),
        ({"depth": True}, TypeError),
        ({"depth": 2.0}, TypeError),
        ({"seed": -1}, ValueError),
        ({"seed": "2"}, TypeError),
    ],
)
def test_bad_arguments(kwargs, exc):
    name = next(iter(kwargs))
    with pytest.raises(exc, match=name):
        tree_parts(**kwargs)


if __name__ == "__main__":  # pragma: no cover - a visual check, not a test
    import sys

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts, probs = tree_parts()
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(8, 8))
    for y, (w, m, s) in enumerate(parts):
        x = _sample(w, m, s, int(30000 * probs[y]), rng)
        ax.plot(*x.T, ".", ms=1, alpha=0.3, color=("C1", "0.5")[y], label=f"class {y}")
    ax.set_aspect("equal")
    ax.set_xlim(-0.9, 1.5)
    ax.set_ylim(-0.9, 1.5)
    ax.legend()
    fig.savefig(sys.argv[1] if len(sys.argv) > 1 else "tree.png", dpi=80)
