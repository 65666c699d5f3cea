"""Noisy prompt pairs: how far does CFG of a model trained on noisy labels land from the clean law?

Labels are flipped with the symmetric rate rho (``refcfg.noisy_labels``): the best model of such
pairs is the exact field of p(x | y~), a mixture that puts mass 1 - rho on the clean class and rho on
the other. CFG with weight w of that exact noisy field is sampled (probability-flow ODE and DDPM-like
SDE) and measured against the CLEAN class law p(x | y = 0): squared energy distance D^2, mean Bayes
confidence E p(y = 0 | x) under the clean law, and mean log p(x | y = 0). The tilted law
p(x|y~)^w p(x)^(1-w) / Z is measured too.

What is exact and what is sampled:
- "gauss-1d" (N(-1, 1) vs N(1, 0.5^2)): the tilted law (w = 1: the noisy conditional itself) by
  quadrature on a grid of 24001 points (D^2 = 2 int (F - G)^2 dx); the ODE by *quantile transport*:
  in 1-D the flow map is increasing, so the M points Phi^-1((i + 1/2) / M) carried by RK4 are the
  quantiles of the CFG law. D^2 of those M points to the clean law uses the exact E|a - Y| of a
  Gaussian mixture, so the ODE rows carry no sampling noise, only the step and quantile errors,
  which the rho = 0, w = 1 row measures (the "floor"). The SDE is sampled (D^2 against the exact
  law, floor E|Y - Y'| / n, the mean of the V-statistic for a perfect sampler).
- "two-class-2d": everything sampled; D^2 against a fresh exact sample of the clean class of the
  same size; floor = D^2 between two exact samples.
Seeds: common random numbers across rho and w within a seed; spreads are over seeds.
"""

from __future__ import annotations

import numpy as np

from .. import metrics
from . import tilted
from ._common import Result, sde_grid

NAME = "noisy-labels"
TITLE = "Noisy prompt pairs: CFG of the noisy conditional vs the clean class law"

Y = 0  # the class that is prompted (noisy label y~ = 0)
GRID_1D = np.linspace(-14.0, 12.0, 24001)


def _sizes(fast: bool) -> dict:
    if fast:
        return dict(
            rhos=(0.0, 0.2, 0.4),
            ws=(1.0, 2.0, 3.0, 5.0),
            seeds=2,
            M=600,
            ode_steps=40,
            n1=300,
            n2=300,
            ode2_steps=30,
            sde_steps=80,
            w_fine=np.linspace(0.5, 10.0, 20),
        )
    return dict(
        rhos=(0.0, 0.1, 0.2, 0.3, 0.4, 0.45),
        ws=(1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0),
        seeds=3,
        M=4000,
        ode_steps=200,
        n1=3000,
        n2=2000,
        ode2_steps=60,
        sde_steps=200,
        w_fine=np.linspace(0.5, 12.0, 116),
    )


# ------------------------------------------------------------------------------------------
# 1-D exact pieces (Gaussian-mixture closed forms and quadrature)
# ------------------------------------------------------------------------------------------


def _params_1d(gmm):
    """(weights, means, standard deviations) of a 1-D GMM."""
    return gmm.weights, gmm.means[:, 0], np.sqrt(gmm.eigvals[:, 0])


def _e_abs_normal(delta, s):
    """E|N(delta, s^2)| = s sqrt(2/pi) exp(-delta^2 / 2 s^2) + delta (1 - 2 Phi(-delta / s))."""
    from scipy.special import ndtr

    return s * np.sqrt(2.0 / np.pi) * np.exp(-0.5 * (delta / s) ** 2) + delta * (
        1.0 - 2.0 * ndtr(-delta / s)
    )


def _e_abs_self(gmm) -> float:
    """E|Y - Y'| for Y, Y' independent draws of a 1-D GMM (closed form)."""
    w, m, s = _params_1d(gmm)
    S = np.sqrt(s[:, None] ** 2 + s[None, :] ** 2)
    return float(np.sum(w[:, None] * w[None, :] * _e_abs_normal(m[:, None] - m[None, :], S)))


def energy_to_law_1d(x, gmm) -> float:
    """Squared energy distance (V-statistic in the sample) between the points x (n,) and a 1-D GMM:
    2 mean_i E|x_i - Y| - mean_ij |x_i - x_j| - E|Y - Y'|, the expectations over Y in closed form."""
    x = np.sort(np.asarray(x, dtype=np.float64).ravel())
    n = x.size
    w, m, s = _params_1d(gmm)
    exy = float(np.mean(np.sum(w * _e_abs_normal(x[:, None] - m, s), axis=1)))
    exx = float(2.0 * np.sum((2.0 * np.arange(n) - n + 1) * x) / (n * n))
    return 2.0 * exy - exx - _e_abs_self(gmm)


def _cdf_1d(gmm, x):
    from scipy.special import ndtr

    w, m, s = _params_1d(gmm)
    return np.sum(w * ndtr((x[:, None] - m) / s), axis=1)


def tilted_summary_1d(clean, noisy, w: float) -> dict:
    """D^2, confidence and mean log p(x|y) of the tilted law of the noisy pairs against the clean
    class law, by quadrature on ``GRID_1D`` (trapezoid)."""
    x = GRID_1D
    lt = tilted.log_density(noisy, x[:, None], Y, w)
    p = np.exp(lt - lt.max())
    p /= np.trapezoid(p, x)
    F = np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(x))])
    G = _cdf_1d(clean.class_gmm(Y), x)
    post = np.exp(metrics.class_log_posteriors(x[:, None], clean)[:, Y])
    return {
        "D2": float(2.0 * np.trapezoid((F - G) ** 2, x)),
        "conf": float(np.trapezoid(p * post, x)),
        "loglik": float(np.trapezoid(p * clean.class_gmm(Y).log_prob(x[:, None]), x)),
    }


# ------------------------------------------------------------------------------------------
# the study
# ------------------------------------------------------------------------------------------


def _summary(x, clean, ref=None) -> dict:
    """D^2 (to the exact 1-D law, or to the reference sample ``ref``), confidence, mean log p(x|y)."""
    if ref is None:
        d2 = energy_to_law_1d(x[:, 0], clean.class_gmm(Y))
    else:
        d2 = metrics.energy_distance(x, ref, max_n=None)
    return {
        "D2": d2,
        "conf": metrics.class_confidence(x, clean, Y).mean_prob,
        "loglik": metrics.mean_log_likelihood(x, clean, Y)[0],
    }


def _rows(problem, sampler, rho, w, per_seed, floor):
    a = {k: np.array([r[k] for r in per_seed]) for k in ("D2", "conf", "loglik")}
    sd = (lambda v: float(v.std(ddof=1))) if len(per_seed) > 1 else (lambda v: 0.0)
    return {
        "problem": problem,
        "sampler": sampler,
        "rho": rho,
        "w": w,
        "D2": float(a["D2"].mean()),
        "D2 sd": sd(a["D2"]),
        "D2 floor": floor,
        "conf": float(a["conf"].mean()),
        "conf sd": sd(a["conf"]),
        "loglik": float(a["loglik"].mean()),
        "loglik sd": sd(a["loglik"]),
        "_D2_seeds": a["D2"],
    }


def run(fast: bool = False, seed: int = 0, backend: str = "auto", sizes=None) -> Result:
    """The noisy-pairs study (module docstring). ``fast``: 3 rho x 4 w, small samples. ``sizes``:
    overrides of the size table (its keys: rhos, ws, seeds, M, ode_steps, n1, n2, ode2_steps,
    sde_steps, w_fine), e.g. the full grids at fast sample sizes for seed spreads."""
    from scipy.stats import norm

    import refcfg

    from ..noisy_labels import relabel, symmetric_confusion

    z = _sizes(fast)
    unknown = sorted(set(sizes or {}) - set(z))
    if unknown:
        raise ValueError(f"sizes: unknown key(s) {unknown}; known: {', '.join(z)}")
    z.update(sizes or {})
    rows, kept = [], {"1d": {}, "2d": {}}
    for pi, problem in enumerate(("gauss-1d", "two-class-2d")):
        clean = refcfg.problem(problem)
        d = clean.d
        n = z["n1"] if d == 1 else z["n2"]
        # common random numbers: one generator state per (problem, seed index), reused for every
        # rho and w
        ss = [np.random.SeedSequence([seed, pi, s]) for s in range(z["seeds"])]
        refs = [clean.class_gmm(Y).sample(n, np.random.default_rng(q.spawn(1)[0])) for q in ss]
        if d == 1:
            sde_floor = _e_abs_self(clean.class_gmm(Y)) / n
        else:
            sde_floor = float(
                np.mean(
                    [
                        metrics.energy_distance(
                            refs[s],
                            clean.class_gmm(Y).sample(n, np.random.default_rng([seed, pi, s, 7])),
                            max_n=None,
                        )
                        for s in range(z["seeds"])
                    ]
                )
            )
        for rho in z["rhos"]:
            noisy = relabel(clean, symmetric_confusion(clean.n_classes, rho))
            path = refcfg.GMMPath(noisy, "linear")
            for w in z["ws"]:
                field = path.cfg(Y, w)
                if d == 1:
                    q0 = norm.ppf((np.arange(z["M"]) + 0.5) / z["M"])[:, None]
                    xo = refcfg.sample(
                        field,
                        z["M"],
                        sampler="rk4",
                        steps=z["ode_steps"],
                        x_init=q0,
                        backend=backend,
                    )
                    rows.append(_rows(problem, "ode", rho, w, [_summary(xo, clean)], None))
                    kept["1d"][(rho, w)] = xo[:, 0]
                    ts = tilted_summary_1d(clean, noisy, w)
                    rows.append(_rows(problem, "tilted", rho, w, [ts], 0.0))
                else:
                    ode = []
                    for s in range(z["seeds"]):
                        xo = refcfg.sample(
                            field,
                            n,
                            sampler="heun",
                            steps=z["ode2_steps"],
                            seed=np.random.default_rng(ss[s]),
                            backend=backend,
                        )
                        ode.append(_summary(xo, clean, refs[s]))
                        if s == 0:
                            kept["2d"][(rho, w)] = xo
                    rows.append(_rows(problem, "ode", rho, w, ode, sde_floor))
                sde = []
                for s in range(z["seeds"]):
                    xs = refcfg.sample(
                        field,
                        n,
                        sampler="euler_maruyama",
                        sigma="ddpm",
                        t_grid=sde_grid(z["sde_steps"]),
                        seed=np.random.default_rng(ss[s]),
                        backend=backend,
                    )
                    sde.append(_summary(xs, clean, None if d == 1 else refs[s]))
                rows.append(_rows(problem, "sde", rho, w, sde, sde_floor))
    # the 1-D ODE floor: quantile and step error of the clean conditional (rho = 0, w = 1)
    ode_floor = next(
        r["D2"]
        for r in rows
        if r["problem"] == "gauss-1d"
        and r["sampler"] == "ode"
        and r["rho"] == 0.0
        and r["w"] == 1.0
    )
    for r in rows:
        if r["problem"] == "gauss-1d" and r["sampler"] == "ode":
            r["D2 floor"] = ode_floor
    best = _best_w(rows, z)
    fine = _fine_tilted(z)
    key = _key(rows, best, fine, z)
    table = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    curves = [
        {k: v for k, v in r.items() if k in ("problem", "sampler", "rho", "w", "D2", "D2 sd")}
        for r in table
    ]
    samples = {
        "1d": {
            rho: kept["1d"].get(
                (
                    rho,
                    next(
                        (
                            b["best w"]
                            for b in best
                            if b["problem"] == "gauss-1d"
                            and b["sampler"] == "ode"
                            and b["rho"] == rho
                        ),
                        1.0,
                    ),
                )
            )
            for rho in z["rhos"]
        },
        "2d_best": None,
        "2d_w1": None,
    }
    rho_max = max(z["rhos"])
    b2 = next(
        b["best w"]
        for b in best
        if b["problem"] == "two-class-2d" and b["sampler"] == "ode" and b["rho"] == rho_max
    )
    samples["2d_best"], samples["2d_w1"] = kept["2d"][(rho_max, b2)], kept["2d"][(rho_max, 1.0)]
    samples["2d_clean"] = (
        refcfg.problem("two-class-2d")
        .class_gmm(Y)
        .sample(len(samples["2d_best"]), np.random.default_rng([seed, 99]))
    )
    samples["rho_max"], samples["w_best_2d"] = rho_max, b2

    return Result(
        NAME,
        TITLE,
        table,
        key,
        tables={
            "best w per rho": best,
            "tilted law (1-D, quadrature), fine w grid": _fine_rows(fine),
        },
        figure_data={"curves": curves, "fine": fine, "samples": samples},
    )


def _best_w(rows, z) -> list[dict]:
    """Per (problem, sampler, rho): the w of the grid with the smallest mean D^2, the spread of the
    per-seed arg-min, D^2 there and at w = 1, and whether it reaches the floor."""
    out = []
    keys = sorted(
        {(r["problem"], r["sampler"], r["rho"]) for r in rows}, key=lambda k: (k[0], k[1], k[2])
    )
    for problem, sampler, rho in keys:
        rs = [r for r in rows if (r["problem"], r["sampler"], r["rho"]) == (problem, sampler, rho)]
        ws = np.array([r["w"] for r in rs])
        m = np.array([r["D2"] for r in rs])
        seeds = np.stack([r["_D2_seeds"] for r in rs])  # (W, S)
        arg = ws[np.argmin(seeds, axis=0)]
        i = int(np.argmin(m))
        at1 = next(r for r in rs if r["w"] == 1.0)
        floor = rs[i]["D2 floor"]
        sd = rs[i]["D2 sd"]
        out.append(
            {
                "problem": problem,
                "sampler": sampler,
                "rho": rho,
                "best w": float(ws[i]),
                "best w sd (seeds)": float(arg.std(ddof=1)) if arg.size > 1 else 0.0,
                "D2 at best": float(m[i]),
                "D2 sd": sd,
                "D2 at w=1": at1["D2"],
                "D2 floor": floor,
                "reaches floor": bool(m[i] <= floor + 2.0 * max(sd, 0.0) + 1e-12)
                if floor is not None
                else "",
                "conf at best": rs[i]["conf"],
                "conf at w=1": at1["conf"],
            }
        )
    return out


def _fine_tilted(z) -> dict:
    """1-D tilted law on the fine w grid for every rho (quadrature): D^2 and confidence."""
    import refcfg

    from ..noisy_labels import relabel, symmetric_confusion

    clean = refcfg.problem("gauss-1d")
    out = {"w": np.asarray(z["w_fine"]), "D2": {}, "conf": {}}
    for rho in z["rhos"]:
        noisy = relabel(clean, symmetric_confusion(2, rho))
        s = [tilted_summary_1d(clean, noisy, float(w)) for w in z["w_fine"]]
        out["D2"][rho] = np.array([v["D2"] for v in s])
        out["conf"][rho] = np.array([v["conf"] for v in s])
    out["clean_conf"] = tilted_summary_1d(clean, clean, 1.0)["conf"]
    return out


def _fine_rows(fine) -> list[dict]:
    rows = []
    for rho, d2 in fine["D2"].items():
        i = int(np.argmin(d2))
        rows.append(
            {
                "rho": rho,
                "best w (tilted)": float(fine["w"][i]),
                "D2 at best": float(d2[i]),
                "D2 at w=1": float(np.interp(1.0, fine["w"], d2)),
                "conf at best": float(fine["conf"][rho][i]),
                "clean conf": fine["clean_conf"],
            }
        )
    return rows


def _key(rows, best, fine, z) -> dict:
    def b(problem, sampler):
        return {
            f"rho={r['rho']:g}": r["best w"]
            for r in best
            if r["problem"] == problem and r["sampler"] == sampler
        }

    def reach(problem, sampler):
        return [
            r["rho"]
            for r in best
            if r["problem"] == problem
            and r["sampler"] == sampler
            and r["rho"] > 0
            and r["reaches floor"] is True
        ]

    tilt_min = {f"rho={rho:g}": float(d2.min()) for rho, d2 in fine["D2"].items()}
    w1 = {
        r["rho"]: r["D2"]
        for r in rows
        if r["problem"] == "gauss-1d" and r["sampler"] == "tilted" and r["w"] == 1.0
    }
    ode1 = {
        r["rho"]: r["D2"]
        for r in rows
        if r["problem"] == "gauss-1d" and r["sampler"] == "ode" and r["w"] == 1.0
    }
    return {
        "best_w_1d_ode": b("gauss-1d", "ode"),
        "best_w_1d_sde": b("gauss-1d", "sde"),
        "best_w_2d_ode": b("two-class-2d", "ode"),
        "best_w_2d_sde": b("two-class-2d", "sde"),
        "rho_recovered_1d_ode": reach("gauss-1d", "ode"),
        "rho_recovered_2d_ode": reach("two-class-2d", "ode"),
        "rho_recovered_2d_sde": reach("two-class-2d", "sde"),
        "tilted_min_D2_1d": tilt_min,
        # consistency: at w = 1 the ODE law is the noisy conditional, whose D^2 is exact
        "ode_vs_quadrature_at_w1": max(abs(ode1[r] - w1[r]) for r in w1),
        "seeds": z["seeds"],
    }
