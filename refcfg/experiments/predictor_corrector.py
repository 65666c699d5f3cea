"""Result 6: what the Gaussian closed forms say about the law CFG reaches as w grows (arXiv 2408.09000).

Bradley and Nakkiran ("Classifier-free guidance is a predictor-corrector", arXiv 2408.09000) show that
CFG with DDIM (the ODE) and with DDPM (the SDE) reach different laws, neither the tilted law
p(x|y)^w p(x)^(1-w)/Z, and that in the SDE limit CFG-DDPM is a DDIM predictor plus a Langevin
corrector targeting the tilted law with gamma' = 2 gamma - 1. For p(x|y) = N(m1, V1), p(x) = N(m0, V0),
r = V1/V0 < 1, delta = 1/V1 - 1/V0 (refcfg.gaussian, module docstring):

* tilted:  Var = 1 / (1/V0 + w delta)                       ~ 1/(w delta)
* ODE:     Var = V1 r^(w-1)                                  geometric collapse, Var/Var_tilt -> 0
* SDE:     Var = (1 - r^(2w-1)) / ((2w-1) delta)             ~ 1/((2w-1) delta), Var/Var_tilt -> 1/2
  exactly the tilted variance at w_eff = (2w-1)/(1 - r^(2w-1)) - V1/(V0-V1) ~ 2w - 1 - V1/(V0-V1);
* means:   SDE and tilted both -> (m1 V0 - m0 V1)/(V0 - V1); the ODE mean has another limit.

The table evaluates these (closed forms, cross-checked by solve_ivp) and the samplers at two weights.
"""

from __future__ import annotations

import numpy as np

from ..gaussian import cfg_endpoint_1d, discrete_endpoint_1d, tilted_gaussian
from ._common import Result, sde_grid
from .gaussian_pushforward import _single_gaussian_field

NAME = "predictor-corrector"
TITLE = "Large-w limits of CFG (ODE vs DDPM-like SDE vs tilted law), arXiv 2408.09000"

WEIGHTS = (1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 16.0, 32.0, 64.0, 128.0)


def limits_table(m1, v1, m0, v0, weights):
    delta = 1.0 / v1 - 1.0 / v0
    r = v1 / v0
    rows = []
    for w in weights:
        mo, vo = cfg_endpoint_1d(m1, v1, m0, v0, w, sampler="ode")
        ms, vs = cfg_endpoint_1d(m1, v1, m0, v0, w, sampler="sde")
        t = tilted_gaussian(m1, v1, m0, v0, w)
        t2 = tilted_gaussian(m1, v1, m0, v0, 2 * w - 1)
        mt, vt = float(t.mean[0]), float(t.cov[0, 0])
        w_eff_sde = (1.0 / vs - 1.0 / v0) / delta
        w_eff_formula = (
            (2 * w - 1) / (-np.expm1((2 * w - 1) * np.log(r))) - v1 / (v0 - v1)
            if w != 0.5
            else float("nan")
        )
        rows.append(
            {
                "w": w,
                "var_ode": vo,
                "var_sde": vs,
                "var_tilt": vt,
                "ode/tilt": vo / vt,
                "sde/tilt": vs / vt,
                "sde/tilt(2w-1)": vs / float(t2.cov[0, 0]),
                "w_eff_sde": w_eff_sde,
                "w_eff_formula": w_eff_formula,
                "w_eff_ode": (1.0 / vo - 1.0 / v0) / delta,
                "mean_ode": mo,
                "mean_sde": ms,
                "mean_tilt": mt,
            }
        )
    return rows


def run(fast: bool = False, seed: int = 0) -> Result:
    """Result 6. ``fast``: fewer weights and samples."""
    m1, v1, m0, v0 = 1.0, 0.25, 0.0, 1.0
    weights = (1.0, 2.0, 8.0, 128.0) if fast else WEIGHTS
    rows = limits_table(m1, v1, m0, v0, weights)
    rows2 = limits_table(0.5, 0.5, -0.5, 1.0, weights)
    # the closed forms against solve_ivp at w = 8 (at w = 128 the ODE variance is ~1e-77, below
    # what a relative-tolerance ODE solver resolves)
    wmax = weights[-1]
    ivp = max(
        abs(
            cfg_endpoint_1d(m1, v1, m0, v0, 8.0, sampler=s, method="ivp")[1]
            / cfg_endpoint_1d(m1, v1, m0, v0, 8.0, sampler=s)[1]
            - 1.0
        )
        for s in ("ode", "sde")
    )
    # samplers at w in {3, 8}: sample variance ratios vs the closed-form ratios
    import refcfg

    n = 3000 if fast else 10000
    rng = np.random.default_rng(seed)
    srows = []
    for w in (8.0,) if fast else (3.0, 8.0):
        field = _single_gaussian_field(
            np.array([m1]), np.array([[v1]]), np.array([m0]), np.array([[v0]]), w
        )
        vt = float(tilted_gaussian(m1, v1, m0, v0, w).cov[0, 0])
        for kind in ("ode", "sde"):
            if kind == "ode":
                ts = np.linspace(0.0, 1.0, (100 if fast else 200) + 1)
                x = refcfg.sample(field, n, sampler="heun", t_grid=ts, seed=rng)[:, 0]
                sname, t0 = "heun", 0.0
            else:
                ts = sde_grid(200 if fast else 1000, 0.0)
                x = refcfg.sample(
                    field, n, sampler="euler_maruyama", t_grid=ts, sigma="ddpm", seed=rng
                )[:, 0]
                sname, t0 = "euler_maruyama", 0.0
            _, vc = cfg_endpoint_1d(m1, v1, m0, v0, w, sampler=kind, t_start=t0)
            _, vd = discrete_endpoint_1d(
                m1, v1, m0, v0, w, ts, sname, sigma="ddpm" if kind == "sde" else None
            )
            sv = float(x.var(ddof=1))
            srows.append(
                {
                    "w": w,
                    "sampler": sname,
                    "steps": len(ts) - 1,
                    "ratio_exact": vc / vt,
                    "ratio_discrete": vd / vt,
                    "ratio_sample": sv / vt,
                    "z_var": (sv - vd) / (vd * np.sqrt(2.0 / n)),
                }
            )
    last = rows[-1]
    key = {
        "case": f"m1={m1}, V1={v1}, m0={m0}, V0={v0}",
        "w_max": wmax,
        "sde/tilt at w_max": last["sde/tilt"],
        "sde/tilt(2w-1) at w_max": last["sde/tilt(2w-1)"],
        "ode/tilt at w_max": last["ode/tilt"],
        "w_eff_sde at w_max": last["w_eff_sde"],
        "max |w_eff - formula|": max(
            abs(r["w_eff_sde"] - r["w_eff_formula"]) for r in rows if r["w"] != 1.0
        ),
        "mean_sde - mean_tilt at w_max": last["mean_sde"] - last["mean_tilt"],
        "mean limit (m1 V0 - m0 V1)/(V0 - V1)": (m1 * v0 - m0 * v1) / (v0 - v1),
        "max rel |closed - ivp| of the variances at w = 8": ivp,
        "max |z_var| samplers": max(abs(r["z_var"]) for r in srows),
    }

    wg = np.geomspace(1.0, 128.0, 40)  # the figure's weights
    data = dict(
        m1=m1, v1=v1, m0=m0, v0=v0, srows=srows, wg=wg, tab=limits_table(m1, v1, m0, v0, wg)
    )

    return Result(
        NAME,
        TITLE,
        rows,
        key,
        tables={
            "second case m1=0.5, V1=0.5, m0=-0.5, V0=1 (r = 1/2)": rows2,
            "samplers (variance ratio to the tilted law)": srows,
        },
        figure_data=data,
    )
