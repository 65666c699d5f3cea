"""Result 5: the autoguidance tree problem (Karras et al., arXiv 2406.02507, Sec. 3 and App. C).

Exact-field sampling of class 0 of ``refcfg.problem("tree")`` (2 x 1016 thin Gaussians) with CFG at
w in {1, 2, 3, 4}, and with autoguidance: the same guided combination w D1 + (1 - w) D0 where D0 is
not the unconditional field but a *weaker model of the same class*: the same tree with every
covariance inflated (Sigma_k -> s^2 Sigma_k). Measured against the exact class law p(x|0):
the fraction of samples inside its 50 % and 90 % highest-density regions (thresholds on log p(x|0)
from exact draws), the mean log p(x|0), Bayes-classifier confidence, and the energy distance to exact
class-0 draws (diversity: CFG concentrating on the core raises it). w = 1 is the exact conditional
law, so its HDR fractions must match 0.5 and 0.9 within Monte Carlo error.
"""

from __future__ import annotations

import numpy as np

from .. import metrics
from ._common import Result, edm_grid

NAME = "tree"
TITLE = "Tree problem: CFG vs autoguidance with exact fields"

WEIGHTS = (1.0, 2.0, 3.0, 4.0)
INFLATE = 2.0  # the weak model's standard-deviation factor s


def tree_mixture(depth=None):
    """The tree problem (default depth 7), or a smaller tree of the same construction."""
    import refcfg

    if depth is None:
        return refcfg.problem("tree")
    from .._tree import tree_parts

    parts, probs = tree_parts(depth=depth)
    return refcfg.LabeledGMM([refcfg.GMM(w, m, S) for (w, m, S) in parts], probs)


def inflate(mixture, s):
    """The same mixture with every covariance multiplied by s^2 (a weaker, blurrier model)."""
    import refcfg

    return refcfg.LabeledGMM(
        [refcfg.GMM(g.weights, g.means, g.covs * s * s) for g in mixture.classes],
        mixture.class_probs,
    )


def hdr_thresholds(cond, levels, n, seed):
    """log p(x|y) thresholds tau_a with P_{x ~ p(x|y)}[log p(x|y) >= tau_a] = a, from n exact draws."""
    lp = cond.log_prob(cond.sample(n, seed=seed))
    return {a: float(np.quantile(lp, 1.0 - a)) for a in levels}


def run(fast: bool = False, seed: int = 0, backend: str = "auto") -> Result:
    """Result 5. ``fast``: a depth-3 tree (56 components per class), few particles and steps."""
    import refcfg

    mix = tree_mixture(3 if fast else None)
    weak = inflate(mix, INFLATE)
    path, wpath = refcfg.GMMPath(mix, "linear"), refcfg.GMMPath(weak, "linear")
    y = 0
    cond = mix.class_gmm(y)
    n = 300 if fast else 2000
    steps = 16 if fast else 32  # EDM noise levels (rho = 7) + t = 0, as the paper's Heun sampler
    levels = (0.5, 0.9)
    tau = hdr_thresholds(cond, levels, 4000 if fast else 20000, seed + 1)
    ref = cond.sample(n, seed=seed + 2)
    rng = np.random.default_rng(seed)
    rows, keep = [], {"exact": ref}
    weights = (1.0, 3.0) if fast else WEIGHTS
    for method in ("CFG", "autoguidance"):
        for w in weights:
            if method == "autoguidance" and w == 1.0:
                continue  # identical to CFG at w = 1 (the conditional field)
            field = (
                path.cfg(y, w)
                if method == "CFG"
                else refcfg.guided(path.field(y), wpath.field(y), w)
            )
            x = refcfg.sample(
                field, n, sampler="heun", t_grid=edm_grid(steps), seed=rng, backend=backend
            )
            lp = cond.log_prob(x)
            cc = metrics.class_confidence(x, mix, y)
            row = {"method": method, "w": w}
            for a in levels:
                row[f"in {int(a * 100)}% HDR"] = float(np.mean(lp >= tau[a]))
            row.update(
                {
                    "mean log p(x|0)": float(lp.mean()),
                    "conf": cc.mean_prob,
                    "energy dist to p(x|0)": metrics.energy_distance(x, ref, max_n=2000, seed=seed),
                    "trace cov / exact": float(np.trace(np.cov(x.T)) / np.trace(np.cov(ref.T))),
                }
            )
            rows.append(row)
            keep[(method, w)] = x
    se = {a: np.sqrt(a * (1 - a) / n) for a in levels}
    key = {
        "n": n,
        "steps": steps,
        "weak model std factor": INFLATE,
        "HDR fractions at w=1 (expect 0.5, 0.9)": [rows[0]["in 50% HDR"], rows[0]["in 90% HDR"]],
        "binomial sd at w=1": [se[0.5], se[0.9]],
    }
    for r in rows:
        if r["w"] == weights[-1]:
            key[f"{r['method']} w={r['w']:g}: in 90% HDR, energy dist"] = [
                r["in 90% HDR"],
                r["energy dist to p(x|0)"],
            ]

    grid = np.linspace(-1.6, 1.6, 200)
    X, Y = np.meshgrid(grid, grid)
    log_p = mix.marginal.log_prob(np.stack([X.ravel(), Y.ravel()], 1)).reshape(X.shape)
    data = {"keep": keep, "weights": weights, "grid": grid, "log_p": log_p}
    return Result(NAME, TITLE, rows, key, figure_data=data)
