"""Result 4: guidance restricted to a noise interval (arXiv 2404.07724) vs guidance everywhere.

A 1-D problem where class 0 has three equal modes at -3, 0, 3 (sd 0.4) and class 1 two modes at 4.5
and 7.5. Because the modes are well separated, the tilted law p(x|0)^w p(x)^(1-w)/Z keeps the three
class-0 masses near 1/3 for every w (p(x|0)/p(x) ~ 2 on all three). CFG applied at every t pushes
mass away from class 1 while the noise is high (when p_t(0|x) only sees which side x is on), so it
drops the mode at +3 and then the one at 0. Kynkaanniemi et al. (arXiv 2404.07724) apply guidance
only for sigma_t in (sigma_lo, sigma_hi], sigma_t = beta_t / alpha_t (EDM's noise level); with the
high-noise part excluded the mode masses stay at the tilted law's.

The interval sampler integrates the conditional field on [0, t(sigma_hi)], CFG on
[t(sigma_hi), t(sigma_lo)] and the conditional field on the rest, so every leg runs on the fast
backend; ``refcfg.guidance.GuidanceInterval`` is the same thing as one field
(tests/experiments check that both give the same Euler trajectories).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import brentq

from .. import metrics
from . import tilted
from ._common import Result

NAME = "guidance-interval"
TITLE = "Guidance interval vs guidance everywhere: mode dropping on a 1-D mixture"

MODES = (-3.0, 0.0, 3.0)
WEIGHTS = (2.0, 3.0, 5.0, 8.0)
INTERVALS = ((0.0, np.inf), (0.0, 2.0), (0.0, 1.0))
EDGES = [np.linspace(-6.0, 10.0, 801)]


def interval_problem():
    import refcfg

    c0 = refcfg.GMM([1 / 3, 1 / 3, 1 / 3], [[m] for m in MODES], [0.16, 0.16, 0.16])
    c1 = refcfg.GMM([0.5, 0.5], [[4.5], [7.5]], [0.16, 0.16])
    return refcfg.LabeledGMM([c0, c1], [0.5, 0.5])


def t_of_sigma(schedule, sigma):
    """The t with beta_t / alpha_t = sigma (decreasing in t); 0 for sigma = inf, 1 for sigma = 0."""
    if np.isinf(sigma):
        return 0.0
    if sigma == 0.0:
        return 1.0
    f = lambda t: float(schedule.beta(t)) - sigma * float(schedule.alpha(t))  # noqa: E731
    return brentq(f, 1e-12, 1.0, xtol=1e-15)


def interval_grid(steps, t_a, t_b):
    """Uniform grid on [0, 1] with t_a and t_b inserted (so the legs start and end on grid points)."""
    ts = np.union1d(np.linspace(0.0, 1.0, steps + 1), [t_a, t_b])
    return ts[np.concatenate([[True], np.diff(ts) > 1e-12])]


def sample_interval(
    path, y, w, sigma_lo, sigma_hi, n, sampler="heun", steps=100, seed=None, backend="auto"
):
    """CFG on sigma_t in (sigma_lo, sigma_hi], the conditional field elsewhere (three legs)."""
    import refcfg

    rng = np.random.default_rng(seed) if not isinstance(seed, np.random.Generator) else seed
    t_a, t_b = t_of_sigma(path.schedule, sigma_hi), t_of_sigma(path.schedule, sigma_lo)
    ts = interval_grid(steps, t_a, t_b)
    x = rng.standard_normal((n, path.d))
    kw = dict(sampler=sampler, seed=rng, backend=backend)
    if sampler == "euler_maruyama":
        kw["sigma"] = "ddpm"
    for lo, hi, field in (
        (0.0, t_a, path.field(y)),
        (t_a, t_b, path.cfg(y, w)),
        (t_b, 1.0, path.field(y)),
    ):
        leg = ts[(ts >= lo - 1e-15) & (ts <= hi + 1e-15)]
        if leg.size >= 2:
            x = refcfg.sample(field, n, t_grid=leg, x_init=x, **kw)
    return x


def run(fast: bool = False, seed: int = 0, backend: str = "auto") -> Result:
    """Result 4. ``fast``: w in {3, 5}, fewer samples."""
    import refcfg

    mix = interval_problem()
    path = refcfg.GMMPath(mix, "linear")
    weights = (3.0, 5.0) if fast else WEIGHTS
    intervals = ((0.0, np.inf), (0.0, 1.0)) if fast else INTERVALS
    n = 2000 if fast else 10000
    steps = {"heun": 50 if fast else 100, "euler_maruyama": 200 if fast else 500}
    rng = np.random.default_rng(seed)
    rows, keep = [], {}
    samplers = ("heun",) if fast else ("heun", "euler_maruyama")
    for w in weights:
        q = metrics.density_probs(lambda x: tilted.log_density(mix, x, 0, w), EDGES)
        mt = metrics.grid_mode_mass(q, EDGES, mix)
        rows.append(
            {
                "w": w,
                "law": "tilted (exact, grid)",
                "sampler": "-",
                "mode -3": mt[0],
                "mode 0": mt[1],
                "mode +3": mt[2],
                "class 1 modes": mt[3:].sum(),
                "TV_tilt": 0.0,
            }
        )
        keep[(w, "tilt")] = q
        for sampler in samplers:
            for lo, hi in intervals:
                x = sample_interval(path, 0, w, lo, hi, n, sampler, steps[sampler], rng, backend)
                mm = metrics.mode_mass(x, mix)
                tv = metrics.total_variation(metrics.histogram_probs(x, EDGES), q)
                label = (
                    "CFG everywhere"
                    if np.isinf(hi) and lo == 0
                    else f"CFG on sigma in ({lo:g}, {hi:g}]"
                )
                rows.append(
                    {
                        "w": w,
                        "law": label,
                        "sampler": sampler,
                        "mode -3": mm[0],
                        "mode 0": mm[1],
                        "mode +3": mm[2],
                        "class 1 modes": mm[3:].sum(),
                        "TV_tilt": tv,
                    }
                )
                keep[(w, label, sampler)] = x
    floor = metrics.tv_noise_floor(keep[(weights[0], "tilt")], n, reps=10)[0]
    key = {"n": n, "TV noise floor (n samples)": floor}
    for r in rows:
        if r["sampler"] == "heun" and r["w"] == 5.0:
            key[f"w=5 {r['law']} mode masses"] = [r["mode -3"], r["mode 0"], r["mode +3"]]
    wk = 5.0 if 5.0 in weights else weights[-1]
    rt = [r for r in rows if r["w"] == wk and r["sampler"] == "-"][0]
    key[f"tilted mode masses at w={wk:g}"] = [rt["mode -3"], rt["mode 0"], rt["mode +3"]]

    data = {"keep": keep, "rows": rows, "wk": wk, "intervals": intervals, "edges": EDGES}
    return Result(NAME, TITLE, rows, key, figure_data=data)
