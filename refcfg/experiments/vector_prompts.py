"""Prompts that are vectors: exact CFG with y in R^2 (``refcfg.vector_prompts``).

The family ``family()`` has three components in R^2 x R^2: y | c ~ N(m_c, S_c),
x | y, c ~ N(A_c y + b_c, Sigma_c). The study

1. checks the identity classifier guidance = CFG for vector prompts on whole trajectories (same initial
   points and Brownian increments; NumPy backend, two different formulas: u(x) + w a_t grad_x
   log p_t(y|x) with the density over y, and w u(x|y) + (1 - w) u(x)), and CFG at w = 1 = the
   conditional field;
2. measures CFG samples (Heun ODE, DDPM-like SDE) against the exact p(x | y) for three fixed prompts
   and a grid of w: squared energy distance D^2 to an exact sample of p(x|y) (floor: D^2 between two
   exact samples), mean log p(x | y), and the prompt fit mean log p(y | x) (the classifier density at
   t = 1, a density over y);
3. samples per-particle prompts y_i ~ p(y) and measures the pairs (x_i, y_i) against the exact joint
   law p(x, y) in R^4 (D^2).
Every sample is drawn; spreads are over seeds (common random numbers across w within a seed).
"""

from __future__ import annotations

import math

import numpy as np

from .. import metrics
from ._common import Result, sde_grid

NAME = "vector-prompts"
TITLE = "Vector prompts y in R^2: CFG = classifier guidance, and CFG samples vs p(x | y)"

PROMPTS = {"y_a = (0, 0)": (0.0, 0.0), "y_b = (-2, 0)": (-2.0, 0.0), "y_c = (1, 1.5)": (1.0, 1.5)}


def _rot(theta):
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def family():
    """The study's family: three components, d = m = 2 (y_a = (0, 0) lies between two prompt
    components, so p(x | y_a) is bimodal)."""
    from ..vector_prompts import VectorPromptFamily

    weights = [0.4, 0.4, 0.2]
    m = [[-2.0, 0.0], [2.0, 0.0], [0.0, 2.0]]
    S = [0.8 * np.eye(2), 0.8 * np.eye(2), np.diag([1.0, 0.5])]
    A = [0.8 * _rot(0.3), _rot(math.pi / 2), 0.5 * np.eye(2)]
    b = [[0.0, 1.2], [0.0, -1.2], [1.5, 0.0]]
    Sigma = [np.diag([0.3, 0.1]), 0.2 * np.eye(2), np.array([[0.4, 0.1], [0.1, 0.2]])]
    return VectorPromptFamily(weights, m, S, A, b, Sigma)


def _sizes(fast):
    if fast:
        return dict(
            ws=(1.0, 2.0, 4.0),
            n=300,
            seeds=2,
            ode_steps=30,
            sde_steps=60,
            n_traj=100,
            traj_steps=30,
        )
    return dict(
        ws=(0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0),
        n=2000,
        seeds=3,
        ode_steps=60,
        sde_steps=200,
        n_traj=500,
        traj_steps=100,
    )


def _stats(values):
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else 0.0)


def run(fast: bool = False, seed: int = 0, backend: str = "auto") -> Result:
    """The vector-prompt study (module docstring)."""
    import refcfg
    from ..vector_prompts import VectorPromptPath

    z = _sizes(fast)
    fam = family()
    vp = VectorPromptPath(fam, "linear")
    # 1. identity on trajectories
    ident = []
    rng = np.random.default_rng([seed, 1])
    n = z["n_traj"]
    Y = fam.prompt_prior.sample(n, rng)
    x0 = rng.standard_normal((n, 2))
    noise = rng.standard_normal((2 * z["traj_steps"], n, 2))
    for w in (1.0, 2.0, 5.0):
        for kind in ("ode", "sde"):
            kw = (
                dict(sampler="heun", steps=z["traj_steps"])
                if kind == "ode"
                else dict(
                    sampler="euler_maruyama",
                    t_grid=sde_grid(2 * z["traj_steps"]),
                    sigma="ddpm",
                    noise=noise,
                )
            )
            _, ta, _ = refcfg.sample(
                vp.cfg(Y, w), n, x_init=x0, return_trajectory=True, backend="numpy", **kw
            )
            _, tb, _ = refcfg.sample(
                vp.classifier_guided(Y, w),
                n,
                x_init=x0,
                return_trajectory=True,
                backend="numpy",
                **kw,
            )
            row = {
                "w": w,
                "sampler": kw["sampler"],
                "max |CG - CFG|": float(np.abs(ta - tb).max()),
                "max |x|": float(np.abs(ta).max()),
            }
            if w == 1.0:
                _, tc, _ = refcfg.sample(
                    vp.field(Y), n, x_init=x0, return_trajectory=True, backend="numpy", **kw
                )
                row["max |CFG(w=1) - conditional|"] = float(np.abs(ta - tc).max())
            ident.append(row)
    # 2. fixed prompts
    rows, kept = [], {}
    for pi, (label, y) in enumerate(PROMPTS.items()):
        y = np.array(y)
        cond = fam.conditional(y)
        refs = [
            cond.sample(z["n"], np.random.default_rng([seed, 2, pi, s])) for s in range(z["seeds"])
        ]
        floor = _stats(
            [
                metrics.energy_distance(
                    refs[s],
                    cond.sample(z["n"], np.random.default_rng([seed, 3, pi, s])),
                    max_n=None,
                )
                for s in range(z["seeds"])
            ]
        )
        for w in z["ws"]:
            f = vp.cfg(y, w)
            for kind in ("ode", "sde"):
                per = []
                for s in range(z["seeds"]):
                    g = np.random.default_rng([seed, 4, pi, s])
                    if kind == "ode":
                        x = refcfg.sample(
                            f, z["n"], sampler="heun", steps=z["ode_steps"], seed=g, backend=backend
                        )
                    else:
                        x = refcfg.sample(
                            f,
                            z["n"],
                            sampler="euler_maruyama",
                            sigma="ddpm",
                            t_grid=sde_grid(z["sde_steps"]),
                            seed=g,
                            backend=backend,
                        )
                    per.append(
                        (
                            metrics.energy_distance(x, refs[s], max_n=None),
                            float(cond.log_prob(x).mean()),
                            float(vp.classifier_log_density(x, 1.0, y).mean()),
                        )
                    )
                    if s == 0 and kind == "ode":
                        kept[(label, w)] = x
                a = np.array(per)
                (d2, d2sd), (ll, llsd), (pf, pfsd) = (_stats(a[:, j]) for j in range(3))
                rows.append(
                    {
                        "prompt": label,
                        "w": w,
                        "sampler": kind,
                        "D2": d2,
                        "D2 sd": d2sd,
                        "D2 floor": floor[0],
                        "log p(x|y)": ll,
                        "log p(x|y) sd": llsd,
                        "log p(y|x)": pf,
                        "log p(y|x) sd": pfsd,
                    }
                )
        # exact reference values of the law itself
        xs = refs[0]
        rows.append(
            {
                "prompt": label,
                "w": "exact",
                "sampler": "p(x|y)",
                "D2": floor[0],
                "D2 sd": floor[1],
                "D2 floor": floor[0],
                "log p(x|y)": float(cond.log_prob(xs).mean()),
                "log p(y|x)": float(vp.classifier_log_density(xs, 1.0, y).mean()),
            }
        )
    # 3. per-particle prompts against the joint law
    joint = []
    jfloor = _stats(
        [
            metrics.energy_distance(
                np.hstack(fam.sample(z["n"], np.random.default_rng([seed, 6, s]))),
                np.hstack(fam.sample(z["n"], np.random.default_rng([seed, 7, s]))),
                max_n=None,
            )
            for s in range(z["seeds"])
        ]
    )
    for w in z["ws"]:
        per = []
        for s in range(z["seeds"]):
            g = np.random.default_rng([seed, 5, s])
            Yp = fam.prompt_prior.sample(z["n"], g)
            x = refcfg.sample(
                vp.cfg(Yp, w), z["n"], sampler="heun", steps=z["ode_steps"], seed=g, backend=backend
            )
            ex, ey = fam.sample(z["n"], np.random.default_rng([seed, 6, s]))
            per.append(metrics.energy_distance(np.hstack([x, Yp]), np.hstack([ex, ey]), max_n=None))
        m_, sd_ = _stats(per)
        joint.append(
            {
                "w": w,
                "sampler": "heun",
                "D2 (x, y) vs p(x, y)": m_,
                "D2 sd": sd_,
                "D2 floor": jfloor[0],
                "floor sd": jfloor[1],
            }
        )
    # density of p(x | y) on a grid for the figure
    gx = np.linspace(-5, 5, 121)
    G = np.stack(np.meshgrid(gx, gx), -1).reshape(-1, 2)
    dens = {
        label: np.exp(fam.conditional(np.array(y)).log_prob(G)).reshape(121, 121)
        for label, y in PROMPTS.items()
    }
    best = {}
    for label in PROMPTS:
        rs = [
            r for r in rows if r["prompt"] == label and r["w"] != "exact" and r["sampler"] == "ode"
        ]
        best[label] = min(rs, key=lambda r: r["D2"])["w"]
    key = {
        "max_cg_minus_cfg": max(r["max |CG - CFG|"] for r in ident),
        "max_cfg_w1_minus_conditional": max(
            r.get("max |CFG(w=1) - conditional|", 0.0) for r in ident
        ),
        "best_w_ode": best,
        "seeds": z["seeds"],
    }
    curves = [dict(r) for r in rows if r["w"] != "exact"]
    show = next(iter(PROMPTS))
    samples = {
        "label": show,
        "grid": gx,
        "density": dens[show],
        "x": {w: kept[(show, w)] for w in z["ws"] if (show, w) in kept},
    }

    return Result(
        NAME,
        TITLE,
        rows,
        key,
        tables={
            "classifier guidance = CFG (trajectories)": ident,
            "per-particle prompts vs the joint law": joint,
        },
        figure_data={"curves": curves, "joint": joint, "samples": samples},
    )
