"""Result 1: the Gaussian CFG pushforward (ODE, DDPM-like SDE, tilted law) and the samplers.

For p(x|y) = N(m1, V1) and p(x) = N(m0, V0) every CFG field is affine, so the endpoint laws have
closed forms (``refcfg.gaussian``): the ODE variance is V1^w V0^(1-w), the SDE variance
G^2 (1 - (V0/V1)^(2w-1)) / ((2w-1)(V1-V0)), the tilted variance 1/(w/V1 + (1-w)/V0). Part A tabulates
them (checked against solve_ivp of the moment ODEs); part B runs ``refcfg.sample`` on the exact fields
and compares the sample moments with the exact moments of the discretised sampler (Monte Carlo error
only) and with the continuous closed forms (plus discretisation error).
"""

from __future__ import annotations

import numpy as np

from ..gaussian import cfg_endpoint, cfg_endpoint_1d, discrete_endpoint_1d, tilted_gaussian
from ._common import Result, sde_grid

NAME = "gaussian-pushforward"
TITLE = "Gaussian CFG pushforward: ODE vs SDE vs tilted law, and the samplers"

WEIGHTS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0)
VARIANCES = ((0.25, 1.0), (1.0, 1.0), (2.0, 1.0))  # (V1, V0), m1 = 1, m0 = 0


def _tilted_or_nan(m1, v1, m0, v0, w):
    try:
        t = tilted_gaussian(m1, v1, m0, v0, w)
        return float(t.mean[0]), float(t.cov[0, 0])
    except ValueError:
        return float("nan"), float("nan")


def closed_form_table(weights=WEIGHTS, variances=VARIANCES, check_ivp=True):
    rows, ivp_err = [], 0.0
    for v1, v0 in variances:
        for w in weights:
            mo, vo = cfg_endpoint_1d(1.0, v1, 0.0, v0, w, sampler="ode")
            ms, vs = cfg_endpoint_1d(1.0, v1, 0.0, v0, w, sampler="sde")
            mt, vt = _tilted_or_nan(1.0, v1, 0.0, v0, w)
            if check_ivp:
                for kind, (m, v) in (("ode", (mo, vo)), ("sde", (ms, vs))):
                    mi, vi = cfg_endpoint_1d(1.0, v1, 0.0, v0, w, sampler=kind, method="ivp")
                    ivp_err = max(ivp_err, abs(mi - m) / max(1.0, abs(m)), abs(vi - v) / v)
            rows.append(
                {
                    "V1": v1,
                    "V0": v0,
                    "w": w,
                    "mean_ode": mo,
                    "var_ode": vo,
                    "mean_sde": ms,
                    "var_sde": vs,
                    "mean_tilt": mt,
                    "var_tilt": vt,
                }
            )
    return rows, ivp_err


def _single_gaussian_field(m1, V1, m0, V0, w, schedule="linear"):
    import refcfg

    p1 = refcfg.GMMPath(refcfg.GMM([1.0], [m1], [V1]), schedule)
    p0 = refcfg.GMMPath(refcfg.GMM([1.0], [m0], [V0]), schedule)
    return refcfg.guided(p1.field(), p0.field(), w)


def sampler_table(n, ode_steps, sde_steps, t_start, seed, fast=False):
    """Sample moments vs exact discrete and continuous moments, per eigen-direction."""
    import refcfg

    rng = np.random.default_rng(seed)
    theta = 0.6
    Q = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    configs = [  # (label, m1, eigenvalues of V1, m0, eigenvalues of V0, Q, w)
        ("1-D", [1.0], [0.25], [0.0], [1.0], np.eye(1), 1.0),
        ("1-D", [1.0], [0.25], [0.0], [1.0], np.eye(1), 3.0),
        ("1-D", [1.0], [2.0], [0.0], [1.0], np.eye(1), 2.0),
        ("2-D", Q @ [1.0, -0.5], [0.3, 1.2], Q @ [0.0, 0.5], [1.0, 0.8], Q, 2.0),
    ]
    if fast:
        configs = configs[1:2] + configs[3:]
    rows, zmax, disc_err = [], 0.0, {}
    for label, m1, l1, m0, l0, R, w in configs:
        V1, V0 = (R * np.asarray(l1)) @ R.T, (R * np.asarray(l0)) @ R.T
        field = _single_gaussian_field(np.asarray(m1, float), V1, np.asarray(m0, float), V0, w)
        for kind in ("ode", "sde"):
            if kind == "ode":
                ts = np.linspace(0.0, 1.0, ode_steps + 1)
                x = refcfg.sample(field, n, sampler="heun", t_grid=ts, seed=rng)
                t0, sname = 0.0, "heun"
            else:
                ts = sde_grid(sde_steps, t_start)
                x = refcfg.sample(
                    field, n, sampler="euler_maruyama", t_grid=ts, sigma="ddpm", seed=rng
                )
                t0, sname = t_start, "euler_maruyama"
            law = cfg_endpoint(m1, V1, m0, V0, w, sampler=kind, t_start=t0)
            y = x @ R  # coordinates in the common eigenbasis
            mu1, mu0, lawm = (
                R.T @ np.asarray(m1, float),
                R.T @ np.asarray(m0, float),
                R.T @ law.mean,
            )
            lawv = np.diag(R.T @ law.cov @ R)
            for j in range(len(l1)):
                md, vd = discrete_endpoint_1d(
                    mu1[j],
                    l1[j],
                    mu0[j],
                    l0[j],
                    w,
                    ts,
                    sname,
                    sigma="ddpm" if kind == "sde" else None,
                )
                sm, sv = float(y[:, j].mean()), float(y[:, j].var(ddof=1))
                zm = (sm - md) / np.sqrt(vd / n)
                zv = (sv - vd) / (vd * np.sqrt(2.0 / n))
                zmax = max(zmax, abs(zm), abs(zv))
                de = max(abs(md - lawm[j]), abs(vd - lawv[j]) / lawv[j])
                disc_err[kind] = max(disc_err.get(kind, 0.0), de)
                rows.append(
                    {
                        "case": label,
                        "dir": j,
                        "w": w,
                        "sampler": sname,
                        "steps": len(ts) - 1,
                        "mean_exact": float(lawm[j]),
                        "var_exact": float(lawv[j]),
                        "mean_discrete": md,
                        "var_discrete": vd,
                        "mean_sample": sm,
                        "var_sample": sv,
                        "z_mean": zm,
                        "z_var": zv,
                    }
                )
    return rows, zmax, disc_err


def run(fast: bool = False, seed: int = 0) -> Result:
    """Result 1. ``fast``: fewer weights and samples (< 10 s)."""
    weights = (0.0, 1.0, 2.0, 5.0) if fast else WEIGHTS
    ctab, ivp_err = closed_form_table(weights, check_ivp=not fast)
    n = 3000 if fast else 10000
    stab, zmax, disc_err = sampler_table(
        n, 50 if fast else 100, 100 if fast else 500, 0.0, seed, fast
    )
    key = {
        "max_rel_closed_vs_ivp": ivp_err,
        "max_abs_z_sample_vs_discrete": zmax,
        "max_discretisation_error_ode": disc_err["ode"],
        "max_discretisation_error_sde": disc_err["sde"],
        "n": n,
    }
    for r in ctab:
        if r["V1"] == 0.25 and r["w"] in (2.0, 5.0):
            key[f"var_ratios_w{r['w']:g}"] = {
                "ode/tilt": r["var_ode"] / r["var_tilt"],
                "sde/tilt": r["var_sde"] / r["var_tilt"],
            }

    data = figure_data()
    return Result(
        NAME, TITLE, ctab, key, tables={"samplers vs exact moments": stab}, figure_data=data
    )


def _normal_pdf(grid, m, v):
    return np.exp(-0.5 * (grid - m) ** 2 / v) / np.sqrt(2 * np.pi * v)


def figure_data(w: float = 3.0, n: int = 10000) -> dict:
    """What the figure shows: (a) the ODE, SDE and tilted endpoint variances against w for each
    (V1, V0) of ``VARIANCES`` (closed forms, m1 = 1, m0 = 0); (b) at weight w, ``n`` ODE (Heun 100,
    seed 1) and SDE (Euler-Maruyama 500, seed 2) samples of p(x|y) = N(1, 0.25), p(x) = N(0, 1)
    with the exact and tilted endpoint densities on a grid."""
    wg = np.linspace(0.0, 8.0, 161)
    curves = []
    for v1, v0 in VARIANCES:
        vo = [cfg_endpoint_1d(1, v1, 0, v0, wi, sampler="ode")[1] for wi in wg]
        vs = [cfg_endpoint_1d(1, v1, 0, v0, wi, sampler="sde")[1] for wi in wg]
        vt = [_tilted_or_nan(1, v1, 0, v0, wi)[1] for wi in wg]
        curves.append({"V1": v1, "V0": v0, "ode": vo, "sde": vs, "tilt": vt})
    field = _single_gaussian_field(
        np.array([1.0]), np.array([[0.25]]), np.array([0.0]), np.array([[1.0]]), w
    )
    import refcfg

    xo = refcfg.sample(field, n, sampler="heun", steps=100, seed=1)[:, 0]
    xs = refcfg.sample(
        field, n, sampler="euler_maruyama", t_grid=sde_grid(500, 0.0), sigma="ddpm", seed=2
    )[:, 0]
    grid = np.linspace(-0.5, 2.5, 400)
    laws = {}
    for kind in ("ode", "sde"):
        m, v = cfg_endpoint_1d(1, 0.25, 0, 1, w, sampler=kind)
        laws[kind] = (m, v, _normal_pdf(grid, m, v))
    m, v = _tilted_or_nan(1, 0.25, 0, 1, w)
    laws["tilt"] = (m, v, _normal_pdf(grid, m, v))
    return {"wg": wg, "curves": curves, "w": w, "xo": xo, "xs": xs, "grid": grid, "laws": laws}
