"""Underfit models: does w > 1 bring a learned model's samples closer to p(x | y)?

NumPy MLPs of growing capacity and training length are trained with CFG label dropout
(``refcfg.learn.train_cfg``, eta = 0.1, the loss of the notes' eq. 66) on "two-class-2d". For each:

- field error: the relative L2 error of the conditional and the unconditional halves against the
  exact fields, averaged over t in [0.05, 0.95] (``refcfg.learn.compare.field_errors``);
- CFG at several w (Heun ODE, NumPy backend), from the same initial points as the exact CFG sampler of
  the same w: squared energy distance D^2 to an exact sample of p(x | y = 0) (the target), D^2 to the
  exact CFG push-forward of the same w (what the model should produce at that w), the mean distance
  between the learned and the exact endpoint of each particle (same initial point), and the mean
  Bayes confidence p(y = 0 | x) under the exact classifier.
- autoguidance (arXiv 2406.02507) with learned models: the best model's conditional guided by the
  weakest model's conditional, w u_big(x|y) + (1 - w) u_small(x|y).

Everything is sampled (spreads over training seeds; the exact references use the same initial points
per seed). The fast variant trains two tiny models for a few hundred steps: it checks the plumbing,
not the answer.
"""

from __future__ import annotations

import numpy as np

from .. import metrics
from ._common import Result

NAME = "underfit"
TITLE = "Underfit models: CFG of learned fields vs p(x|y) and vs exact CFG"

PROBLEM = "two-class-2d"
Y = 0


def _sizes(fast):
    if fast:
        return dict(
            models=((8, 1, 150), (32, 2, 600)),
            ws=(1.0, 2.0, 3.0),
            seeds=1,
            n=400,
            steps=30,
            batch=256,
            err_n=500,
            auto_ws=(1.0, 2.0),
        )
    return dict(
        models=((8, 1, 300), (16, 2, 1000), (32, 2, 2500), (64, 3, 5000)),
        ws=(1.0, 1.25, 1.5, 2.0, 3.0, 4.0),
        seeds=3,
        n=2000,
        steps=60,
        batch=512,
        err_n=2000,
        auto_ws=(1.0, 1.5, 2.0, 3.0),
    )


def _mean_sd(v):
    v = np.asarray(v, dtype=np.float64)
    return float(v.mean()), (float(v.std(ddof=1)) if v.size > 1 else 0.0)


def train_model(width: int, depth: int, steps: int, batch: int, seed: int):
    """One model of the study: ``train_cfg`` on PROBLEM with label dropout eta = 0.1 (the default),
    Adam with a warm-up of min(200, steps / 5) steps, one BLAS thread (the recipe the sweep spec
    ``verification/sweeps/underfit.toml`` ships its models from)."""
    from ..learn import train_cfg

    return train_cfg(
        PROBLEM,
        steps=steps,
        width=width,
        depth=depth,
        batch=batch,
        seed=seed,
        progress=False,
        warmup=min(200, steps // 5),
        blas_threads=1,
    ).model


def run(fast: bool = False, seed: int = 0, backend: str = "auto", sizes=None) -> Result:
    """The underfit study (module docstring). ``backend`` runs the exact CFG references. ``sizes``:
    overrides of the size table (its keys: models, ws, seeds, n, steps, batch, err_n, auto_ws), e.g.
    more models at fast sample sizes for seed spreads."""
    import refcfg

    from ..guidance import guided
    from ..learn.compare import field_errors, mean_over
    from ..learn.fields import LearnedField, learned_cfg

    z = _sizes(fast)
    unknown = sorted(set(sizes or {}) - set(z))
    if unknown:
        raise ValueError(f"sizes: unknown key(s) {unknown}; known: {', '.join(z)}")
    z.update(sizes or {})
    path = refcfg.GMMPath(refcfg.problem(PROBLEM), "linear")
    mix = path.mixture
    per = {}  # (model index, w) -> list of metric tuples over seeds
    errs = {}  # model index -> list of (cond, uncond) errors over seeds
    auto = {}
    exact_rows = {}
    kept = {}
    for s in range(z["seeds"]):
        rng = np.random.default_rng([seed, s])
        x0 = rng.standard_normal((z["n"], mix.d))
        ref = mix.class_gmm(Y).sample(z["n"], rng)
        exact = {
            w: refcfg.sample(
                path.cfg(Y, w), z["n"], sampler="heun", steps=z["steps"], x_init=x0, backend=backend
            )
            for w in z["ws"]
        }
        for w, xe in exact.items():
            exact_rows.setdefault(w, []).append(
                (
                    metrics.energy_distance(xe, ref, max_n=None),
                    metrics.class_confidence(xe, mix, Y).mean_prob,
                )
            )
        models = []
        for i, (width, depth, steps) in enumerate(z["models"]):
            model = train_model(width, depth, steps, z["batch"], int(rng.integers(2**31)))
            models.append(model)
            fe = field_errors(
                path,
                model,
                t_grid=np.linspace(0.05, 0.95, 10),
                n=z["err_n"],
                seed=int(rng.integers(2**31)),
                blas_threads=1,
            )
            errs.setdefault(i, []).append(
                (mean_over(fe["t"], fe["conditional"]), mean_over(fe["t"], fe["unconditional"]))
            )
            for w in z["ws"]:
                x = refcfg.sample(
                    learned_cfg(model, Y, w, path.schedule),
                    z["n"],
                    sampler="heun",
                    steps=z["steps"],
                    x_init=x0,
                    backend="numpy",
                )
                per.setdefault((i, w), []).append(
                    (
                        metrics.energy_distance(x, ref, max_n=None),
                        metrics.energy_distance(x, exact[w], max_n=None),
                        float(np.linalg.norm(x - exact[w], axis=1).mean()),
                        metrics.class_confidence(x, mix, Y).mean_prob,
                    )
                )
                if s == 0:
                    kept[(i, w)] = x
        big, small = models[-1], models[0]
        for w in z["auto_ws"]:
            f = guided(
                LearnedField(big, Y, path.schedule), LearnedField(small, Y, path.schedule), w
            )
            x = refcfg.sample(
                f, z["n"], sampler="heun", steps=z["steps"], x_init=x0, backend="numpy"
            )
            auto.setdefault(w, []).append(
                (
                    metrics.energy_distance(x, ref, max_n=None),
                    metrics.class_confidence(x, mix, Y).mean_prob,
                )
            )
    rows, best = [], []
    for i, (width, depth, steps) in enumerate(z["models"]):
        ce, ue = (_mean_sd([e[j] for e in errs[i]]) for j in range(2))
        label = f"width {width}, depth {depth}, {steps} steps"
        for w in z["ws"]:
            a = np.array(per[(i, w)])
            (d2, d2sd), (d2e, d2esd), (dist, _), (conf, _) = (_mean_sd(a[:, j]) for j in range(4))
            rows.append(
                {
                    "model": label,
                    "cond. field err": ce[0],
                    "uncond. field err": ue[0],
                    "w": w,
                    "D2 to p(x|y)": d2,
                    "D2 sd": d2sd,
                    "D2 to exact CFG(w)": d2e,
                    "D2 exact sd": d2esd,
                    "mean |x - x_exact|": dist,
                    "conf": conf,
                }
            )
        rs = [r for r in rows if r["model"] == label]
        seeds = np.array([[p[0] for p in per[(i, w)]] for w in z["ws"]])  # (W, S)
        argm = np.array(z["ws"])[np.argmin(seeds, axis=0)]
        j = int(np.argmin([r["D2 to p(x|y)"] for r in rs]))
        at1 = next(r for r in rs if r["w"] == 1.0)
        best.append(
            {
                "model": label,
                "cond. field err": ce[0],
                "cond. err sd": ce[1],
                "best w": rs[j]["w"],
                "best w sd (seeds)": float(argm.std(ddof=1)) if argm.size > 1 else 0.0,
                "D2 at best": rs[j]["D2 to p(x|y)"],
                "D2 at w=1": at1["D2 to p(x|y)"],
                "w > 1 helps": bool(
                    rs[j]["w"] > 1.0
                    and rs[j]["D2 to p(x|y)"] + rs[j]["D2 sd"] < at1["D2 to p(x|y)"]
                ),
            }
        )
    exact_tab = [
        {
            "w": w,
            "exact CFG D2 to p(x|y)": _mean_sd([e[0] for e in v])[0],
            "conf": _mean_sd([e[1] for e in v])[0],
        }
        for w, v in exact_rows.items()
    ]
    auto_tab = [
        {
            "w": w,
            "autoguidance D2 to p(x|y)": _mean_sd([e[0] for e in v])[0],
            "D2 sd": _mean_sd([e[0] for e in v])[1],
            "conf": _mean_sd([e[1] for e in v])[0],
        }
        for w, v in auto.items()
    ]
    key = {
        "best_w": {b["model"]: b["best w"] for b in best},
        "w_above_1_helps": {b["model"]: b["w > 1 helps"] for b in best},
        "field_error": {b["model"]: b["cond. field err"] for b in best},
        "seeds": z["seeds"],
    }
    curves = [dict(r) for r in rows]
    ex_curve = [dict(r) for r in exact_tab]
    show = {
        "x": {w: kept[(0, w)] for w in z["ws"]},
        "label": best[0]["model"],
        "ref": mix.class_gmm(Y).sample(z["n"], np.random.default_rng([seed, 99])),
    }

    return Result(
        NAME,
        TITLE,
        rows,
        key,
        tables={
            "best w per model": best,
            "exact CFG (same initial points)": exact_tab,
            "autoguidance: best model guided by the weakest": auto_tab,
        },
        figure_data={"curves": curves, "exact": ex_curve, "auto": auto_tab, "samples": show},
    )
