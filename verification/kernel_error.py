"""How far are the Numba kernels from the NumPy core, at every t and at |x| ~ 1e6?

For each covariance type and size: a random three-class mixture, the CFG field (y = 1, w = 3),
``refcfg.sampling.cpu.velocity`` and ``cpu.score`` against ``GMMPath.cfg_velocity`` / ``cfg_score``,
max |diff| / max |u| over 1200 points (enough for the M form of many full-covariance components);
at one time for all points (the maximum over TIMES) and at TIMES drawn per point. Linear schedule:
alpha_t = beta_t at t = 0.5, where the kernels switch between the split and the direct form of the
logits.

Run: python verification/kernel_error.py   (prints a Markdown table; used in docs/numerics.md)
"""

import numpy as np

import refcfg
from refcfg.sampling import cpu

TIMES = (0.0, 1e-9, 1e-6, 1e-3, 0.3, 0.5 - 1e-12, 0.5, 0.5 + 1e-12, 0.7, 1 - 1e-9, 1.0)
SHAPES = [
    ("isotropic", 9, 2),
    ("isotropic", 9, 16),
    ("isotropic", 64, 64),
    ("diag", 9, 2),
    ("diag", 9, 16),
    ("full", 9, 2),
    ("full", 9, 16),
    ("full", 300, 16),
]


def random_path(cov_type, K, d, seed=3):
    """Three classes of about K / 3 components each: means 2 N(0, I), weights uniform in
    [0.2, 1], covariances with eigenvalues in [0.3, 2] (random rotations for full ones)."""
    rng = np.random.default_rng(seed)
    classes = []
    for c in range(3):
        k = K // 3 + (c == 0)
        w = rng.uniform(0.2, 1.0, k)
        mu = 2.0 * rng.standard_normal((k, d))
        if cov_type == "isotropic":
            cov = rng.uniform(0.3, 2.0, k)
        elif cov_type == "diag":
            cov = rng.uniform(0.3, 2.0, (k, d))
        else:
            q = np.linalg.qr(rng.standard_normal((k, d, d)))[0]
            cov = np.einsum("kij,kj,klj->kil", q, rng.uniform(0.3, 2.0, (k, d)), q)
        classes.append(refcfg.GMM(w / w.sum(), mu, cov))
    return refcfg.GMMPath(refcfg.LabeledGMM(classes, [0.5, 0.3, 0.2]), "linear")


def rel(a, b):
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def errors(path, x, t, y=1, w=3.0):
    f = refcfg.CFGField(path, y, w)
    return max(
        rel(cpu.velocity(f, x, t), path.cfg_velocity(x, t, y, w)),
        rel(cpu.score(f, x, t), path.cfg_score(x, t, y, w)),
    )


def measure(n=1200, seed=4):
    rows = []
    for cov_type, K, d in SHAPES:
        path = random_path(cov_type, K, d)
        rng = np.random.default_rng(seed)
        for label, x in (
            ("2.5 N(0, I) + 1.5", 2.5 * rng.standard_normal((n, d)) + 1.5),
            ("1e6 N(0, I)", 1e6 * rng.standard_normal((n, d))),
        ):
            one = max(errors(path, x, t) for t in TIMES)
            each = errors(path, x, rng.choice(np.array(TIMES), n))
            rows.append((cov_type, path.mixture.marginal.means.shape[0], d, label, one, each))
    return rows


if __name__ == "__main__":
    print("| covariances | K | d | x | max over t, one time | per-particle times |")
    print("|---|---:|---:|---|---:|---:|")
    for cov_type, K, d, label, one, each in measure():
        print(f"| {cov_type} | {K} | {d} | {label} | {one:.1e} | {each:.1e} |")
