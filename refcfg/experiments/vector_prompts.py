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
   law p(x, y) in R^4 (D^2);
4. trains the learned model of ``refcfg.learn.vector_prompt`` (an MLP taking y as a vector, with a
   learned null embedding; label dropout eta = 0.1, notes eqs. 63-64) and compares it with the exact
   fields: the relative L2 error of its conditional and null halves along the path (points and
   prompts drawn from the joint law), then learned CFG w u_theta(x|y) + (1 - w) u_theta(x|null) for
   the fixed prompts, from the same initial points as exact CFG of the same w (Heun): D^2 to p(x|y),
   D^2 to the exact CFG law of that w, the mean distance between learned and exact endpoints, and the
   prompt fit log p(y|x).
Every sample is drawn; spreads are over seeds (common random numbers across w within a seed; part 4:
one trained model per run, so its spread is over runs with different ``seed``).
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
            learn=dict(steps=800, width=32, depth=2, batch=256),
            learn_ws=(1.0, 2.0, 4.0),
        )
    return dict(
        ws=(0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0),
        n=2000,
        seeds=3,
        ode_steps=60,
        sde_steps=200,
        n_traj=500,
        traj_steps=100,
        learn=dict(steps=3000, width=64, depth=3, batch=512),
        learn_ws=(1.0, 1.5, 2.0, 3.0, 4.0),
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
    learned, learned_err = learned_model(vp, z, seed)
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
        "learned_field_error": {k: v for k, v in learned_err.items() if k.endswith("err")},
        "learned_best_w": _learned_best(learned),
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
            "learned model: field errors": [learned_err],
            "learned model: CFG vs the exact fields and laws": learned,
        },
        figure_data={"curves": curves, "joint": joint, "samples": samples, "learned": learned},
    )


def learned_model(vp=None, z=None, seed: int = 0, *, fast: bool = False):
    """Part 4 (module docstring): train the vector-prompt model, then its field errors and its CFG
    samples against the exact fields and laws. Returns (rows, field-error row). ``vp`` and ``z``
    default to the study's path and size table (``fast`` picks the small one), so part 4 also runs
    on its own (verification/seeds_guidance_studies.py)."""
    from ..vector_prompts import VectorPromptPath

    vp = VectorPromptPath(family(), "linear") if vp is None else vp
    z = _sizes(fast) if z is None else z
    import refcfg

    from ..learn.vector_prompt import LearnedVectorCFG, train_vector_cfg

    fam = vp.family
    L = z["learn"]
    model, losses, secs = train_vector_cfg(
        fam,
        schedule=vp.schedule,
        eta=0.1,
        steps=L["steps"],
        batch=L["batch"],
        width=L["width"],
        depth=L["depth"],
        seed=np.random.default_rng([seed, 8]),
        warmup=min(200, L["steps"] // 5),
        progress=False,
    )
    # relative L2 field errors, points and prompts from the joint path, t on a grid in [0.05, 0.95]
    rng = np.random.default_rng([seed, 9])
    num = {"cond": 0.0, "null": 0.0}
    den = {"cond": 0.0, "null": 0.0}
    for t in np.linspace(0.05, 0.95, 10):
        zz, yy = fam.sample(z["n"], rng)
        v = vp.schedule.values(np.array([t]))
        x = v.alpha[0] * zz + v.beta[0] * rng.standard_normal(zz.shape)
        for half, y in (("cond", yy), ("null", None)):
            u = vp.velocity(x, t, y)
            num[half] += float(np.sum((model.velocity(x, t, y) - u) ** 2))
            den[half] += float(np.sum(u**2))
    err = {
        "model": f"width {L['width']}, depth {L['depth']}, {L['steps']} steps",
        "cond. field err": float(np.sqrt(num["cond"] / den["cond"])),
        "null field err": float(np.sqrt(num["null"] / den["null"])),
        "final loss": float(np.mean(losses[-50:])),
        "train s": secs,
    }
    rows = []
    for pi, (label, y) in enumerate(PROMPTS.items()):
        y = np.array(y)
        cond = fam.conditional(y)
        per = {w: [] for w in z["learn_ws"]}
        for s in range(z["seeds"]):
            g = np.random.default_rng([seed, 10, pi, s])
            x0 = g.standard_normal((z["n"], fam.d))
            ref = cond.sample(z["n"], g)
            for w in z["learn_ws"]:
                kw = dict(sampler="heun", steps=z["ode_steps"], x_init=x0, backend="numpy")
                xe = refcfg.sample(vp.cfg(y, w), z["n"], **kw)
                xl = refcfg.sample(LearnedVectorCFG(model, y, w, vp.schedule), z["n"], **kw)
                per[w].append(
                    (
                        metrics.energy_distance(xl, ref, max_n=None),
                        metrics.energy_distance(xl, xe, max_n=None),
                        metrics.energy_distance(xe, ref, max_n=None),
                        float(np.linalg.norm(xl - xe, axis=1).mean()),
                        float(vp.classifier_log_density(xl, 1.0, y).mean()),
                    )
                )
        for w, v in per.items():
            a = np.array(v)
            st = [_stats(a[:, j]) for j in range(5)]
            rows.append(
                {
                    "prompt": label,
                    "w": w,
                    "D2 to p(x|y)": st[0][0],
                    "D2 sd": st[0][1],
                    "D2 to exact CFG(w)": st[1][0],
                    "D2 exact sd": st[1][1],
                    "exact CFG D2 to p(x|y)": st[2][0],
                    "mean |x - x_exact|": st[3][0],
                    "log p(y|x)": st[4][0],
                }
            )
    return rows, err


def _learned_best(rows) -> dict:
    """The grid w at which the learned model's CFG samples are closest to p(x|y), per prompt."""
    out = {}
    for r in rows:
        if r["prompt"] not in out or r["D2 to p(x|y)"] < out[r["prompt"]][1]:
            out[r["prompt"]] = (r["w"], r["D2 to p(x|y)"])
    return {k: v[0] for k, v in out.items()}
