"""Result 2: CFG samples vs the tilted law p(x|y)^w p(x)^(1-w) / Z for Gaussian mixtures.

The tilted density is normalised by the midpoint rule on a grid (``refcfg.metrics.density_probs``);
it exists for every w >= 1 here because p(x) >= p(y) p(x|y) bounds it by p(y)^(1-w) p(x|y). CFG samples
(exact fields, Heun ODE and Euler-Maruyama SDE with sigma_t^2 = 2 a_t) are compared with it by total
variation and KL on the grid (TV against the multinomial noise floor of a perfect sampler with the same
n), mass per mixture component (hard assignment by exact responsibilities at t = 1), class confidence
under the exact Bayes classifier at t = 1, and the mean log p(x|y).
"""

from __future__ import annotations

import numpy as np

from .. import metrics
from . import tilted
from ._common import Result, sde_grid

NAME = "cfg-vs-tilted"
TITLE = "CFG vs the tilted law p(x|y)^w p(x)^(1-w)/Z on Gaussian mixtures"

WEIGHTS = (1.0, 1.5, 2.0, 3.0, 5.0, 8.0)
GRIDS = {
    "gauss-1d": [np.linspace(-7.0, 5.0, 481)],
    "two-class-2d": [np.linspace(-5.0, 5.0, 101), np.linspace(-5.0, 5.0, 101)],
}


def _tilted(mixture, y, w):
    """x -> the unnormalised tilted log-density (``refcfg.experiments.tilted``), (M, d) -> (M,)."""
    return lambda x: tilted.log_density(mixture, x, y, w)


def law_summary(probs, edges, mixture, y):
    """Mode masses, class confidence and mean log p(x|y) of a law given by cell probabilities."""
    c, _ = metrics.grid_centers(edges)
    lp = metrics.class_log_posteriors(c, mixture)
    return {
        "modes": metrics.grid_mode_mass(probs, edges, mixture),
        "conf": float(np.sum(probs * np.exp(lp[:, y]))),
        "acc": float(np.sum(probs * (np.argmax(lp, 1) == y))),
        "loglik": float(np.sum(probs * mixture.class_gmm(y).log_prob(c))),
    }


def compare(mixture, y, w, x, edges, q=None):
    """Metrics of samples x against the tilted law at weight w (cell masses q, computed if None)."""
    if q is None:
        q = metrics.density_probs(_tilted(mixture, y, w), edges)
    h = metrics.histogram_probs(x, edges)
    outside = np.any([(x[:, j] < e[0]) | (x[:, j] > e[-1]) for j, e in enumerate(edges)], axis=0)
    cc = metrics.class_confidence(x, mixture, y)
    ex = law_summary(q, edges, mixture, y)
    return {
        "TV": metrics.total_variation(h, q),
        "TV_floor": metrics.tv_noise_floor(q, len(x), reps=10)[0],
        "KL(hist, tilt)": metrics.kl_divergence(h, q),
        "outside": float(np.mean(outside)),
        "conf": cc.mean_prob,
        "conf_tilt": ex["conf"],
        "acc": cc.accuracy,
        "acc_tilt": ex["acc"],
        "loglik": metrics.mean_log_likelihood(x, mixture, y)[0],
        "loglik_tilt": ex["loglik"],
        "modes": metrics.mode_mass(x, mixture),
        "modes_tilt": ex["modes"],
    }


def run(fast: bool = False, seed: int = 0, backend: str = "auto") -> Result:
    """Result 2. ``fast``: w in {1, 3, 8}, fewer samples and steps."""
    import refcfg

    weights = (1.0, 3.0, 8.0) if fast else WEIGHTS
    n = 3000 if fast else 10000
    ode_steps, sde_steps = (50, 200) if fast else (100, 500)
    y = 0
    rng = np.random.default_rng(seed)
    rows, keep = [], {}
    for name, edges in GRIDS.items():
        mixture = refcfg.problem(name)
        path = refcfg.GMMPath(mixture, "linear")
        for w in weights:
            q = metrics.density_probs(_tilted(mixture, y, w), edges)
            for sampler in ("heun", "euler_maruyama"):
                if sampler == "heun":
                    x = refcfg.sample(
                        path.cfg(y, w),
                        n,
                        sampler="heun",
                        steps=ode_steps,
                        seed=rng,
                        backend=backend,
                    )
                else:
                    x = refcfg.sample(
                        path.cfg(y, w),
                        n,
                        sampler="euler_maruyama",
                        t_grid=sde_grid(sde_steps),
                        sigma="ddpm",
                        seed=rng,
                        backend=backend,
                    )
                m = compare(mixture, y, w, x, edges, q)
                rows.append({"problem": name, "w": w, "sampler": sampler, **m})
                keep[(name, w, sampler)] = x
            keep[(name, w, "tilt")] = q
    key = {"n": n, "y": y}
    for r in rows:
        if r["w"] in (1.0, 3.0, 8.0):
            key[f"TV {r['problem']} w={r['w']:g} {r['sampler']}"] = (r["TV"], r["TV_floor"])

    data = {"keep": keep, "rows": rows, "weights": weights, "grids": GRIDS}
    return Result(NAME, TITLE, rows, key, figure_data=data)
